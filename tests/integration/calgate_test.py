"""tests/integration/calgate_test.py: a real calgate for Python tests, and
the result counter every Python test prints its last line with.

    import calgate_test as ct
    with ct.Calgate() as cg:          # users alice/alice-pw, bob/bob-pw
        r = cg.request("PROPFIND", "/dav/", user="alice", body=b"...",
                       headers={"Depth": "0"})
        r.status, r.headers, r.body, r.text(), r.json()
    t = ct.Results(); t.check(cond, "what"); t.finish()  # "N passed, M failed"

Calgate(extra_config="") writes a config into a temp dir, listens on
127.0.0.1 port 0 and reads the port from the "server start" log line (10 s
bound). The process is killed and the directory removed on exit from the
with-block, even on failure. A test that runs longer than
CALGATE_TEST_TIMEOUT seconds (default 100) gets a TimeoutError inside the
block (alarm()), so a hung client cannot hang make check.

Server(directory, config_text, passwords) is the same server on a config
of the test's own, which it can stop, kill and start() again on the same
data; it also speaks CalDAV (sync, objects), the status API with its CSRF
token (status, post, recheck, account, rows) and reads the store (db, imip).

CALGATE_BIN (or CALGATE) picks another binary; set BIN before starting.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CALGATE_BIN") or os.environ.get("CALGATE") or \
    os.path.join(ROOT, "calgate")
USERS = {"alice": ("alice-pw", "alice@example.com, a.smith@example.com"),
         "bob": ("bob-pw", "bob@example.org")}


def pwhash(password):
    return subprocess.run([BIN, "passwd"], input=password + "\n",
                          capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def wait_for(seconds, fn, step=0.05):
    """fn() until it is true or seconds have passed; its last value."""
    end = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() >= end:
            return v
        time.sleep(step)


def alarm(seconds):
    """A TimeoutError in the main thread after seconds (0: cancel)."""
    def expired(sig, frame):
        raise TimeoutError("test took too long")
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The body as JSON, or None."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None


def request(port, method, path, auth=None, body=b"", headers=None,
            timeout=30):
    """One HTTP request to 127.0.0.1:port; auth is (user, password) or
    None. path is sent as it is, so tests can send encoded or malformed
    paths; Content-Length always, no Accept-Encoding."""
    h = dict(headers or {})
    if auth:
        tok = base64.b64encode(("%s:%s" % auth).encode()).decode()
        h["Authorization"] = "Basic " + tok
    if isinstance(body, str):
        body = body.encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        if body:
            c.send(body)
        r = c.getresponse()
        # r.msg: headers by name, whatever their case
        return Response(r.status, r.msg, r.read())
    finally:
        c.close()


class Server:
    """A real `calgate serve` on directory/calgate.conf (data in
    directory/data); start() again after kill() or stop() serves the same
    data. passwords: user -> CalDAV password, for request()."""

    def __init__(self, directory, config_text, passwords, timeout=20):
        self.dir = directory
        self.conf = os.path.join(directory, "calgate.conf")
        self.passwords = passwords
        self.timeout = timeout          # of each request
        self.proc = self.port = self.rc = None
        self.starts = 0
        self.logs = []
        self.seen = []      # every (path, headers, body) received
        if config_text is not None:
            self.configure(config_text)

    def configure(self, text):
        """Writes the config file; a reload never sees half a file."""
        with open(self.conf + ".new", "w") as f:
            f.write(text)
        os.rename(self.conf + ".new", self.conf)

    def start(self):
        self.starts += 1
        log = os.path.join(self.dir, "calgate.%d.log" % self.starts)
        self.logs.append(log)
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.conf],
                                     stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT)
        self.port = None
        self.csrf = {}

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
        self.url = "http://127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return "".join(open(p, errors="replace").read() for p in self.logs)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def stop(self):
        """SIGTERM (SIGKILL after 10 s); milliseconds it took to exit."""
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

    def sighup(self):
        """Sends SIGHUP and waits (10 s) until calgate logged the reload."""
        n = self.log_text().count("config reloaded")
        self.proc.send_signal(signal.SIGHUP)
        return wait_for(10, lambda: self.log_text().count(
            "config reloaded") > n)

    def request(self, method, path, user="alice", body=b"", headers=None,
                password=None):
        """request() as user (None: no credentials) with user's password
        (or password)."""
        auth = (user, password or self.passwords[user]) if user else None
        r = request(self.port, method, path, auth, body, headers,
                    self.timeout)
        self.seen.append((path, repr(sorted(r.headers.items())).encode(),
                          r.body))
        return r

    def get(self, path, user="alice"):
        return self.request("GET", path, user=user)

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
        r = self.get("/api/status", user)
        return r.json() if r.status == 200 else None

    def token(self, user):
        """user's CSRF token (asked once a start)."""
        if user not in self.csrf:
            self.csrf[user] = self.status(user)["csrf"]
        return self.csrf[user]

    def post(self, path, user, headers=None):
        """A same-origin POST with user's CSRF token (headers override)."""
        h = {"Origin": self.url, "X-CSRF-Token": self.token(user)}
        h.update(headers or {})
        return self.request("POST", path, user, headers=h)

    def recheck(self, user, log_id, headers=None):
        return self.post("/api/invitations/%d/recheck" % log_id, user,
                         headers)

    def account(self, user):
        for a in (self.status(user) or {}).get("accounts", []):
            if a["user"] == user:
                return a
        return None

    def wait_state(self, user, state, secs=10):
        return wait_for(secs, lambda: (self.account(user) or {}).get(
            "state") == state)

    def rows(self, user="alice"):
        r = self.get("/api/invitations?limit=200", user)
        return r.json()["invitations"] if r.status == 200 else []

    def wait_row(self, pred, user="alice", secs=10):
        """The first of user's invitations pred accepts (None after secs)."""
        found = []

        def look():
            found[:] = [r for r in self.rows(user) if pred(r)]
            return bool(found)
        return found[0] if wait_for(secs, look) else None

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


class Calgate(Server):
    """A with-block: a Server in a temp dir with USERS."""

    def __init__(self, extra_config=""):
        self.extra = extra_config
        self.dir = self.proc = None

    def __enter__(self):
        alarm(int(os.environ.get("CALGATE_TEST_TIMEOUT", "100")))
        d = tempfile.mkdtemp(prefix="calgate-test.")
        conf = ["[server]", "listen = 127.0.0.1:0",
                "data_dir = %s/data" % d, "max_body = 4M", "threads = 4"]
        for name, (pw, addrs) in USERS.items():
            conf += ["[user %s]" % name, "password = %s" % pwhash(pw),
                     "addresses = %s" % addrs]
        Server.__init__(self, d, "\n".join(conf) + "\n" + self.extra + "\n",
                        {u: pw for u, (pw, _) in USERS.items()}, timeout=30)
        try:
            self.start()
        except RuntimeError as e:
            sys.stdout.write(str(e) + "\n")
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what)
        sys.stdout.flush()
        return cond

    def finish(self):
        """Prints "N passed, M failed" and exits (1 on a failure)."""
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
