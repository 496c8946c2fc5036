#!/usr/bin/python3
"""Bad input to the DAV server: malformed XML, an entity bomb, an external
entity, 10,000-deep nesting, a non-iCalendar PUT, a 2 MB property, an ICS
with two UIDs. Each gets a clean 4xx, the server stays up and the store is
unchanged. Then: alice cannot read or write bob's principal or home by any
path trick."""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

CAL = "/dav/calendars/alice/default/"
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
         "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
         "DTSTART:20260210T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n")

BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">' +
        "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1) if i
                                                 else "&lol;") * 10)
                for i in range(10)) +
        ']>\n<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol9;'
        '</D:displayname></D:prop></D:propfind>')
XXE = ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM '
       '"file:///etc/passwd">]>\n<D:propertyupdate xmlns:D="DAV:"><D:set>'
       '<D:prop><D:displayname>&xxe;</D:displayname></D:prop></D:set>'
       '</D:propertyupdate>')
DEEP = ('<D:propfind xmlns:D="DAV:">' + "<a>" * 10000 + "</a>" * 10000 +
        "</D:propfind>")


def seq(cg):
    """The store's global change counter: any write moves it."""
    db = sqlite3.connect("file:%s/data/calgate.db?mode=ro" % cg.dir,
                         uri=True)
    try:
        return db.execute("SELECT value FROM meta WHERE key='seq'"
                          ).fetchone()[0]
    finally:
        db.close()


def bad_input(t, cg):
    before = seq(cg)
    cases = [
        ("malformed XML", "PROPFIND", CAL, "<D:propfind xmlns:D='DAV:'><",
         {"Depth": "0"}),
        ("entity expansion bomb", "PROPFIND", CAL, BOMB, {"Depth": "0"}),
        ("external entity", "PROPPATCH", CAL, XXE, {}),
        ("10,000-deep nesting", "PROPFIND", CAL, DEEP, {"Depth": "0"}),
        ("malformed REPORT", "REPORT", CAL, "not xml at all", {}),
        ("non-iCalendar PUT", "PUT", CAL + "junk.ics", "hello, world\n",
         {"Content-Type": "text/calendar"}),
        ("2 MB single property in an ICS", "PUT", CAL + "big.ics",
         EVENT % ("big-1", "x" * (2 << 20)), {}),
        ("2 MB single dead property", "PROPPATCH", CAL,
         '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><X:big '
         'xmlns:X="urn:x">' + "y" * (2 << 20) + '</X:big></D:prop>'
         '</D:set></D:propertyupdate>', {}),
        ("ICS with two UIDs", "PUT", CAL + "two.ics",
         EVENT.replace("END:VCALENDAR\r\n", "") +
         (EVENT % ("b", "B")).split("VERSION:2.0\r\n")[1]
         .replace("PRODID:-//t//EN\r\n", ""), {}),
        ("ICS with METHOD", "PUT", CAL + "m.ics",
         (EVENT % ("m", "M")).replace("VERSION:2.0", "VERSION:2.0\r\n"
                                      "METHOD:REQUEST"), {}),
        ("MKCALENDAR with garbage", "MKCALENDAR", "/dav/calendars/alice/x/",
         "<<>>", {}),
        ("ICS whose END names another component", "PUT", CAL + "e.ics",
         (EVENT % ("e", "E")).replace("END:VEVENT", "BEGIN:VALARM\r\n"
                                      "END:VEVENT\r\nEND:VALARM"), {}),
        ("ICS nested 100,000 deep", "PUT", CAL + "deep.ics",
         (EVENT % ("d", "D")).replace("END:VEVENT", "BEGIN:X-A\r\n" *
                                      100000 + "END:X-A\r\n" * 100000 +
                                      "END:VEVENT"), {}),
    ]
    for what, method, path, body, hdrs in cases:
        if "%s" in body:
            body = body.replace("%s", "a")
        r = cg.request(method, path, body=body, headers=hdrs)
        t.check(400 <= r.status < 500 and b"root:" not in r.body,
                "%s: %s -> %d" % (what, method, r.status))
    t.check(cg.alive(), "server still up after bad input")
    t.check(seq(cg) == before, "store unchanged by bad input")
    r = cg.request("PROPFIND", CAL, headers={"Depth": "0"})
    t.check(r.status == 207, "server still answers")


def put(cg, user, path, uid, summary):
    return cg.request("PUT", path, user=user, body=EVENT % (uid, summary),
                      headers={"Content-Type": "text/calendar"}).status


def access(t, cg):
    bobcal = "/dav/calendars/bob/default/"
    t.check(put(cg, "bob", bobcal + "secret.ics", "secret", "Bob secret")
            == 201, "bob stores a secret event")
    t.check(put(cg, "alice", CAL + "mine.ics", "mine", "Mine") == 201,
            "alice stores an event")
    before = seq(cg)
    reads = [
        "/dav/calendars/bob/", bobcal, bobcal + "secret.ics",
        "/dav/calendars/bob/nonexistent/", "/dav/principals/bob/",
        "/dav/calendars//bob/default/secret.ics",
        "/dav/calendars/alice/../bob/default/secret.ics",
        "/dav/calendars/alice/%2e%2e/bob/default/secret.ics",
        "/dav/calendars/alice/..%2Fbob/default/secret.ics",
        "/dav/calendars/alice%2F..%2Fbob/default/secret.ics",
        "/dav/calendars/bob%00/default/secret.ics",
        "/dav/calendars/alice/default/%00/../../../bob/default/secret.ics",
        "/dav/calendars/Bob/default/secret.ics",
        "/dav/./calendars/bob/default/secret.ics",
        "/dav/calendars/alice/" + "a" * 300 + "/x.ics",
        "/dav/calendars/alice/" + "a/" * 600,
    ]
    for p in reads:
        for m, hdrs in (("GET", {}), ("PROPFIND", {"Depth": "1"})):
            r = cg.request(m, p, headers=hdrs)
            t.check(r.status in (400, 403, 404, 414) and
                    b"Bob secret" not in r.body and
                    b"/bob/" not in r.body,
                    "alice %s %s -> %d" % (m, p[:70], r.status))
    writes = [
        ("PUT", bobcal + "evil.ics", {}),
        ("PUT", "/dav/calendars/alice/../bob/default/evil.ics", {}),
        ("DELETE", bobcal + "secret.ics", {}),
        ("MKCALENDAR", "/dav/calendars/bob/evil/", {}),
        ("PROPPATCH", bobcal, {}),
        ("COPY", CAL + "mine.ics", {"Destination": bobcal + "evil.ics"}),
        ("MOVE", CAL + "mine.ics", {"Destination": cg.url +
                                    "/dav/calendars/bob/default/evil.ics"}),
        ("MOVE", CAL + "mine.ics", {"Destination": "/dav/calendars/alice/"
                                    "../bob/default/evil.ics"}),
        ("COPY", bobcal + "secret.ics", {"Destination": CAL + "stolen.ics"}),
    ]
    for m, p, hdrs in writes:
        body = EVENT % ("evil", "Evil") if m == "PUT" else (
            '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>'
            'pwned</D:displayname></D:prop></D:set></D:propertyupdate>'
            if m == "PROPPATCH" else "")
        r = cg.request(m, p, body=body, headers=hdrs)
        t.check(r.status in (400, 403, 404), "alice %s %s -> %d" %
                (m, p[:60], r.status))
    t.check(seq(cg) == before, "no write reached the store")
    r = cg.request("GET", bobcal + "secret.ics", user="bob")
    t.check(r.status == 200 and b"Bob secret" in r.body,
            "bob's event is intact")
    r = cg.request("GET", CAL + "mine.ics")
    t.check(r.status == 200, "alice's own event is still there")
    r = cg.request("REPORT", CAL, body=(
        '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:'
        'ns:caldav"><D:prop><C:calendar-data/></D:prop><D:href>' + bobcal +
        'secret.ics</D:href></C:calendar-multiget>'))
    t.check(r.status == 207 and b"Bob secret" not in r.body and
            b"404" in r.body, "multiget of bob's href gets 404")
    r = cg.request("PROPFIND", "/dav/principals/", headers={"Depth": "1"})
    t.check(r.status == 207 and b"/bob/" not in r.body,
            "principal listing shows only alice")
    r = cg.request("PROPFIND", "/dav/calendars/", headers={"Depth": "1"})
    t.check(r.status == 207 and b"/bob/" not in r.body,
            "home listing shows only alice")
    r = cg.request("GET", CAL + "mine.ics", user=None)
    t.check(r.status == 401, "no credentials -> 401")
    r = cg.request("GET", CAL + "mine.ics", password="wrong")
    t.check(r.status == 401, "wrong password -> 401")


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        bad_input(t, cg)
        access(t, cg)
        t.check(cg.alive(), "server still running at the end")
    t.finish()


if __name__ == "__main__":
    main()
