#!/usr/bin/python3
"""
tests/integration/status_page.py: run by test_status_page.sh. Brings up
the real stack (e2efix.py: unbound, Dovecot, `calgate serve` watching
alice's INBOX), delivers real signed invitations over IMAP, then runs
tests/browser/status_page.mjs in Debian's headless chromium, which logs
in, reads the page, has the admin reload a relaxed configuration and
clicks "Check again". Prints "N passed, M failed" last (its own checks
plus the browser's).

Delivered to alice, all under her policy require = dmarc:
  - an invitation from bigcorp.example (DMARC p=reject, aligned DKIM):
    accepted on arrival;
  - one whose subject carries <img onerror>: skipped, shown as text;
  - the Google-Workspace-shaped one: skipped (dmarc-none) with a hint;
    "Check again" accepts it once the admin has reloaded
    policy.require = dkim, policy.dkim_signers = google-workspace.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402
import e2efix  # noqa: E402

XSS = '<img src=x onerror="window.__xss=1">'
T = ct.Results()
check = T.check


def main():
    e2efix.run_stack(run, T)


def run(s):
    if not check(s.wait_state("alice", "idle"),
                 "alice's mailbox is watched (IDLE)"):
        print(s.log_text())
        return
    s.deliver(s.aligned_invite("b1@bigcorp.example",
                               subject="Invitation: Budget 2027",
                               summary="Budget 2027"))
    s.deliver(s.google_invite("x1@partner-firm.fi", subject=XSS,
                              summary=XSS))
    s.deliver(s.google_invite(
        "q4@partner-firm.fi",
        subject="Invitation: Quarterly review @ Fri 15 Jan 2027 "
                "10:00 - 11:00 (UTC)", summary="Quarterly review"))
    rows = {}
    for uid in ("b1@bigcorp.example", "x1@partner-firm.fi",
                "q4@partner-firm.fi"):
        rows[uid] = s.wait_row(lambda r, u=uid: r["uid"] == u)
    if not check(all(rows.values()), "three invitations recorded"):
        print(s.log_text())
        return
    check(rows["b1@bigcorp.example"]["decision"] == "accept",
          "aligned invitation accepted on arrival")
    g = rows["q4@partner-firm.fi"]
    check(g["decision"] == "skip" and g["reason"] == "dmarc-none",
          "Google-style invitation skipped (dmarc-none)")

    relaxed = os.path.join(s.tmp, "relaxed.conf")
    with open(relaxed, "w") as f:
        f.write(s.config_text(e2efix.RELAXED))
    env = dict(os.environ,
               CALGATE_URL=s.url, CALGATE_USER="alice", ADMIN_USER="root",
               CALGATE_PASS=e2efix.PASSWORD, GOOGLE_ID=str(g["id"]),
               XSS_SUBJECT=XSS, CONF_PATH=s.conf, CONF_RELAXED=relaxed,
               RECHECK_EXPECT=os.environ.get("RECHECK_EXPECT", "accepted"),
               SCREENSHOT=os.environ.get("SCREENSHOT", os.path.join(
                   ct.ROOT, "tests", "artifacts", "status.png")))
    out = os.path.join(s.tmp, "node.out")
    with open(out, "w") as o:
        try:
            rc = subprocess.run(["node", os.path.join(
                ct.ROOT, "tests", "browser", "status_page.mjs")],
                env=env, stdout=o, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=90).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    with open(out, errors="replace") as o:
        text = o.read()
    sys.stdout.write(text)
    line = [x for x in text.splitlines() if x.endswith(" failed") and
            " passed, " in x]
    if check(line, "the browser script printed a result (exit %d)" % rc):
        p, f = line[-1].split(" passed, ")
        T.passed += int(p)
        T.failed += int(f.split()[0])

    # What the browser did, seen from the server.
    body = s.get("/api/invitations?limit=200", "alice").json()
    after = {r["uid"]: r for r in (body or {}).get("invitations", [])}
    q = after.get("q4@partner-firm.fi", {})
    check(q.get("decision") == "accept",
          "the server recorded the accept (%s)" % q.get("decision"))
    x = after.get("x1@partner-firm.fi", {})
    check(x.get("decision") == "skip" and x.get("subject") == XSS,
          "the markup-subject invitation is still skipped")
    s.stop_clean(check)


if __name__ == "__main__":
    main()
