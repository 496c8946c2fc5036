#!/usr/bin/python3
"""
tests/bench/imap_latency.py [N]: time from IMAP APPEND to the event being
visible over CalDAV, with IDLE, through the real `calgate serve`
(CALGATE_BIN), a private Dovecot and a real unbound; N (default 100)
Google-Workspace-signed invitations, checked with real DKIM and DNS.

  sequential  one APPEND at a time; the next once the last is visible
  burst       all N APPENDed back to back on one connection

Visibility: a sync-collection REPORT from the last token every 20 ms.
Prints one line per mode: "mode n median_ms p99_ms max_ms". Called by
tests/bench/imap_bench.sh; not a test.
"""
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from e2efix import Calgate, Dovecot, pwhash, wait_for  # noqa: E402
from mailfix import (calendar, invite, rsa_key, sign,  # noqa: E402
                     start_unbound, stop_all, txt)

SEL = "20230601"
RSA = "v=DKIM1; k=rsa; p="
TENANT = "gws-example.%s.gappssmtp.com" % SEL
POLL = 0.02


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def message(key, uid):
    cal = calendar("bob@gws.example", uid=uid)
    m = invite("bob@gws.example", cal=cal, uid=uid)
    return sign(sign(m, SEL, TENANT, key), SEL, "google.com", key)


def watch(cg, tok, want, t_append, deadline):
    """Syncs every POLL until every href in want is seen; their delays."""
    seen = {}
    while want - set(seen) and time.time() < deadline:
        st, new, items = cg.sync("alice", tok)
        now = time.time()
        if st == 207 and new:
            tok = new
            for href, _s in items:
                uid = href.rsplit("/", 1)[-1][:-len(".ics")]
                if uid in want and uid not in seen:
                    seen[uid] = now - t_append[uid]
        time.sleep(POLL)
    return tok, seen


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tmp = tempfile.mkdtemp(prefix="calgate-lat.")
    os.chmod(tmp, 0o755)
    dv = cg = None
    try:
        key, pub = rsa_key(tmp, 2048)
        recs = [txt("_dmarc.aligned.example", "v=DMARC1; p=reject"),
                txt("%s._domainkey.google.com" % SEL, RSA + pub),
                txt("%s._domainkey.%s" % (SEL, TENANT), RSA + pub)]
        _ub, port = start_unbound(tmp, ["aligned.example", "gws.example",
                                        "google.com", "gappssmtp.com"],
                                  recs, [])
        dv = Dovecot(os.path.join(tmp, "dovecot"))
        dv.user("alice", "alice-imap")
        with open(os.path.join(tmp, "pw"), "w") as f:
            f.write("alice-imap\n")
        os.chmod(os.path.join(tmp, "pw"), 0o600)
        os.mkdir(os.path.join(tmp, "cg"))
        conf = ("[server]\nlisten = 127.0.0.1:0\ndata_dir = %s/cg/data\n"
                "[dns]\nresolver = 127.0.0.1@%d\n"
                "[user alice]\npassword = %s\n"
                "addresses = alice@calgate.test\n"
                "imap = imap://alice@127.0.0.1:%d/INBOX\nimap_tls = none\n"
                "imap_password_file = %s/pw\npolicy.require = dkim\n"
                "policy.dkim_signers = google-workspace\n" %
                (tmp, port, pwhash("alice-pw"), dv.port, tmp))
        cg = Calgate(os.path.join(tmp, "cg"), conf, {"alice": "alice-pw"})
        cg.start()
        wait_for(10, lambda: cg.db("SELECT count(*) FROM accounts WHERE "
                                   "state = 'idle'")[0][0] == 1)
        _st, tok, _i = cg.sync("alice")
        seq = [("seq-%03d@gws.example" % i) for i in range(n)]
        burst = [("burst-%03d@gws.example" % i) for i in range(n)]
        msgs = {u: message(key, u) for u in seq + burst}
        # warm-up: the first lookups fill the DNS caches
        dv.append("alice", message(key, "warm@gws.example"))
        tok, _s = watch(cg, tok, {"warm@gws.example"},
                        {"warm@gws.example": time.time()}, time.time() + 10)
        delays = []
        for u in seq:
            t = {u: time.time()}
            dv.append("alice", msgs[u])
            tok, s = watch(cg, tok, {u}, t, time.time() + 10)
            delays.append(s.get(u, float("inf")))
        rows = [("sequential", delays)]
        t_append = {}
        import threading

        def appender():
            import imaplib
            im = imaplib.IMAP4("127.0.0.1", dv.port, timeout=20)
            im.login("alice", "alice-imap")
            for u in burst:
                t_append[u] = time.time()
                im.append("INBOX", None, None, msgs[u])
            im.logout()
        th = threading.Thread(target=appender)
        th.start()
        time.sleep(0.05)
        tok, s = watch(cg, tok, set(burst), t_append, time.time() + 60)
        th.join(30)
        rows.append(("burst", [s.get(u, float("inf")) for u in burst]))
        for name, d in rows:
            print("%s %d %.0f %.0f %.0f" % (name, len(d), pct(d, 50) * 1000,
                                            pct(d, 99) * 1000,
                                            max(d) * 1000))
        return 0
    finally:
        if cg:
            cg.stop()
        stop_all()
        if dv:
            dv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
