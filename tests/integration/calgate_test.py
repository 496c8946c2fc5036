"""tests/integration/calgate_test.py: a throw-away calgate for Python tests.

    import calgate_test as ct
    with ct.Calgate() as cg:          # users alice/alice-pw, bob/bob-pw
        r = cg.request("PROPFIND", "/dav/", user="alice", body=b"...",
                       headers={"Depth": "0"})
        r.status, r.headers, r.body
    t = ct.Results(); t.check(cond, "what"); t.finish()  # "N passed, M failed"

Calgate(extra_config="") writes a config into a temp dir, listens on
127.0.0.1 port 0 and reads the port from the "server start" log line (10 s
bound). CALGATE_BIN picks another binary. The process is killed and the
directory removed on exit from the with-block, even on failure. A test
that runs longer than CALGATE_TEST_TIMEOUT seconds (default 100) gets a
TimeoutError inside the block, so a hung client cannot hang make check.
"""
import base64
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CALGATE_BIN", os.path.join(ROOT, "calgate"))
USERS = {"alice": ("alice-pw", "alice@example.com, a.smith@example.com"),
         "bob": ("bob-pw", "bob@example.org")}


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
    def __init__(self, extra_config=""):
        self.extra = extra_config
        self.dir = self.proc = self.port = None

    def __enter__(self):
        def expired(sig, frame):
            raise TimeoutError("test took too long")
        signal.signal(signal.SIGALRM, expired)
        signal.alarm(int(os.environ.get("CALGATE_TEST_TIMEOUT", "100")))
        self.dir = tempfile.mkdtemp(prefix="calgate-test.")
        conf = ["[server]", "listen = 127.0.0.1:0",
                "data_dir = %s/data" % self.dir, "max_body = 4M",
                "threads = 4"]
        for name, (pw, addrs) in USERS.items():
            conf += ["[user %s]" % name, "password = %s" % pwhash(pw),
                     "addresses = %s" % addrs]
        path = os.path.join(self.dir, "calgate.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n" + self.extra + "\n")
        self.log = os.path.join(self.dir, "calgate.log")
        self.proc = subprocess.Popen([BIN, "serve", "-c", path],
                                     stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"server start .*listen=127\.0\.0\.1:(\d+)",
                          open(self.log).read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            sys.stdout.write(open(self.log).read())
            self.__exit__(None, None, None)
            raise RuntimeError("calgate did not start")
        self.url = "http://127.0.0.1:%d" % self.port
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, user="alice", body=b"", headers=None,
                password=None):
        """One HTTP request as user (None: no credentials); path is sent
        as it is, so tests can send encoded or malformed paths."""
        h = dict(headers or {})
        if user:
            pw = password or USERS[user][0]
            tok = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
            h["Authorization"] = "Basic " + tok
        if isinstance(body, str):
            body = body.encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
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
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
