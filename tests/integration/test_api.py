#!/usr/bin/python3
"""The status page's JSON API and /metrics, over real HTTP.

Starts ./calgate with a temp config (alice, bob: plain users; root: admin),
seeds imip_log and accounts rows straight into the store once calgate has
created its schema, then checks every route: content, paging, the decision
filter, the admin/user split, CSRF refusals, recheck rules, reload with a
broken file, /metrics against a strict text-format checker, and that no
secret ever appears in any response.
"""
import json
import math
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

PASSWORD = "Correct horse 7!"
IMAP_SECRET = "imap-S3cret-do-not-leak"
RAW_MARKER = "RAW-BODY-never-sent-4711"
XSS = '<img src=x onerror="window.__xss=1">'

T = ct.Results()
check = T.check


def req(srv, method, path, user=None, headers=None, body=b""):
    """srv.request as (status, headers, body)."""
    r = srv.request(method, path, user, body, headers)
    return r.status, r.headers, r.body


def get_json(srv, path, user):
    r = srv.request("GET", path, user)
    return r.status, r.headers, r.json()


# ---- a strict Prometheus text format (0.0.4) checker ----------------------

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError("bad value %r" % s)
    return float(s)


def parse_labels(s, i):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise ValueError("bad label name at %d" % i)
        name = m.group(0)
        if name.startswith("__"):
            raise ValueError("reserved label name " + name)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ValueError("expected =\" after " + name)
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                nxt = s[i + 1]
                if nxt not in '\\"n':
                    raise ValueError("bad escape \\" + nxt)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif s[i] == "\n":
                raise ValueError("newline in label value")
            else:
                val.append(s[i])
                i += 1
        i += 1
        if name in labels:
            raise ValueError("duplicate label " + name)
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ValueError("expected , or } at %d" % i)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return name


def prom_check(text):
    """Returns (list of errors, {family: [(name, labels, value)]})."""
    errors = []
    types, helps, samples = {}, {}, {}
    seen_series = set()
    closed = set()          # families whose sample block has ended
    current = None
    if not text.endswith("\n"):
        errors.append("does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 3 or not NAME.match(parts[2]):
                        raise ValueError("bad metric name in " + parts[1])
                    fam = parts[2]
                    if parts[1] == "TYPE":
                        if fam in types:
                            raise ValueError("second TYPE for " + fam)
                        if fam in samples:
                            raise ValueError("TYPE after samples of " + fam)
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise ValueError("bad type")
                        types[fam] = parts[3]
                    else:
                        if fam in helps:
                            raise ValueError("second HELP for " + fam)
                        doc = parts[3] if len(parts) == 4 else ""
                        if re.search(r"\\[^\\n]", doc):
                            raise ValueError("bad escape in HELP")
                        helps[fam] = doc
                continue
            m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
            if not m:
                raise ValueError("bad sample name")
            name = m.group(0)
            i = m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i)
            rest = line[i:]
            if not rest.startswith(" "):
                raise ValueError("expected a space before the value")
            fields = rest[1:].split(" ")
            if len(fields) not in (1, 2) or "" in fields:
                raise ValueError("bad value/timestamp fields")
            value = parse_value(fields[0])
            if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
                raise ValueError("bad timestamp")
            fam = family_of(name, types)
            if fam != current:
                if fam in closed:
                    raise ValueError("samples of %s not together" % fam)
                if current:
                    closed.add(current)
                current = fam
            t = types.get(fam, "untyped")
            if t == "counter" and (value < 0 or math.isnan(value)):
                raise ValueError("negative counter")
            if t == "histogram" and name == fam:
                raise ValueError("bare histogram sample " + name)
            if name.endswith("_bucket") and t == "histogram" and "le" not in labels:
                raise ValueError("bucket without le")
            key = (name, tuple(sorted(labels.items())))
            if key in seen_series:
                raise ValueError("duplicate series")
            seen_series.add(key)
            samples.setdefault(fam, []).append((name, labels, value))
        except (ValueError, IndexError) as e:
            errors.append("line %d: %s: %r" % (n, e, line))
    for fam, t in types.items():
        if t != "histogram" or fam not in samples:
            continue
        groups = {}
        for name, labels, value in samples[fam]:
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            g = groups.setdefault(rest, {"b": [], "sum": None, "count": None})
            if name == fam + "_bucket":
                g["b"].append((parse_value(labels["le"]), value))
            elif name == fam + "_sum":
                g["sum"] = value
            elif name == fam + "_count":
                g["count"] = value
        for g in groups.values():
            les = [b[0] for b in g["b"]]
            if les != sorted(les) or not les or les[-1] != math.inf:
                errors.append(fam + ": buckets unsorted or no +Inf")
            vals = [b[1] for b in g["b"]]
            if vals != sorted(vals):
                errors.append(fam + ": buckets not cumulative")
            if g["count"] is None or g["sum"] is None:
                errors.append(fam + ": missing _sum or _count")
            elif vals and vals[-1] != g["count"]:
                errors.append(fam + ": +Inf bucket != _count")
    return errors, samples


def prom_selftest():
    good = ('# HELP a_total A thing.\n# TYPE a_total counter\n'
            'a_total{x="a\\"b\\\\c\\n"} 3\n')
    check(prom_check(good)[0] == [], "checker accepts a good exposition")
    bad = [
        "# TYPE a counter\n# TYPE a counter\na 1\n",
        "a{x=\"1\"} one\n",
        "1a 3\n",
        "a{x=\"\\t\"} 1\n",
        "# TYPE a counter\na -1\n",
        "a 1\nb 1\na 2\n",
        "a 1",
        "a{x=\"1\",x=\"2\"} 1\n",
    ]
    for b in bad:
        check(prom_check(b)[0] != [], "checker refuses %r" % b)


# ---- seeding ----------------------------------------------------------------

GOOGLE_DETAIL = {
    "decision": "skip", "reason": "dmarc-none",
    "hint": "policy.require=dkim with dkim_signers=google-workspace would accept",
    "from": "maria@partner-firm.fi", "from_domain": "partner-firm.fi",
    "dkim": [
        {"domain": "google.com", "selector": "20230601", "result": "pass",
         "aligned": False},
        {"domain": "partner-firm-fi.20230601.gappssmtp.com",
         "selector": "20230601", "result": "pass", "aligned": False},
    ],
    "spf": None,
    "dmarc": {"result": "none", "policy": None},
    "itip": {"method": "REQUEST", "uid": "g1@google.com",
             "organizer": "mailto:maria@partner-firm.fi"},
}


def seed(db_path, now):
    db = sqlite3.connect(db_path, timeout=10)
    ids = dict(db.execute("SELECT name, id FROM users"))
    rows = []

    def add(user, ts, decision, reason, subject="Meeting", detail=None,
            raw=None, hint=None):
        cur = db.execute(
            "INSERT INTO imip_log (user_id, ts, from_addr, subject, method,"
            " ical_uid, summary, dtstart, decision, reason, hint, detail, raw,"
            " attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
            (ids[user], ts, "maria@partner-firm.fi", subject, "REQUEST",
             "uid-%d@x" % len(rows), "Summary %d" % len(rows),
             "20261210T100000Z", decision, reason, hint,
             json.dumps(detail) if isinstance(detail, dict) else detail,
             raw))
        rows.append((cur.lastrowid, user, decision))
        return cur.lastrowid

    decs = ["accept", "skip", "defer", "ignore"]
    for i in range(60):
        add("alice", now - 3600 * i, decs[i % 4], "dmarc-pass",
            subject="Alice meeting %d" % i)
    ids_special = {}
    ids_special["google"] = add(
        "alice", now - 60, "skip", "dmarc-none",
        subject="Invitation: Quarterly review @ Thu 10 Dec 2026",
        detail=GOOGLE_DETAIL, hint=GOOGLE_DETAIL["hint"],
        raw=("From: maria@partner-firm.fi\r\n\r\n" + RAW_MARKER).encode())
    ids_special["xss"] = add("alice", now - 50, "skip", "dmarc-none",
                             subject=XSS, detail="{not json", raw=b"x")
    ids_special["accept"] = add("alice", now - 40, "accept", "dmarc-pass")
    # invalid UTF-8 in the subject, stored as raw bytes
    ids_special["badutf8"] = add("alice", now - 30, "ignore", "no-calendar",
                                 subject=b"caf\xe9 \xff")
    for i in range(5):
        bid = add("bob", now - 20 + i, "skip", "dmarc-fail",
                  subject="Bob private %d" % i, raw=RAW_MARKER.encode())
    ids_special["bob"] = bid
    # an old row, outside 7 and 30 days
    add("alice", now - 40 * 86400, "accept", "dmarc-pass")
    db.execute("INSERT OR REPLACE INTO accounts (user_id, state, detail, "
               "last_ok, next_try) VALUES (?, 'auth-failed', "
               "'IMAP login rejected', ?, ?)",
               (ids["bob"], now - 7200, now + 300))
    db.commit()
    db.close()
    return ids_special, rows


def write_conf(path, tmp, hash_, broken=False):
    with open(path, "w") as f:
        f.write(f"""[server]
listen = 127.0.0.1:0
data_dir = data
{"bogus_key = 1" if broken else ""}
[user alice]
password = {hash_}
addresses = alice@example.com
imap = imap://alice-login@127.0.0.1:1/INBOX
imap_tls = none
imap_password_file = alice.imap
[user bob]
password = {hash_}
addresses = bob@example.com
[user root]
password = {hash_}
addresses = root@example.com
admin = yes
""")


def main():
    tmp = tempfile.mkdtemp(prefix="calgate-api-")
    srv = ct.Server(tmp, None, dict.fromkeys(("alice", "bob", "root"),
                                             PASSWORD), timeout=10)
    try:
        run(tmp, srv)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    T.finish()


def run(tmp, srv):
    prom_selftest()
    hash_ = ct.pwhash(PASSWORD)
    with open(os.path.join(tmp, "alice.imap"), "w") as f:
        f.write(IMAP_SECRET + "\n")
    os.chmod(os.path.join(tmp, "alice.imap"), 0o600)
    conf = srv.conf
    write_conf(conf, tmp, hash_)
    try:
        srv.start()
    except RuntimeError as e:
        check(False, "calgate started")
        print(e)
        return
    now = int(time.time())
    sp, rows = seed(os.path.join(tmp, "data", "calgate.db"), now)
    alice_ids = {r[0] for r in rows if r[1] == "alice"}
    bob_ids = {r[0] for r in rows if r[1] == "bob"}

    # ---- the page and its files
    st, h, body = req(srv, "GET", "/", "alice")
    check(st == 200 and b"status.js" in body, "GET / serves the page")
    csp = h.get("content-security-policy", "")
    check("default-src 'self'" in csp, "page has a strict CSP")
    st, h, _ = req(srv, "GET", "/status", "alice")
    check(st == 200, "GET /status serves the page")
    for f, t in (("status.js", "text/javascript"), ("style.css", "text/css")):
        st, h, _ = req(srv, "GET", "/www/" + f, "alice")
        check(st == 200 and h.get("content-type", "").startswith(t),
              "serves " + f)
    st, _, _ = req(srv, "GET", "/api/status")
    check(st == 401, "API needs authentication")

    # ---- /api/status
    st, h, s = get_json(srv, "/api/status", "alice")
    check(st == 200 and s is not None, "alice: status is JSON")
    check(h.get("content-type", "").startswith("application/json"),
          "status content type")
    check(h.get("cache-control") == "no-store", "status not cached")
    check(s["user"] == "alice" and s["admin"] is False, "who am I")
    check(re.fullmatch(r"[0-9a-f]{64}", s["csrf"] or "") is not None,
          "a CSRF token")
    check([a["user"] for a in s["accounts"]] == ["alice"],
          "alice sees only her account")
    a = s["accounts"][0]
    check(a["mailbox"] == "INBOX" and a["host"] == "127.0.0.1",
          "mailbox and host shown")
    check("login" not in json.dumps(a) and "alice-login" not in json.dumps(s),
          "no IMAP login in status")
    check(isinstance(a["state"], str) and a["state"], "account has a state")
    c7 = a["counts_7d"]
    # alice in 7 days: 60 hourly rows (15 of each) + google, xss skips,
    # accept, ignore; the 40-day-old row is out.
    check(c7 == {"accepted": 16, "skipped": 17, "deferred": 15,
                 "ignored": 16}, "alice's 7-day counts: %r" % c7)
    check(a["calendars"] == [{"path": "default", "name": "default",
                              "events": 0}], "calendars with event counts")
    check(len(s["daily"]) == 30, "30 days in the chart")
    total = sum(d["accept"] + d["skip"] + d["defer"] + d["ignore"]
                for d in s["daily"])
    check(total == 64, "daily totals cover the 30 days (%d)" % total)
    check(all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d["date"])
              for d in s["daily"]), "daily dates")
    check(s["reload_error"] is None, "no reload error yet")
    check(s["recheck_available"] in (True, False), "recheck_available")
    st, _, s2 = get_json(srv, "/api/status?tz=120", "alice")
    check(st == 200 and len(s2["daily"]) == 30, "tz offset accepted")
    st, _, _ = get_json(srv, "/api/status?tz=9999", "alice")
    check(st == 400, "tz out of range refused")

    st, _, r = get_json(srv, "/api/status", "root")
    check(st == 200 and r["admin"] is True, "root is admin")
    users = [x["user"] for x in r["accounts"]]
    check(users == ["alice", "bob", "root"], "admin sees every account")
    b = [x for x in r["accounts"] if x["user"] == "bob"][0]
    check(b["state"] == "auth-failed" and b["detail"] ==
          "IMAP login rejected" and b["last_ok"] == now - 7200 and
          b["next_try"] == now + 300, "seeded account state shown")
    check(b["mailbox"] is None, "bob has no mailbox configured")
    check(r["csrf"] != s["csrf"], "tokens differ per user")

    # ---- /api/invitations: paging and filter
    st, _, l1 = get_json(srv, "/api/invitations", "alice")
    inv = l1["invitations"]
    check(st == 200 and len(inv) == 50, "default page of 50")
    ids1 = [x["id"] for x in inv]
    check(ids1 == sorted(ids1, reverse=True), "id descending")
    check(l1["next_before"] == ids1[-1], "next_before cursor")
    check(all(x["user"] == "alice" for x in inv), "only alice's rows")
    st, _, l2 = get_json(srv, "/api/invitations?before=%d" %
                         l1["next_before"], "alice")
    ids2 = [x["id"] for x in l2["invitations"]]
    check(len(ids2) == 15 and max(ids2) < min(ids1), "second page")
    check(l2["next_before"] is None, "last page has no cursor")
    check(set(ids1) | set(ids2) == alice_ids, "pages cover alice's rows")
    st, _, l3 = get_json(srv, "/api/invitations?limit=1000", "root")
    check(st == 200 and len(l3["invitations"]) == 70 and l3["limit"] == 200,
          "limit capped at 200; admin sees all 70")
    st, _, l4 = get_json(srv, "/api/invitations?limit=3", "alice")
    check(len(l4["invitations"]) == 3 and l4["next_before"] ==
          l4["invitations"][-1]["id"], "limit=3")
    for q in ("limit=0", "limit=abc", "limit=-1", "before=x", "before=0",
              "decision=bogus", "limit=1e3"):
        st, _, e = get_json(srv, "/api/invitations?" + q, "alice")
        check(st == 400 and e and "error" in e, "bad query %s -> 400" % q)
    st, _, f = get_json(srv, "/api/invitations?decision=skip&limit=200",
                        "alice")
    fs = f["invitations"]
    check(fs and all(x["decision"] == "skip" for x in fs) and len(fs) == 17,
          "decision filter (%d)" % len(fs))
    st, _, f = get_json(srv, "/api/invitations?decision=", "alice")
    check(len(f["invitations"]) == 50, "empty decision means all")

    by_id = {x["id"]: x for x in inv}
    g = by_id[sp["google"]]
    check(g["from"] == "maria@partner-firm.fi" and g["method"] == "REQUEST"
          and g["reason"] == "dmarc-none" and g["hint"] ==
          GOOGLE_DETAIL["hint"] and g["dtstart"] == "20261210T100000Z",
          "row fields")
    check(g["detail"] == GOOGLE_DETAIL, "detail parsed as a JSON object")
    check(g["can_recheck"] is True and by_id[sp["accept"]]["can_recheck"]
          is False, "can_recheck")
    x = by_id[sp["xss"]]
    check(x["subject"] == XSS, "markup subject comes back as text")
    check(x["detail"] is None, "invalid stored detail -> null")
    bad = by_id[sp["badutf8"]]
    check(bad["subject"] == "caf\ufffd \ufffd", "invalid UTF-8 replaced")
    check("raw" not in g, "no raw field")

    # admin/user split
    st, _, ab = get_json(srv, "/api/invitations?limit=200", "alice")
    check(not (set(x["id"] for x in ab["invitations"]) & bob_ids),
          "alice never sees bob's rows")
    check(all("Bob private" not in (x["subject"] or "")
              for x in ab["invitations"]), "no bob subjects for alice")
    st, _, rb = get_json(srv, "/api/invitations?limit=200", "root")
    bobrows = [x for x in rb["invitations"] if x["user"] == "bob"]
    check(len(bobrows) == 5, "admin sees bob's rows with the user name")

    # ---- recheck and CSRF
    U = srv.url
    good = {"Origin": U, "X-CSRF-Token": s["csrf"]}
    rpath = "/api/invitations/%d/recheck" % sp["google"]

    def post(path, user, headers):
        st, h, data = req(srv, "POST", path, user, headers)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None

    st, e = post(rpath, "alice", {"Origin": U})
    check(st == 403, "no token -> 403")
    st, e = post(rpath, "alice", {"Origin": U, "X-CSRF-Token": "0" * 64})
    check(st == 403, "wrong token -> 403")
    st, e = post(rpath, "alice", {"Origin": U, "X-CSRF-Token": r["csrf"]})
    check(st == 403, "another user's token -> 403")
    st, e = post(rpath, "alice", {"Origin": "http://evil.example",
                                  "X-CSRF-Token": s["csrf"]})
    check(st == 403, "cross-origin Origin -> 403")
    st, e = post(rpath, "alice", {"Origin": "null",
                                  "X-CSRF-Token": s["csrf"]})
    check(st == 403, "Origin null -> 403")
    st, e = post(rpath, "alice", {"X-CSRF-Token": s["csrf"]})
    check(st == 403, "no Origin nor Referer -> 403")
    st, e = post(rpath, "alice", {"Referer": "http://evil.example/x",
                                  "X-CSRF-Token": s["csrf"]})
    check(st == 403, "cross-origin Referer -> 403")
    st, h, _ = req(srv, "GET", rpath, "alice")
    check(st == 405 and h.get("allow") == "POST", "GET on recheck -> 405")
    st, h, _ = req(srv, "GET", "/api/reload", "root")
    check(st == 405, "GET on reload -> 405")
    st, h, _ = req(srv, "POST", "/api/status", "alice", good)
    check(st == 405, "POST on status -> 405")
    st, _, _ = req(srv, "POST", "/", "alice", good)
    check(st == 405, "POST on the page -> 405")

    avail = s["recheck_available"]
    st, e = post(rpath, "alice", good)
    if not avail:
        check(st == 503 and "not available" in e["error"],
              "recheck without a hook -> 503 (%d)" % st)
    else:
        check(st in (200, 502), "recheck with a hook answers (%d)" % st)
    st, e = post(rpath, "alice", {"Referer": U + "/status",
                                  "X-CSRF-Token": s["csrf"]})
    check(st != 403, "same-origin Referer passes the CSRF check")
    st, e = post("/api/invitations/%d/recheck" % sp["accept"], "alice", good)
    check(st == 409, "recheck of an accepted row refused (%d)" % st)
    st, e404 = post("/api/invitations/%d/recheck" % sp["bob"], "alice", good)
    check(st == 404, "alice: bob's row -> 404")
    st, enx = post("/api/invitations/999999/recheck", "alice", good)
    check(st == 404 and enx == e404, "missing row: identical 404")
    for p in ("/api/invitations/0/recheck", "/api/invitations/x/recheck",
              "/api/invitations/1/recheck/x", "/api/invitations/01/recheck"):
        st, _ = post(p, "alice", good)
        check(st == 404, "bad recheck path %s -> 404" % p)
    rgood = {"Origin": U, "X-CSRF-Token": r["csrf"]}
    st, e = post("/api/invitations/%d/recheck" % sp["bob"], "root", rgood)
    check(st == (503 if not avail else st) and st != 404,
          "admin may recheck bob's row (%d)" % st)

    # ---- reload
    st, e = post("/api/reload", "alice", good)
    check(st == 403, "reload is admin only")
    write_conf(conf, tmp, hash_, broken=True)
    st, e = post("/api/reload", "root", rgood)
    check(st == 422 and "bogus_key" in (e or {}).get("error", ""),
          "broken reload refused with the reason (%d)" % st)
    st, _, s3 = get_json(srv, "/api/status", "root")
    check(s3["reload_error"] and "bogus_key" in s3["reload_error"],
          "reload error shown in status")
    st, _, s4 = get_json(srv, "/api/status", "alice")
    check(st == 200 and s4["reload_error"] and "bogus_key" not in
          s4["reload_error"], "old config in force; users get a generic note")
    write_conf(conf, tmp, hash_)
    st, e = post("/api/reload", "root", rgood)
    check(st == 200 and e == {"ok": True}, "good reload accepted")
    st, _, s5 = get_json(srv, "/api/status", "root")
    check(s5["reload_error"] is None, "reload error cleared")

    # ---- /metrics
    st, _, _ = req(srv, "GET", "/metrics", "alice")
    check(st == 403, "metrics: admin only")
    st, h, m = req(srv, "GET", "/metrics", "root")
    check(st == 200 and h.get("content-type", "").startswith(
        "text/plain; version=0.0.4"), "metrics content type")
    errs, fams = prom_check(m.decode("utf-8"))
    check(errs == [], "metrics parse strictly: %s" % errs[:5])
    http_fam = fams.get("calgate_http_requests_total", [])
    get200 = [v for n, l, v in http_fam
              if l.get("method") == "GET" and l.get("status") == "200"]
    check(get200 and get200[0] >= 10, "HTTP requests counted")
    check(any(l.get("status") == "403" for n, l, v in http_fam),
          "403s counted")
    for fam in ("calgate_imap_polls_total", "calgate_dns_lookup_seconds",
                "calgate_dkim_verify_seconds",
                "calgate_imip_decisions_total"):
        check(fam in m.decode(), "metrics has " + fam)

    st, _, e = get_json(srv, "/api/nothing", "alice")
    check(st == 404 and e and "error" in e, "unknown API route -> 404")

    # ---- nothing secret, anywhere
    secrets = [PASSWORD, hash_, IMAP_SECRET, RAW_MARKER, "alice-login"]
    leaked = []
    for _, hdrs, data in srv.seen:
        blob = data + hdrs
        for sec in secrets:
            if sec.encode() in blob:
                leaked.append(sec)
    check(not leaked, "no secret in any response: %s" % set(leaked))
    check(not any(b"<img" in d for _, _, d in srv.seen
                  if b'"invitations"' in d), "markup escaped in JSON")
    srv.stop()
    log = srv.log_text()
    check(PASSWORD not in log and IMAP_SECRET not in log,
          "no secret in the log")
    # Under CALGATE=build-san/calgate: no sanitizer report at exit.
    check(not re.search(r"Sanitizer|runtime error:", log),
          "no sanitizer report:\n" + log[-3000:])
    check(srv.rc == 0, "clean exit (%s)" % srv.rc)


if __name__ == "__main__":
    main()
