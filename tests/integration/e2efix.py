"""
tests/integration/e2efix.py: the pieces the end-to-end tests and the IMAP
benchmark share: a private Dovecot (tests/integration/dovecot.sh, driven
through sh), a real `calgate serve` that can be killed and started again on
the same data, IMAP APPEND, CalDAV sync-collection/GET, and the store.
Debian's /usr/bin/python3 only; everything on 127.0.0.1, every wait bounded.
"""
import base64
import http.client
import imaplib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CALGATE_BIN", os.path.join(ROOT, "calgate"))
DOVECOT_SH = os.path.join(ROOT, "tests", "integration", "dovecot.sh")
DOVECOT_VARS = ["DOVECOT_DIR", "DOVECOT_CONF", "DOVECOT_PORT",
                "DOVECOT_TLS_PORT", "DOVECOT_CA", "DOVECOT_LOG",
                "DOVECOT_RAWLOG", "DOVECOT_UID", "DOVECOT_GID"]


def wait_for(seconds, fn, step=0.05):
    """fn() until it is true or seconds have passed; its last value."""
    end = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() >= end:
            return v
        time.sleep(step)


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
                            "sh"] + list(args), env=getattr(self, "env",
                                                             os.environ),
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("dovecot.sh %s: %s" % (script[:40], r.stderr))
        return r.stdout

    def user(self, name, password):
        self.sh("dovecot_user \"$1\" \"$2\"", name, password)
        self.users[name] = password

    def drop(self, user, data):
        path = os.path.join(self.env["DOVECOT_DIR"], "drop.eml")
        with open(path, "wb") as f:
            f.write(data)
        self.sh("dovecot_drop \"$1\" \"$2\"", user, path)

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


# ---------------------------------------------------------------- calgate

def pwhash(password):
    return subprocess.run([BIN, "passwd"], input=password + "\n",
                          capture_output=True, text=True,
                          check=True).stdout.strip()


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode("utf-8", "replace")


class Calgate:
    """A real `calgate serve` on a config file; start() again after
    kill() or stop() serves the same data."""

    def __init__(self, directory, config_text, passwords):
        self.dir = directory
        self.conf = os.path.join(directory, "calgate.conf")
        self.passwords = passwords
        with open(self.conf, "w") as f:
            f.write(config_text)
        self.proc = None
        self.port = None
        self.starts = 0
        self.logs = []

    def start(self):
        self.starts += 1
        log = os.path.join(self.dir, "calgate.%d.log" % self.starts)
        self.logs.append(log)
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.conf],
                                     stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT)
        self.port = None

        def started():
            if self.proc.poll() is not None:
                return True
            m = re.search(r"server start .*listen=127\.0\.0\.1:(\d+)",
                          open(log).read())
            if m:
                self.port = int(m.group(1))
            return self.port is not None
        wait_for(10, started)
        if self.port is None:
            raise RuntimeError("calgate did not start:\n" + open(log).read())
        self.origin = "http://127.0.0.1:%d" % self.port

    def log_text(self):
        return "".join(open(p, errors="replace").read() for p in self.logs)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def stop(self):
        """SIGTERM; milliseconds it took to exit."""
        t0 = time.time()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.rc = self.proc.returncode if self.proc else None
        self.proc = None
        return (time.time() - t0) * 1000

    def request(self, method, path, user="alice", body=b"", headers=None):
        h = dict(headers or {})
        if user:
            tok = base64.b64encode(("%s:%s" % (user, self.passwords[user]))
                                   .encode()).decode()
            h["Authorization"] = "Basic " + tok
        if isinstance(body, str):
            body = body.encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                c.putheader(k, v)
            c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            if body:
                c.send(body)
            r = c.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read())
        finally:
            c.close()

    # ---- CalDAV

    def sync(self, user, token="", cal="default"):
        """sync-collection REPORT: (status, new token, [(href, status)])."""
        body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
                '<D:sync-token>%s</D:sync-token><D:sync-level>1'
                '</D:sync-level><D:prop><D:getetag/></D:prop>'
                '</D:sync-collection>' % token)
        r = self.request("REPORT", "/dav/calendars/%s/%s/" % (user, cal),
                         user=user, body=body,
                         headers={"Content-Type": "application/xml",
                                  "Depth": "0"})
        t = r.text()
        m = re.search(r"<D:sync-token>([^<]+)</D:sync-token>", t)
        items = []
        for resp in re.findall(r"<D:response>(.*?)</D:response>", t, re.S):
            href = re.search(r"<D:href>([^<]+)</D:href>", resp)
            st = re.search(r"<D:status>HTTP/1.1 (\d+)", resp)
            items.append((href.group(1) if href else None,
                          int(st.group(1)) if st else None))
        return r.status, m.group(1) if m else None, items

    def get(self, path, user="alice"):
        return self.request("GET", path, user=user)

    def objects(self, user, cal="default"):
        """Every object's body in the calendar, by href."""
        st, _, items = self.sync(user, "", cal)
        out = {}
        for href, _s in items:
            if href and not href.endswith("/"):
                r = self.get(href, user)
                if r.status == 200:
                    out[href] = r.text()
        return out

    # ---- status API

    def status(self, user):
        r = self.request("GET", "/api/status", user=user)
        return json.loads(r.body) if r.status == 200 else None

    def recheck(self, user, log_id):
        s = self.status(user)
        r = self.request("POST", "/api/invitations/%d/recheck" % log_id,
                         user=user, headers={"Origin": self.origin,
                                             "X-CSRF-Token": s["csrf"]})
        return r

    # ---- store

    def db(self, sql, *args):
        c = sqlite3.connect(os.path.join(self.dir, "data", "calgate.db"),
                            timeout=10)
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def imip(self, user, where="1", *args):
        return self.db("SELECT l.id, l.decision, l.reason, l.next_retry, "
                       "l.ical_uid, l.message_id, l.imap_uid FROM imip_log "
                       "l JOIN users u ON u.id = l.user_id WHERE u.name = ? "
                       "AND " + where + " ORDER BY l.id", user, *args)
