#!/usr/bin/python3
"""
tests/integration/test_recheck.py: "Check again", end to end, with every
part real (e2efix.py): unbound serving the test zones, a private Dovecot,
`calgate serve` polling alice's INBOX over IMAP IDLE.

A Google-Workspace-shaped invitation (d=google.com plus the tenant's
gappssmtp.com signature, no DMARC record) arrives while alice's policy
is require = dmarc: skipped, reason dmarc-none, with a hint naming the
setting. The operator changes the file (policy.require = dkim,
policy.dkim_signers = google-workspace) and reloads, once with
POST /api/reload and once with SIGHUP (and a broken file once, refused);
"Check again" then accepts the invitation and it is in alice's calendar
over CalDAV. Along the way: bob cannot recheck alice's invitation, CSRF
refusals hold, /metrics counts the decisions, and no response carries a
secret. CALGATE_BIN=build-san/calgate runs it under ASan+UBSan.
"""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402
import e2efix  # noqa: E402
from test_api import prom_check  # noqa: E402

T = ct.Results()
check = T.check


QUERY = b"""<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
 <D:prop><D:getetag/><C:calendar-data/></D:prop>
 <C:filter><C:comp-filter name="VCALENDAR">
  <C:comp-filter name="VEVENT"/></C:comp-filter></C:filter>
</C:calendar-query>"""
CAL = "/dav/calendars/alice/default/"


def calendar_uids(s):
    """The UIDs of the events in alice's default calendar (REPORT)."""
    r = s.request("REPORT", CAL, "alice", body=QUERY,
                  headers={"Depth": "1", "Content-Type": "application/xml"})
    if r.status != 207:
        return None
    return sorted(re.findall(r"UID:([^\r\n&<]+)", r.body.decode()))


def recheck(s, row_id, user="alice", headers=None):
    """(status, JSON body or None)."""
    r = s.recheck(user, row_id, headers)
    return r.status, r.json()


def main():
    e2efix.run_stack(run, T)


def by_uid(uid):
    return lambda r: r["uid"] == uid


def run(s):
    # ---- the account, as the poller reports it
    check(s.wait_state("alice", "idle"), "alice's mailbox is watched (IDLE)")
    a = s.account("alice")
    check(a and a["last_ok"] and a["detail"] is None and
          a["mailbox"] == "INBOX" and a["host"] == "127.0.0.1",
          "account: last check, mailbox, host: %r" % a)

    # ---- arrival under require = dmarc: skipped, with a hint
    s.deliver(s.google_invite("g1@partner-firm.fi"))
    s.deliver(s.google_invite("g2@partner-firm.fi"))
    g1 = s.wait_row(by_uid("g1@partner-firm.fi"))
    g2 = s.wait_row(by_uid("g2@partner-firm.fi"))
    if not check(g1 and g2, "both invitations recorded within 10 s"):
        print(s.log_text())
        return
    check(g1["decision"] == "skip" and g1["reason"] == "dmarc-none",
          "skipped: dmarc-none (%s/%s)" % (g1["decision"], g1["reason"]))
    hint = g1["hint"] or ""
    check(re.search(r"require ?= ?dkim", hint) and
          "google-workspace" in hint,
          "hint names require = dkim and google-workspace: %r" % hint)
    d = g1["detail"] or {}
    check(sorted((x["domain"], x["result"], x["aligned"])
                 for x in d.get("dkim", [])) ==
          [("google.com", "pass", False), (e2efix.TENANT, "pass", False)],
          "detail: both signatures pass, neither aligned")
    check(d.get("dmarc") == {"result": "none", "policy": None},
          "detail: no DMARC record")
    check(g1["from"] == e2efix.FROM and
          g1["summary"] == "Planning meeting" and
          g1["method"] == "REQUEST" and g1["can_recheck"] is True,
          "row: from, summary, method, can_recheck")
    check(calendar_uids(s) == [], "nothing in alice's calendar yet")

    # ---- who may check again, and how
    st, body = recheck(s, g1["id"])
    check(st == 200 and body["invitation"]["decision"] == "skip" and
          body["invitation"]["attempts"] == 1,
          "check again, same policy: still skipped (%d)" % st)
    st, _ = recheck(s, g1["id"], "bob")
    check(st == 404, "bob cannot check alice's invitation again (%d)" % st)
    check(not any(r["id"] in (g1["id"], g2["id"]) for r in s.rows("bob")),
          "bob does not see alice's invitations")
    r = s.get("/api/invitations/%d" % g1["id"], "bob")
    check(r.status == 404 and b"partner-firm" not in r.body,
          "bob cannot read alice's invitation by id (%d)" % r.status)
    for what, h in (("no token", {"X-CSRF-Token": ""}),
                    ("wrong token", {"X-CSRF-Token": "0" * 64}),
                    ("bob's token", {"X-CSRF-Token": s.token("bob")}),
                    ("cross-origin", {"Origin": "http://evil.example"}),
                    ("empty Origin", {"Origin": ""})):
        st, _ = recheck(s, g1["id"], headers=h)
        check(st == 403, "CSRF: %s -> 403 (%d)" % (what, st))
    st = s.post("/api/reload", "alice").status
    check(st == 403, "alice may not reload (%d)" % st)

    # ---- the operator relaxes alice's policy; POST /api/reload
    s.write_config(alice_policy=e2efix.RELAXED)
    r = s.reload_http()
    check(r.status == 200 and r.json() == {"ok": True},
          "POST /api/reload (%d)" % r.status)
    st, body = recheck(s, g1["id"])
    inv = (body or {}).get("invitation") or {}
    check(st == 200 and inv.get("decision") == "accept" and
          inv.get("reason") == "dkim-relaxed" and not inv.get("can_recheck"),
          "check again after the reload: accepted (%d %s/%s)" % (
              st, inv.get("decision"), inv.get("reason")))
    check(calendar_uids(s) == ["g1@partner-firm.fi"],
          "the event is in alice's calendar (REPORT)")
    r = s.get(CAL + "g1@partner-firm.fi.ics", "alice")
    check(r.status == 200 and b"SUMMARY:Planning meeting" in r.body and
          b"METHOD:" not in r.body, "GET of the event (%d)" % r.status)
    st, _ = recheck(s, g1["id"])
    check(st == 409, "an accepted invitation is not checked again (%d)" % st)
    a = s.account("alice")
    check(a["counts_7d"]["accepted"] == 1 and a["counts_7d"]["skipped"] == 1
          and a["calendars"][0]["events"] == 1,
          "counts and event count follow: %r" % a)

    # ---- SIGHUP: back to dmarc, then relaxed again
    s.write_config(alice_policy=e2efix.STRICT)
    check(s.sighup(), "SIGHUP reload logged")
    st, body = recheck(s, g2["id"])
    check(st == 200 and body["invitation"]["decision"] == "skip",
          "after SIGHUP to require = dmarc: still skipped")
    s.write_config(alice_policy=e2efix.RELAXED)
    check(s.sighup(), "second SIGHUP reload logged")
    st, body = recheck(s, g2["id"], "root")
    check(st == 200 and body["invitation"]["decision"] == "accept" and
          body["invitation"]["user"] == "alice",
          "after SIGHUP to the relaxed policy, the admin's check: accepted")
    # new mail is judged by the new policy too
    s.deliver(s.google_invite("g3@partner-firm.fi"))
    g3 = s.wait_row(by_uid("g3@partner-firm.fi"))
    check(g3 and g3["decision"] == "accept",
          "a new invitation is accepted on arrival")
    check(calendar_uids(s) == ["g1@partner-firm.fi", "g2@partner-firm.fi",
                               "g3@partner-firm.fi"],
          "three events in alice's calendar: %r" % calendar_uids(s))
    r = s.request("REPORT", "/dav/calendars/root/default/", "root",
                  body=QUERY, headers={"Depth": "1",
                                       "Content-Type": "application/xml"})
    check(r.status == 207 and b"UID:" not in r.body,
          "nothing in the admin's own calendar (%d)" % r.status)

    # ---- a broken file on SIGHUP: refused, the old one stays in force
    with open(s.conf, "a") as f:
        f.write("bogus_key = 1\n")
    n = s.log_text().count("config reload refused")
    s.proc.send_signal(signal.SIGHUP)
    check(ct.wait_for(10, lambda: s.log_text().count(
        "config reload refused") > n), "broken file refused (logged)")
    r = s.status("root")
    check(r and r["reload_error"] and "bogus_key" in r["reload_error"],
          "reload error shown to the admin")
    s.deliver(s.google_invite("g4@partner-firm.fi"))
    g4 = s.wait_row(by_uid("g4@partner-firm.fi"))
    check(g4 and g4["decision"] == "accept",
          "the previous configuration stays in force")
    s.write_config(alice_policy=e2efix.RELAXED)
    check(s.sighup(), "fixed file reloads")

    # ---- deferred while DNS fails; checked again once it answers
    s.deliver(s.aligned_invite("d1@slowdns.example",
                               frm="ops@slowdns.example"))
    d1 = s.wait_row(by_uid("d1@slowdns.example"), secs=20)
    check(d1 and d1["decision"] == "defer" and
          d1["reason"].endswith("-temperror") and d1["next_retry"] and
          d1["can_recheck"], "DNS failing: deferred with a retry time (%s)"
          % (d1 and [d1["decision"], d1["reason"], d1["next_retry"]],))
    if d1:
        st, body = recheck(s, d1["id"])
        inv = (body or {}).get("invitation") or {}
        check(st == 200 and inv.get("decision") == "defer" and
              inv.get("attempts") == 1,
              "check again while DNS fails: still deferred (%d %s)" % (
                  st, inv.get("decision")))
        s.dns_heal()
        # libunbound remembers the failure for a few seconds: the
        # operator's second click, a moment later, gets through.
        got = {}

        def accepted():
            st, body = recheck(s, d1["id"])
            got.update(st=st, inv=(body or {}).get("invitation") or {})
            return st != 200 or got["inv"].get("decision") != "defer"
        ct.wait_for(15, accepted, step=1)
        st, inv = got["st"], got["inv"]
        check(st == 200 and inv.get("decision") == "accept" and
              inv.get("reason") == "dmarc-pass" and not inv.get(
                  "next_retry"),
              "check again once DNS answers: accepted (%d %s/%s)" % (
                  st, inv.get("decision"), inv.get("reason")))
        check("d1@slowdns.example" in (calendar_uids(s) or []),
              "the once-deferred event is in the calendar")

    # A policy change is no IMAP change: the session survives the reloads.
    n = s.log_text().count("account=alice state=connecting")
    check(n == 1, "four reloads, one IMAP session (%d connects)" % n)

    # ---- the store keeps a message only while it can be checked again
    kept = s.db("SELECT count(*) FROM imip_log WHERE raw IS NOT NULL "
                "AND decision IN ('accept', 'ignore')")[0][0]
    check(kept == 0, "accepted rows keep no raw message (%d do)" % kept)

    # ---- /metrics
    st = s.get("/metrics", "alice").status
    check(st == 403, "metrics: admin only")
    r = s.get("/metrics", "root")
    errs, fams = prom_check(r.text())
    check(r.status == 200 and errs == [],
          "metrics parse strictly: %s" % errs[:3])
    dec = {(lb.get("decision"), lb.get("reason")): v for _, lb, v in
           fams.get("calgate_imip_decisions_total", [])}
    check(dec.get(("skip", "dmarc-none"), 0) == 4,
          "skip/dmarc-none counted: %r" % dec)
    check(dec.get(("accept", "dkim-relaxed"), 0) == 4,
          "accept/dkim-relaxed counted: %r" % dec)
    polls = sum(v for _, _, v in fams.get("calgate_imap_polls_total", []))
    check(polls >= 1, "IMAP polls counted (%s)" % polls)
    dkim = [v for n_, lb, v in fams.get("calgate_dkim_verify_seconds", [])
            if n_.endswith("_count")]
    check(dkim and sum(dkim) >= 8, "DKIM verifications timed: %r" % dkim)

    # ---- nothing secret in any response
    leaks = s.leaks()
    check(not leaks, "no secret in any response: %s" % leaks)

    # ---- the log, and a clean stop
    s.stop_clean(check)


if __name__ == "__main__":
    main()
