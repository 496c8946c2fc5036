"""
tests/integration/e2efix.py: everything running together, for the
end-to-end tests (test_e2e_imap.py, test_recheck.py, status_page.py) and
the IMAP benchmark: a private Dovecot (dovecot.sh, driven through sh), and
Stack, a ready-made whole: a real unbound serving the test zones, that
Dovecot, and `calgate serve` (calgate_test.Server) polling alice's INBOX
there, with Google-Workspace-shaped invitations signed by dkimpy
(mailfix.py). Debian's /usr/bin/python3 only; everything on 127.0.0.1,
every wait bounded.

    with e2efix.Stack() as s:       # alice (IMAP), bob, root (admin)
        s.wait_state("alice", "idle")
        s.deliver(s.google_invite("g1@partner-firm.fi"))
        row = s.wait_row(lambda r: r["uid"] == "g1@partner-firm.fi")
        s.write_config(alice_policy=e2efix.RELAXED)
        s.reload_http()  # or s.sighup()
        r = s.recheck("alice", row["id"])

The with-block's exit ends calgate, Dovecot and unbound even on failure
and removes the temp directory (KEEP=1 keeps it).
"""
import imaplib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import calgate_test as ct
import mailfix
# Calgate, pwhash, wait_for: for tests/bench/imap_latency.py.
from calgate_test import Server as Calgate, pwhash, wait_for

__all__ = ["Calgate", "Dovecot", "Stack", "pwhash", "wait_for"]

DOVECOT_SH = os.path.join(ct.ROOT, "tests", "integration", "dovecot.sh")
DOVECOT_VARS = ["DOVECOT_DIR", "DOVECOT_CONF", "DOVECOT_PORT",
                "DOVECOT_TLS_PORT", "DOVECOT_CA", "DOVECOT_LOG",
                "DOVECOT_RAWLOG", "DOVECOT_UID", "DOVECOT_GID"]


# ---------------------------------------------------------------- Dovecot

class Dovecot:
    """dovecot.sh's functions, each run in a fresh sh with the state that
    dovecot_start printed."""

    def __init__(self, directory):
        self.env = dict(os.environ)
        self.env["DOVECOT_DIR"] = directory
        self.env["DOVECOT_CONF"] = os.path.join(directory, "dovecot.conf")
        try:
            out = self._start(directory)
        except Exception:
            self.cleanup()      # it may be running even though it failed
            raise
        for line in out.splitlines():
            k, _, v = line.partition("=")
            if k in DOVECOT_VARS:
                self.env[k] = v
        self.port = int(self.env["DOVECOT_PORT"])
        self.tls_port = int(self.env["DOVECOT_TLS_PORT"])
        self.ca = self.env["DOVECOT_CA"]
        self.log = self.env["DOVECOT_LOG"]
        self.rawlog = self.env["DOVECOT_RAWLOG"]
        self.users = {}

    def _start(self, directory):
        # Dovecot's daemons must not hold our pipes open.
        return self.sh("dovecot_start \"$1\" >\"$1.start\" 2>&1 || "
                       "{ cat \"$1.start\" >&2; exit 1; }; for v in %s; "
                       "do eval \"echo $v=\\$$v\"; done" %
                       " ".join(DOVECOT_VARS), directory)

    def sh(self, script, *args, timeout=60):
        r = subprocess.run(["sh", "-c", ". \"%s\"; %s" % (DOVECOT_SH, script),
                            "sh"] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("dovecot.sh %s: %s" % (script[:40], r.stderr))
        return r.stdout

    def user(self, name, password):
        self.sh("dovecot_user \"$1\" \"$2\"", name, password)
        self.users[name] = password

    def _file(self, data):
        path = os.path.join(self.env["DOVECOT_DIR"], "drop.eml")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def save(self, user, data):
        """Delivers data (bytes) to user's INBOX with doveadm save."""
        self.sh("dovecot_save \"$1\" \"$2\"", user, self._file(data))

    def drop(self, user, data):
        """Puts data straight into user's maildir (Dovecot may be down)."""
        self.sh("dovecot_drop \"$1\" \"$2\"", user, self._file(data))

    def maildir(self, user):
        return self.sh("dovecot_maildir \"$1\"", user).strip()

    def logins_failed(self, user):
        try:
            return int(self.sh("dovecot_logins_failed \"$1\" || true",
                               user).strip() or 0)
        except ValueError:
            return 0

    def stop(self):
        self.sh("dovecot_stop")

    def restart(self):
        self.sh("dovecot_restart >\"$DOVECOT_DIR/restart.log\" 2>&1 || "
                "{ cat \"$DOVECOT_DIR/restart.log\" >&2; exit 1; }")

    def cleanup(self, keep=False):
        """Stops Dovecot; removes its directory unless keep."""
        try:
            self.sh("dovecot_stop" if keep else "dovecot_cleanup")
        except Exception:
            pass

    def append(self, user, messages):
        """IMAP APPEND of each message (bytes) to user's INBOX, on one
        connection; returns the time of each APPEND's completion."""
        if isinstance(messages, bytes):
            messages = [messages]
        im = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
        done = []
        try:
            im.login(user, self.users[user])
            for m in messages:
                typ, _ = im.append("INBOX", None, None, m)
                if typ != "OK":
                    raise RuntimeError("APPEND failed")
                done.append(time.time())
            im.logout()
        finally:
            try:
                im.shutdown()
            except Exception:
                pass
        return done


# ---------------------------------------------------------------- Stack

def run_stack(run, results):
    """run(stack) in a Stack, then results.finish(); a broken setup or
    run is a failed check, not a crash."""
    try:
        with Stack() as s:
            run(s)
    except Exception as e:
        traceback.print_exc()
        results.check(False, "setup or run: %r" % e)
    results.finish()


PASSWORD = "E2e horse battery 9"        # every user's CalDAV password
IMAP_SECRET = "imap-e2e-S3cret-never-shown"
FROM = "maria@partner-firm.fi"
ALIGNED_FROM = "tom@bigcorp.example"
TENANT = "partner-firm-fi.20230601.gappssmtp.com"
SELECTOR = "20230601"
# A line of the text part: message bodies never reach a response.
BODY_MARKER = "You have been invited to"

STRICT = "policy.require = dmarc"
RELAXED = "policy.require = dkim\npolicy.dkim_signers = google-workspace"


class Stack(ct.Server):
    """A calgate_test.Server (users alice, whose INBOX it polls, bob and
    root, the admin) with its unbound (self.unbound) and Dovecot (self.dv)
    in one temp dir (self.dir)."""

    def __init__(self):
        self.tmp = self.dv = self.proc = None

    def __enter__(self):
        # Killed by timeout(1) or make: still stop what was started.
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _setup(self):
        self.tmp = tempfile.mkdtemp(prefix="calgate-e2e-")
        self.key, pub = mailfix.rsa_key(self.tmp, 2048)
        rsa = "v=DKIM1; k=rsa; p=" + pub
        # partner-firm.fi publishes no DMARC record: Google Workspace
        # without DMARC, the case calgate was written for.
        self.zones = ["google.com", "gappssmtp.com", "partner-firm.fi",
                      "aligned.example", "bigcorp.example"]
        self.recs = [
            mailfix.txt("%s._domainkey.google.com" % SELECTOR, rsa),
            mailfix.txt("%s._domainkey.%s" % (SELECTOR, TENANT), rsa),
            # a sender with DMARC and an aligned signature
            mailfix.txt("_dmarc.bigcorp.example", "v=DMARC1; p=reject"),
            mailfix.txt("s1._domainkey.bigcorp.example", rsa),
            # start_unbound's readiness probe asks for this one
            mailfix.txt("_dmarc.aligned.example", "v=DMARC1; p=reject")]
        # slowdns.example: lookups time out (SERVFAIL), until
        # dns_heal() serves it: a temporary failure, then a fixed one.
        self.slow_recs = [
            mailfix.txt("_dmarc.slowdns.example", "v=DMARC1; p=reject"),
            mailfix.txt("s1._domainkey.slowdns.example", rsa)]
        self.unbound, self.dns_port = mailfix.start_unbound(
            self.tmp, self.zones, self.recs, ["slowdns.example"])
        self.dv = Dovecot(os.path.join(self.tmp, "dovecot"))
        self.dv.user("alice", IMAP_SECRET)
        self.hash = pwhash(PASSWORD)
        ct.Server.__init__(self, self.tmp, None, dict.fromkeys(
            ("alice", "bob", "root"), PASSWORD))
        self.write_config()
        self.start()

    def close(self):
        self.stop()
        keep = bool(os.environ.get("KEEP"))
        if self.dv:
            self.dv.cleanup(keep)
            self.dv = None
        mailfix.stop_all()
        if self.tmp and not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            print("kept", self.tmp)

    def dns_heal(self):
        """Restarts unbound on the same port, now serving slowdns.example
        (a signing key and DMARC p=reject)."""
        mailfix.stop_unbound(self.unbound)
        self.unbound, _ = mailfix.start_unbound(
            self.tmp, self.zones + ["slowdns.example"],
            self.recs + self.slow_recs, [], port=self.dns_port)

    def deliver(self, msg, user="alice"):
        """Delivers msg (bytes) to user's INBOX with doveadm save."""
        self.dv.save(user, msg)

    # ---- mail -------------------------------------------------------------

    def google_invite(self, uid, subject=None, summary=None):
        """An invitation as Google Workspace sends it for a domain with no
        DMARC record: signed by the tenant's gappssmtp.com domain and by
        google.com, neither aligned with From."""
        msg = self.invite(FROM, uid, subject, summary)
        msg = mailfix.sign(msg, SELECTOR, TENANT, self.key)
        return mailfix.sign(msg, SELECTOR, "google.com", self.key)

    def aligned_invite(self, uid, subject=None, summary=None,
                       frm=ALIGNED_FROM):
        """An invitation from a domain with p=reject, signed by it."""
        msg = self.invite(frm, uid, subject, summary)
        return mailfix.sign(msg, "s1", frm.split("@")[1], self.key)

    @staticmethod
    def invite(frm, uid, subject, summary):
        cal = mailfix.calendar(frm, attendee="alice@calgate.test", uid=uid)
        if summary is not None:
            cal = cal.replace("SUMMARY:Planning meeting",
                              "SUMMARY:" + summary)
        msg = mailfix.invite(frm, attendee="alice@calgate.test", uid=uid,
                             cal=cal)
        msg = msg.replace(b"Message-ID: <", ("Message-ID: <%s." % uid)
                          .encode(), 1)
        if subject is not None:
            head, sep, body = msg.partition(b"\r\n\r\n")
            head = re.sub(rb"(?m)^Subject: [^\r]*",
                          lambda m: b"Subject: " + subject.encode(), head,
                          count=1)
            msg = head + sep + body
        return msg

    # ---- calgate ------------------------------------------------------------

    def write_config(self, alice_policy=STRICT):
        self.configure(self.config_text(alice_policy))

    def config_text(self, alice_policy=STRICT):
        """The configuration file, with alice's policy lines."""
        pwfile = os.path.join(self.tmp, "alice.imap")
        if not os.path.exists(pwfile):
            with open(pwfile, "w") as f:
                f.write(IMAP_SECRET + "\n")
            os.chmod(pwfile, 0o600)
        return """[server]
listen = 127.0.0.1:0
data_dir = {tmp}/data
[dns]
resolver = 127.0.0.1@{dns}
timeout_ms = 2000
[policy]
require = dmarc
[user alice]
password = {h}
addresses = alice@calgate.test
imap = imap://alice@127.0.0.1:{imap}/INBOX
imap_tls = none
imap_password_file = {pw}
{policy}
[user bob]
password = {h}
addresses = bob@calgate.test
[user root]
password = {h}
addresses = root@calgate.test
admin = yes
""".format(tmp=self.tmp, dns=self.dns_port, h=self.hash,
           imap=self.dv.port, pw=pwfile, policy=alice_policy)

    def stop_clean(self, check):
        """Stops calgate and checks its log and exit: no secret, no
        sanitizer report, status 0."""
        self.stop()
        log = self.log_text()
        check(IMAP_SECRET not in log and PASSWORD not in log,
              "no secret in the log")
        san = re.search(r"Sanitizer|runtime error:", log)
        check(not san, "no sanitizer report" + (":\n" + log[-3000:] if san
                                                else ""))
        check(self.rc == 0, "clean exit (%s)" % self.rc)

    def reload_http(self):
        return self.post("/api/reload", "root")

    def secrets(self):
        """Strings no response outside /dav/ may ever carry."""
        return [PASSWORD, self.hash, IMAP_SECRET, BODY_MARKER,
                "DKIM-Signature", "BEGIN:VCALENDAR"]

    def leaks(self):
        out = set()
        for path, hdrs, data in self.seen:
            if path.startswith("/dav/"):
                continue        # CalDAV serves the event itself
            blob = hdrs + data
            for s in self.secrets():
                if s.encode() in blob:
                    out.add(s)
        return out
