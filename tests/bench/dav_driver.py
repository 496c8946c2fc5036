#!/usr/bin/python3
"""CalDAV benchmark: calgate side by side with Radicale and Xandikos.

Run by tests/bench/dav_bench.sh (make bench). For each size (1,000 and
10,000 events, 20% recurring) the same generated events go into a fresh
instance of each server over loopback; then wrk drives PROPFIND Depth 1,
calendar-query over one month, multiget of 50, sync-collection initial
and incremental, GET and PUT for a bounded time each.

Every scenario is measured twice, with the same requests:
- throughput: wrk -t2 -c8 (8 connections, the server saturated). Its
  requests/s is the "req/s" column and its 99th percentile the "p99 8c"
  column. On a 2-core machine 8 busy connections mostly wait in line, so
  that p99 is queueing: about 8 / throughput, however fast one request is.
- latency (reads only): a separate, shorter wrk -t1 -c1 run, one request
  at a time; its 99th percentile is the "p99 1c" column. The 20 ms read
  target is checked against this one.
A request a peer needs more than a second for is timed sequentially on one
connection instead (wrk would count none of them inside its window): that
is one request at a time already, so its p99 goes to "p99 1c" and "p99 8c"
stays empty. Likewise the latency run falls back to timing by hand when
one request takes over a second once the saturated run's queue is done. Prints both per server, calgate's throughput ratio to the
faster peer, calgate's RSS, and how each scenario's cost (time per request
at 8 connections) grows from the small to the large set, next to how its
answer grows.

Environment: DAV_BENCH_SIZES (default "1000 10000"), DAV_BENCH_SECONDS
(throughput run, default 5), DAV_BENCH_LATENCY_SECONDS (one-connection
run, default 3), DAV_BENCH_SERVERS (default "calgate radicale xandikos").
"""
import base64
import concurrent.futures
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CALGATE = os.path.join(ROOT, "calgate")
SIZES = [int(x) for x in os.environ.get("DAV_BENCH_SIZES",
                                        "1000 10000").split()]
SECONDS = int(os.environ.get("DAV_BENCH_SECONDS", "5"))
LAT_SECONDS = int(os.environ.get("DAV_BENCH_LATENCY_SECONDS", "3"))
SERVERS = os.environ.get("DAV_BENCH_SERVERS",
                         "calgate radicale xandikos").split()
USER, PASSWORD = "bench", "bench-password"
AUTH = "Basic " + base64.b64encode(
    ("%s:%s" % (USER, PASSWORD)).encode()).decode()
SLOW = 1.0          # seconds: slower single requests are timed by hand
SLOW_BUDGET = 20.0  # seconds per slow scenario
XML = "application/xml; charset=utf-8"

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Helsinki
BEGIN:DAYLIGHT
TZOFFSETFROM:+0200
TZOFFSETTO:+0300
TZNAME:EEST
DTSTART:19700329T030000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0300
TZOFFSETTO:+0200
TZNAME:EET
DTSTART:19701025T040000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def event(i, rnd):
    """Event i: spread over 2025-2026, half in Europe/Helsinki, one in
    five recurring (weekly with COUNT, daily with UNTIL, a few endless
    yearly ones)."""
    day = rnd.randrange(0, 730)
    t = time.gmtime(time.mktime((2025, 1, 1, 0, 0, 0, 0, 0, 0)) +
                    day * 86400)
    hour = rnd.randrange(7, 19)
    stamp = "%04d%02d%02dT%02d%02d00" % (t.tm_year, t.tm_mon, t.tm_mday,
                                         hour, rnd.choice((0, 15, 30, 45)))
    zoned = i % 2 == 0
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0",
             "PRODID:-//calgate bench//EN"]
    if zoned:
        lines.append(VTIMEZONE.strip())
    lines += ["BEGIN:VEVENT", "UID:bench-%06d@calgate.test" % i,
              "DTSTAMP:20250101T000000Z"]
    if zoned:
        lines += ["DTSTART;TZID=Europe/Helsinki:" + stamp,
                  "DURATION:PT%dM" % rnd.choice((30, 60, 90))]
    else:
        lines += ["DTSTART:%sZ" % stamp, "DURATION:PT1H"]
    if i % 5 == 0:
        kind = (i // 5) % 10
        if kind == 0:
            lines.append("RRULE:FREQ=YEARLY")
        elif kind < 6:
            lines.append("RRULE:FREQ=WEEKLY;COUNT=%d" % rnd.randrange(4, 30))
        else:
            lines.append("RRULE:FREQ=DAILY;UNTIL=%04d%02d%02dT000000Z" % (
                t.tm_year + 1, t.tm_mon, min(t.tm_mday, 28)))
    lines += ["SUMMARY:Bench event %d" % i,
              "DESCRIPTION:Generated for the calgate benchmark.",
              "LOCATION:Room %d" % rnd.randrange(1, 40),
              "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what):
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%d)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


class Server:
    name = "?"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dav-bench-%s." % self.name)
        self.port = free_port()
        self.proc = None

    def request(self, method, path, body=b"", headers=None, conn=None):
        h = {"Authorization": AUTH}
        h.update(headers or {})
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=120)
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        if own:
            conn.close()
        return r.status, data

    def stop(self, keep=False):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kb(self):
        out = {}
        try:
            for line in open("/proc/%d/status" % self.proc.pid):
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
        except OSError:
            pass
        return out


class Calgate(Server):
    name = "calgate"
    cal = "/dav/calendars/%s/bench/" % USER

    def start(self):
        pw = subprocess.run([CALGATE, "passwd"], input=PASSWORD + "\n",
                            capture_output=True, text=True,
                            check=True).stdout.strip()
        conf = os.path.join(self.dir, "calgate.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\ndata_dir = %s/data\n"
                    "threads = 8\n[user %s]\npassword = %s\n"
                    "addresses = bench@example.com\n" % (
                        self.port, self.dir, USER, pw))
        self.proc = subprocess.Popen(
            [CALGATE, "serve", "-c", conf],
            stdout=open(os.path.join(self.dir, "log"), "w"),
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, self.name)
        self.request("PROPFIND", "/dav/calendars/%s/" % USER,
                     headers={"Depth": "0"})
        st, _ = self.request("MKCALENDAR", self.cal)
        if st not in (201, 405):
            raise RuntimeError("calgate MKCALENDAR: %d" % st)


class Radicale(Server):
    name = "radicale"
    cal = "/%s/bench/" % USER

    def preload(self, events):
        """Writes the items into Radicale's folder while it is stopped:
        its PUT slows down with the collection size and would take most
        of an hour for 10,000 events."""
        folder = os.path.join(self.dir, "collections", "collection-root",
                              USER, "bench")
        self.stop(keep=True)
        for i, body in enumerate(events):
            with open(os.path.join(folder, "ev%06d.ics" % i), "w",
                      newline="") as f:
                f.write(body)
        self.start(created=True)

    def start(self, created=False):
        conf = os.path.join(self.dir, "config")
        with open(conf, "w") as f:
            f.write("[server]\nhosts = 127.0.0.1:%d\n[auth]\ntype = none\n"
                    "[rights]\ntype = owner_only\n[storage]\n"
                    "filesystem_folder = %s/collections\n[logging]\n"
                    "level = warning\nmask_passwords = True\n" % (
                        self.port, self.dir))
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "radicale", "--config", conf],
            stdout=open(os.path.join(self.dir, "log"), "w"),
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, self.name)
        if created:
            return
        st, _ = self.request("MKCALENDAR", self.cal)
        if st != 201:
            raise RuntimeError("radicale MKCALENDAR: %d" % st)


class Xandikos(Server):
    name = "xandikos"
    cal = "/user/calendars/calendar/"

    def preload(self, events):
        """Commits the items into the calendar's git repository while
        Xandikos is stopped: one commit per PUT grows with the repository
        and would take most of an hour for 10,000 events."""
        repo = os.path.join(self.dir, "data", "user", "calendars",
                            "calendar")
        self.stop(keep=True)
        names = []
        for i, body in enumerate(events):
            names.append("ev%06d.ics" % i)
            with open(os.path.join(repo, names[-1]), "w", newline="") as f:
                f.write(body)
        git = ["git", "-C", repo, "-c", "user.name=bench", "-c",
               "user.email=bench@example.com"]
        for k in range(0, len(names), 1000):
            subprocess.run(git + ["add", "--"] + names[k:k + 1000],
                           check=True)
        subprocess.run(git + ["commit", "-q", "-m", "bench data"],
                       check=True)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/xandikos", "-d", self.dir + "/data", "--defaults",
             "-l", "127.0.0.1", "-p", str(self.port)],
            stdout=open(os.path.join(self.dir, "log"), "w"),
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, self.name)


KINDS = {"calgate": Calgate, "radicale": Radicale, "xandikos": Xandikos}


def upload(srv, events):
    """PUT every event, 8 connections in parallel."""
    local = threading.local()

    def put(item):
        i, body = item
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                    timeout=120)
        st, _ = srv.request("PUT", "%sev%06d.ics" % (srv.cal, i),
                            body.encode(), {"Content-Type":
                                            "text/calendar; charset=utf-8",
                                            "If-None-Match": "*"},
                            conn=local.conn)
        if st not in (201, 204):
            raise RuntimeError("%s PUT ev%06d: %d" % (srv.name, i, st))

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, enumerate(events)))
    return time.time() - t0


def bodies(srv, n):
    hrefs = "".join("<D:href>%sev%06d.ics</D:href>" % (srv.cal, i)
                    for i in range(0, min(n, 50 * 7), 7))
    return {
        "propfind": ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:">'
                     '<D:prop><D:getetag/><D:getcontenttype/>'
                     '<D:resourcetype/></D:prop></D:propfind>'),
        "query": ('<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
                  'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
                  '<D:getetag/><C:calendar-data/></D:prop><C:filter>'
                  '<C:comp-filter name="VCALENDAR"><C:comp-filter '
                  'name="VEVENT"><C:time-range start="20260301T000000Z" '
                  'end="20260401T000000Z"/></C:comp-filter></C:comp-filter>'
                  '</C:filter></C:calendar-query>'),
        "multiget": ('<?xml version="1.0"?><C:calendar-multiget '
                     'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                     '<D:prop><D:getetag/><C:calendar-data/></D:prop>%s'
                     '</C:calendar-multiget>' % hrefs),
        "sync": ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
                 '<D:sync-token>%s</D:sync-token><D:sync-level>1'
                 '</D:sync-level><D:prop><D:getetag/></D:prop>'
                 '</D:sync-collection>'),
    }


def lua_quote(s):
    return "[==[" + s + "]==]"


def lua_script(method, path, headers, body=None, paths=None, put=None):
    h = dict(headers)
    h["Authorization"] = AUTH
    lines = ["wrk.method = %s" % lua_quote(method)]
    for k, v in h.items():
        lines.append("wrk.headers[ %s ] = %s" % (lua_quote(k), lua_quote(v)))
    if body is not None:
        lines.append("wrk.body = %s" % lua_quote(body))
    if paths:
        lines.append("local paths = {%s}" % ",".join(lua_quote(p)
                                                    for p in paths))
        lines.append("local n = 0\nrequest = function()\n n = n + 1\n"
                     " return wrk.format(nil, paths[(n % #paths) + 1])\n"
                     "end")
    if put:
        # every request creates a new resource with a new UID
        lines.append("local counter = 0\nsetup = function(thread)\n"
                     " thread:set('tid', counter)\n counter = counter + 1\n"
                     "end\nlocal n = 0\nlocal tmpl = %s\n"
                     "request = function()\n n = n + 1\n"
                     " local uid = 'wrk-' .. tid .. '-' .. n .. '-' .. "
                     "math.random(1000000000)\n"
                     " return wrk.format('PUT', %s .. uid .. '.ics', nil, "
                     "string.format(tmpl, uid))\nend" % (
                         lua_quote(put), lua_quote(path)))
    return "\n".join(lines) + "\n"


def parse_wrk(out):
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    ms = None
    if p99:
        ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0,
                                    "s": 1000.0}[p99.group(2)]
    return (float(rps.group(1)) if rps else 0.0, ms,
            int(non2xx.group(1)) if non2xx else 0,
            int(total.group(1)) if total else 0)


def by_hand(srv, method, path, headers, body, budget=SLOW_BUDGET):
    """Sequential timing on one connection for slow servers."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=300)
    times, bad = [], 0
    t_end = time.time() + budget
    while time.time() < t_end and len(times) < 50:
        t0 = time.time()
        st, _ = srv.request(method, path, body.encode() if body else b"",
                            headers, conn=conn)
        times.append(time.time() - t0)
        bad += st >= 400
    conn.close()
    times.sort()
    rps = len(times) / sum(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
    return rps, p99, bad, len(times)


def wrk(srv, name, script, path, threads, conns, seconds):
    """One wrk run: (requests/s, p99 ms, non-2xx count, requests)."""
    run = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
         "--timeout", "30s", "--latency", "-s", script,
         "http://127.0.0.1:%d%s" % (srv.port, path)],
        capture_output=True, text=True, timeout=seconds + 60)
    if run.returncode != 0 or "error" in run.stderr.lower():
        raise RuntimeError("wrk %s: %s" % (name, run.stderr.strip()))
    return parse_wrk(run.stdout)


def run_scenario(srv, name, method, path, headers, body=None, paths=None,
                 put=None, tmp=None):
    """Throughput at 8 connections ("rps", "p99") and, for reads, the
    p99 of one request at a time ("p99_1")."""
    # probe once: a peer that needs seconds per request is timed by hand
    probe_path = paths[0] if paths else path
    probe_body = body
    if put:
        probe_path = "%sprobe-%s.ics" % (path, name)
        probe_body = put % ("probe-" + name)
    t0 = time.time()
    st, answer = srv.request(method, probe_path,
                             probe_body.encode() if probe_body else b"",
                             headers)
    dt = time.time() - t0
    if st >= 400:
        return {"rps": 0.0, "p99": None, "note": "HTTP %d" % st}
    size = len(answer)
    if dt > SLOW:
        if put:
            rps, p99, bad, n = 1 / dt, dt * 1000, 0, 1
        else:
            rps, p99, bad, n = by_hand(srv, method, probe_path, headers,
                                       probe_body)
        # one at a time: a latency, not a saturated p99
        return {"rps": rps, "p99": None, "p99_1": p99, "bytes": size,
                "note": "sequential, %d req" % n, "errors": bad}
    script = os.path.join(tmp, "%s-%s.lua" % (srv.name, name))
    with open(script, "w") as f:
        f.write(lua_script(method, path, headers, body, paths, put))
    rps, p99, non2xx, total = wrk(srv, name, script, path, 2, 8, SECONDS)
    res = {"rps": rps, "p99": p99, "errors": non2xx, "bytes": size,
           "note": "wrk, %d req" % total}
    if not put:
        res["p99_1"], bad = latency(srv, name, script, method, probe_path,
                                    path, headers, probe_body)
        res["errors"] += bad
    return res


def latency(srv, name, script, method, path, url, headers, body):
    """p99 (ms) of one request at a time and the error count. A slow
    server may still be working off the saturated run's queue: one
    request on its own waits for that, a second one shows whether wrk
    can time it (it counts only requests done inside its window)."""
    data = body.encode() if body else b""
    srv.request(method, path, data, headers)
    t0 = time.time()
    srv.request(method, path, data, headers)
    if time.time() - t0 <= SLOW:
        _, p99, bad, total = wrk(srv, name, script, url, 1, 1, LAT_SECONDS)
        if total > 0 and p99:
            return p99, bad
    _, p99, bad, _ = by_hand(srv, method, path, headers, body)
    return p99, bad


def sync_token(srv, b):
    st, data = srv.request("REPORT", srv.cal, (b["sync"] % "").encode(),
                           {"Content-Type": XML, "Depth": "0"})
    m = re.search(rb"<(?:\w+:)?sync-token>([^<]+)</", data)
    if st != 207 or not m:
        raise RuntimeError("%s initial sync: %d" % (srv.name, st))
    return m.group(1).decode()


def bench_server(kind, events, tmp):
    srv = KINDS[kind]()
    res = {}
    try:
        srv.start()
        t0 = time.time()
        if hasattr(srv, "preload"):
            srv.preload(events)
            how = "written into its storage"
        else:
            upload(srv, events)
            how = "PUT"
        b = bodies(srv, len(events))
        # warm caches (Radicale builds its item cache on first read)
        for body in (b["propfind"], b["query"]):
            srv.request("PROPFIND" if "propfind" in body else "REPORT",
                        srv.cal, body.encode(), {"Content-Type": XML,
                                                 "Depth": "1"})
        print("  %-9s loaded %d events (%s) in %.1f s" % (
            kind, len(events), how, time.time() - t0), flush=True)
        xmlh = {"Content-Type": XML}
        res["PROPFIND Depth 1"] = run_scenario(
            srv, "propfind", "PROPFIND", srv.cal,
            dict(xmlh, Depth="1"), b["propfind"], tmp=tmp)
        res["calendar-query month"] = run_scenario(
            srv, "query", "REPORT", srv.cal, dict(xmlh, Depth="1"),
            b["query"], tmp=tmp)
        res["multiget 50"] = run_scenario(
            srv, "multiget", "REPORT", srv.cal, dict(xmlh, Depth="1"),
            b["multiget"], tmp=tmp)
        res["sync initial"] = run_scenario(
            srv, "sync0", "REPORT", srv.cal, dict(xmlh, Depth="0"),
            b["sync"] % "", tmp=tmp)
        token = sync_token(srv, b)
        st, _ = srv.request("PUT", "%sev%06d.ics" % (srv.cal, 1),
                            events[1].replace("Bench event",
                                              "Changed event").encode(),
                            {"Content-Type": "text/calendar"})
        res["sync incremental"] = run_scenario(
            srv, "sync1", "REPORT", srv.cal, dict(xmlh, Depth="0"),
            b["sync"] % token, tmp=tmp)
        paths = ["%sev%06d.ics" % (srv.cal, i)
                 for i in range(0, len(events), max(1, len(events) // 100))]
        res["GET"] = run_scenario(srv, "get", "GET", paths[0], {},
                                  paths=paths, tmp=tmp)
        tmpl = events[2].replace("%", "%%").replace(
            "bench-000002@calgate.test", "%s")
        res["PUT"] = run_scenario(srv, "put", "PUT", srv.cal,
                                  {"Content-Type": "text/calendar"},
                                  put=tmpl, tmp=tmp)
        if kind == "calgate":
            res["rss"] = srv.rss_kb()
    except Exception as e:  # a peer failing must not hide the others
        print("  %-9s FAILED: %s" % (kind, e), flush=True)
        res["failed"] = str(e)
    finally:
        srv.stop()
    return res


SCENARIOS = ["PROPFIND Depth 1", "calendar-query month", "multiget 50",
             "sync initial", "sync incremental", "GET", "PUT"]
READS = SCENARIOS[:-1]


def fmt(r):
    if not r or r.get("rps") is None:
        return "%9s %7s %7s" % ("-", "-", "-")

    def ms(v):
        return "%.1f" % v if v is not None else "-"
    return "%9.1f %7s %7s" % (r["rps"], ms(r.get("p99")), ms(r.get("p99_1")))


def report(n, results):
    print("\nsize %d events. req/s and p99 8c: wrk -t2 -c8, throughput "
          "and its p99 (ms), mostly queueing\nwhen saturated; p99 1c: "
          "wrk -t1 -c1, one request at a time, latency p99 (ms); ratio: "
          "calgate\nreq/s over the faster peer's; the 20 ms read target "
          "applies to p99 1c" % n)
    head = "%-22s" % ""
    sub = "%-22s" % "scenario"
    for k in SERVERS:
        head += " %-25s" % ("  " + k)
        sub += " %9s %7s %7s" % ("req/s", "p99 8c", "p99 1c")
    print(head)
    print(sub + "   ratio  note")
    for s in SCENARIOS:
        line = "%-22s" % s
        for k in SERVERS:
            line += " " + fmt(results.get(k, {}).get(s))
        cg = results.get("calgate", {}).get(s)
        peers = [results[k][s]["rps"] for k in SERVERS
                 if k != "calgate" and s in results.get(k, {})
                 and results[k][s].get("rps")]
        ratio = ""
        if cg and cg.get("rps") and peers:
            ratio = "%6.0fx" % (cg["rps"] / max(peers))
        notes = []
        if cg and cg.get("errors"):
            notes.append("calgate errors=%d" % cg["errors"])
        if cg and s in READS and cg.get("p99_1") and cg["p99_1"] > 20:
            notes.append("p99 1c over 20 ms")
        print(line + " %7s  %s" % (ratio, ", ".join(notes)))
    for k in SERVERS:
        for s in SCENARIOS:
            r = results.get(k, {}).get(s)
            if r and r.get("note", "").startswith(("sequential", "HTTP")):
                print("  note: %s %s: %s" % (k, s, r["note"]))
    rss = results.get("calgate", {}).get("rss")
    if rss:
        print("calgate RSS %.1f MB (peak %.1f MB)%s" % (
            rss.get("VmRSS", 0) / 1024, rss.get("VmHWM", 0) / 1024,
            "  OVER 50 MB" if rss.get("VmHWM", 0) > 50 * 1024 else ""))


def growth(all_results):
    if len(SIZES) < 2 or "calgate" not in SERVERS:
        return
    a, b = SIZES[0], SIZES[-1]
    print("\ncalgate cost growth from %d to %d events (time per request "
          "at 8 connections, x%.0f data),\nnext to the growth of the "
          "answer (bytes of one response)" % (a, b, b / a))
    for s in SCENARIOS:
        ra = all_results[a].get("calgate", {}).get(s)
        rb = all_results[b].get("calgate", {}).get(s)
        if ra and rb and ra.get("rps") and rb.get("rps"):
            answer = ""
            if s in READS and ra.get("bytes") and rb.get("bytes"):
                answer = "   answer %6.2fx" % (rb["bytes"] / ra["bytes"])
            print("  %-22s %6.2fx%s" % (s, ra["rps"] / rb["rps"], answer))


def main():
    if not os.access(CALGATE, os.X_OK):
        print("dav_bench: build ./calgate first (make)")
        return 1
    for tool in ["wrk"] + [k for k in SERVERS if k != "calgate"]:
        if shutil.which(tool) is None:
            print("dav_bench: %s missing (make deps-test)" % tool)
            return 1
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="dav-bench.")
    all_results = {}
    try:
        for n in SIZES:
            rnd = random.Random(4791)
            events = [event(i, rnd) for i in range(n)]
            print("== %d events, %d recurring" % (
                n, sum(1 for e in events if "RRULE:FREQ=" in
                       e.split("BEGIN:VEVENT")[1])), flush=True)
            all_results[n] = {k: bench_server(k, events, tmp)
                              for k in SERVERS}
            report(n, all_results[n])
        growth(all_results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
