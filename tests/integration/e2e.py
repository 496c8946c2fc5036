"""
tests/integration/e2e.py: everything running together, for the end-to-end
tests (test_recheck.py, test_status_page.sh): a real unbound serving the
test zones, a private Dovecot (dovecot.sh), and `calgate serve` polling
alice's INBOX there, with Google-Workspace-shaped invitations signed by
dkimpy (mailfix.py). Debian's /usr/bin/python3 only.

    with e2e.Stack() as s:          # alice (IMAP), bob, root (admin)
        s.wait_state("alice", "idle")
        s.deliver(s.google_invite("g1@partner-firm.fi"))
        row = s.wait_row(lambda r: r["uid"] == "g1@partner-firm.fi")
        s.write_config(alice_policy=e2e.RELAXED)
        s.reload_http()  # or s.sighup()
        st, body = s.post("/api/invitations/%d/recheck" % row["id"], "alice")

CALGATE_BIN (or CALGATE) picks the binary, e.g. build-san/calgate.
Every wait is bounded; stop() (the with-block's exit) ends calgate,
Dovecot and unbound even on failure and removes the temp directory
(KEEP=1 keeps it).
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import mailfix

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("CALGATE_BIN") or os.environ.get("CALGATE") or \
    os.path.join(ROOT, "calgate")

PASSWORD = "E2e horse battery 9"
IMAP_SECRET = "imap-e2e-S3cret-never-shown"
FROM = "maria@partner-firm.fi"
ALIGNED_FROM = "tom@bigcorp.example"
TENANT = "partner-firm-fi.20230601.gappssmtp.com"
SELECTOR = "20230601"
# A line of the text part: message bodies never reach a response.
BODY_MARKER = "You have been invited to"

STRICT = "policy.require = dmarc"
RELAXED = "policy.require = dkim\npolicy.dkim_signers = google-workspace"


class Stack:
    def __init__(self):
        self.tmp = None
        self.dovecot_env = None
        self.proc = None
        self.port = None
        self.log = None
        self.hash = None
        self.csrf = {}

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self):
        # Killed by timeout(1) or make: still stop what was started.
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="calgate-e2e-")
        self.key, pub = mailfix.rsa_key(self.tmp, 2048)
        rsa = "v=DKIM1; k=rsa; p=" + pub
        # partner-firm.fi publishes no DMARC record: Google Workspace
        # without DMARC, the case calgate was written for.
        zones = ["google.com", "gappssmtp.com", "partner-firm.fi",
                 "aligned.example", "bigcorp.example"]
        recs = [mailfix.txt("%s._domainkey.google.com" % SELECTOR, rsa),
                mailfix.txt("%s._domainkey.%s" % (SELECTOR, TENANT), rsa),
                # a sender with DMARC and an aligned signature
                mailfix.txt("_dmarc.bigcorp.example", "v=DMARC1; p=reject"),
                mailfix.txt("s1._domainkey.bigcorp.example", rsa),
                # start_unbound's readiness probe asks for this one
                mailfix.txt("_dmarc.aligned.example", "v=DMARC1; p=reject")]
        self.zones, self.recs = zones, recs
        # slowdns.example: lookups time out (SERVFAIL), until
        # dns_heal() serves it: a temporary failure, then a fixed one.
        self.slow_recs = [
            mailfix.txt("_dmarc.slowdns.example", "v=DMARC1; p=reject"),
            mailfix.txt("s1._domainkey.slowdns.example", rsa)]
        for attempt in range(3):
            try:        # the free port may be taken again before unbound
                self.unbound, self.dns_port = mailfix.start_unbound(
                    self.tmp, zones, recs, ["slowdns.example"])
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.start_dovecot()
        self.hash = subprocess.run([BIN, "passwd"], input=PASSWORD + "\n",
                                   capture_output=True, text=True,
                                   check=True, timeout=30).stdout.strip()
        self.conf = os.path.join(self.tmp, "calgate.conf")
        self.write_config()
        self.start_calgate()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dovecot_env:
            self.dovecot("dovecot_stop")
            self.dovecot_env = None
        mailfix.stop_all()
        if self.tmp and not os.environ.get("KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            print("kept", self.tmp)

    def dns_heal(self):
        """Restarts unbound on the same port, now serving slowdns.example
        (a signing key and DMARC p=reject)."""
        self.unbound.terminate()
        self.unbound.wait(5)
        mailfix.PROCS.remove(self.unbound)
        self.unbound, _ = mailfix.start_unbound(
            self.tmp, self.zones + ["slowdns.example"],
            self.recs + self.slow_recs, [], port=self.dns_port)

    # ---- Dovecot, through dovecot.sh ------------------------------------

    def dovecot(self, script, stdin=None):
        """Runs script after sourcing dovecot.sh, with the variables
        dovecot_start set. Output goes to a file, not a pipe: a Dovecot
        started here would hold a pipe open and hang the wait."""
        env = dict(os.environ, IMAP_SECRET=IMAP_SECRET)
        env.update(self.dovecot_env or {})
        out = os.path.join(self.tmp, "dovecot-sh.out")
        with open(out, "w") as o:
            rc = subprocess.run(
                ["sh", "-c", ". %s/dovecot.sh\n%s" % (HERE, script)],
                env=env, input=stdin, stdout=o, stderr=subprocess.STDOUT,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                timeout=60).returncode
        with open(out, errors="replace") as o:
            return rc, o.read()

    def start_dovecot(self):
        d = os.path.join(self.tmp, "dovecot")
        # Known before anything runs, so that stop() can clean up.
        self.dovecot_env = {"DOVECOT_DIR": d,
                            "DOVECOT_CONF": os.path.join(d, "dovecot.conf")}
        rc, out = self.dovecot(
            'dovecot_start "$DOVECOT_DIR" || exit 1\n'
            'dovecot_user alice "$IMAP_SECRET" || exit 1\n'
            'for v in DOVECOT_PORT DOVECOT_UID DOVECOT_GID DOVECOT_RAWLOG '
            'DOVECOT_LOG; do eval "echo $v=\\$$v"; done')
        for line in out.splitlines():
            k, _, v = line.partition("=")
            if k.startswith("DOVECOT_"):
                self.dovecot_env[k] = v
        if rc != 0 or "DOVECOT_PORT" not in self.dovecot_env:
            raise RuntimeError("dovecot did not start: %s" % out)
        self.imap_port = int(self.dovecot_env["DOVECOT_PORT"])

    def deliver(self, msg, user="alice"):
        """Delivers msg (bytes) to user's INBOX with doveadm save."""
        rc, out = self.dovecot('dovecot_save %s /dev/stdin' % user,
                               stdin=msg)
        if rc != 0:
            raise RuntimeError("doveadm save: %s" % out)

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
        text = self.config_text(alice_policy)
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)       # a reload never sees half a file

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
           imap=self.imap_port, pw=pwfile, policy=alice_policy)

    def start_calgate(self):
        self.log = os.path.join(self.tmp, "calgate.log")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"server start .*listen=\S+:(\d+) ",
                          self.logtext())
            if m:
                self.port = int(m.group(1))
                self.url = "http://127.0.0.1:%d" % self.port
                return
            time.sleep(0.05)
        raise RuntimeError("calgate did not start:\n" + self.logtext())

    def logtext(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def sighup(self):
        """Sends SIGHUP and waits (10 s) until calgate logged the reload."""
        n = self.logtext().count("config reloaded")
        self.proc.send_signal(signal.SIGHUP)
        return wait_for(10, lambda: self.logtext().count(
            "config reloaded") > n)

    # ---- HTTP ---------------------------------------------------------------

    def request(self, method, path, user="alice", headers=None, body=b"",
                password=None):
        h = {}
        if user:
            tok = base64.b64encode(("%s:%s" % (
                user, password or PASSWORD)).encode()).decode()
            h["Authorization"] = "Basic " + tok
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = dict((k.lower(), v) for k, v in r.getheaders())
            self.seen.append((path, repr(r.getheaders()).encode(), data))
            return r.status, hdrs, data
        finally:
            c.close()

    seen = []   # every (path, headers, body) received, for secret checks

    def get_json(self, path, user="alice"):
        st, _, data = self.request("GET", path, user)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None

    def token(self, user):
        if user not in self.csrf:
            st, s = self.get_json("/api/status", user)
            self.csrf[user] = s["csrf"]
        return self.csrf[user]

    def post(self, path, user, headers=None):
        """A same-origin POST with user's CSRF token (headers override)."""
        h = {"Origin": self.url, "X-CSRF-Token": self.token(user)}
        h.update(headers or {})
        st, _, data = self.request("POST", path, user, h)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None

    def reload_http(self):
        return self.post("/api/reload", "root")

    def account(self, user):
        st, s = self.get_json("/api/status", user)
        for a in (s or {}).get("accounts", []):
            if a["user"] == user:
                return a
        return None

    def wait_state(self, user, state, secs=10):
        return wait_for(secs, lambda: (self.account(user) or {}).get(
            "state") == state)

    def rows(self, user="alice"):
        st, body = self.get_json("/api/invitations?limit=200", user)
        return body["invitations"] if st == 200 else []

    def wait_row(self, pred, user="alice", secs=10):
        found = []

        def look():
            found[:] = [r for r in self.rows(user) if pred(r)]
            return bool(found)
        return found[0] if wait_for(secs, look) else None

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


def wait_for(secs, cond, step=0.1):
    deadline = time.time() + secs
    while True:
        if cond():
            return True
        if time.time() >= deadline:
            return False
        time.sleep(step)
