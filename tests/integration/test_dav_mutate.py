#!/usr/bin/python3
"""The CalDAV server against mutated requests, under ASan+UBSan (by
default build-san/calgate, built here; CALGATE_BIN picks another build).

Valid request bodies of every kind real clients send (PROPFIND allprop and
prop lists, PROPPATCH, MKCALENDAR, calendar-query with comp, prop, param
and text filters and time ranges, expand, multiget, sync-collection,
free-busy, and PUTs of recurring events with overrides and time zones)
are mutated with a fixed seed: bytes flipped, deleted, inserted and
duplicated, cut short. Each mutated request must get an answer that is not
a server error (no 5xx), the server must stay up, leave nothing in its log
from the sanitizers, and the store must pass SQLite's integrity check.
Last line: "N passed, M failed".
"""
import os
import random
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

CAL = "/dav/calendars/alice/default/"
TZ = ("BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\n"
      "DTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
      "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n"
      "BEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\nTZOFFSETFROM:-0500\r\n"
      "TZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\n"
      "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n")
ICS = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + TZ +
       "BEGIN:VEVENT\r\nUID:%(uid)s\r\nDTSTAMP:20260101T000000Z\r\n"
       "DTSTART;TZID=America/New_York:20260302T090000\r\n"
       "DURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE\r\n"
       "EXDATE;TZID=America/New_York:20260304T090000\r\n"
       "SUMMARY:Weekly sync\r\nATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:"
       "mailto:bob@example.org\r\nORGANIZER:mailto:alice@example.com\r\n"
       "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\n"
       "DESCRIPTION:x\r\nEND:VALARM\r\nEND:VEVENT\r\n"
       "BEGIN:VEVENT\r\nUID:%(uid)s\r\nDTSTAMP:20260101T000000Z\r\n"
       "RECURRENCE-ID;TZID=America/New_York:20260309T090000\r\n"
       "DTSTART;TZID=America/New_York:20260309T140000\r\n"
       "DURATION:PT30M\r\nSUMMARY:Weekly sync (moved)\r\nEND:VEVENT\r\n"
       "END:VCALENDAR\r\n")
TODO = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VTODO\r\nUID:%(uid)s\r\nDTSTAMP:20260101T000000Z\r\n"
        "DUE;VALUE=DATE:20260315\r\nSUMMARY:Taxes\r\nSTATUS:NEEDS-ACTION\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n")

NS = ('xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
      'xmlns:CS="http://calendarserver.org/ns/" '
      'xmlns:A="http://apple.com/ns/ical/"')
XML = {
    "propfind-allprop": ("PROPFIND", CAL, "1",
                         '<?xml version="1.0"?><D:propfind %s><D:allprop/>'
                         '</D:propfind>' % NS),
    "propfind-props": ("PROPFIND", "/dav/calendars/alice/", "1",
                       '<D:propfind %s><D:prop><D:resourcetype/>'
                       '<D:displayname/><CS:getctag/><D:sync-token/>'
                       '<C:supported-calendar-component-set/>'
                       '<D:current-user-privilege-set/><A:calendar-color/>'
                       '<C:calendar-timezone/><X:unknown xmlns:X="urn:x"/>'
                       '</D:prop></D:propfind>' % NS),
    "propname": ("PROPFIND", CAL, "0",
                 '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'),
    "proppatch": ("PROPPATCH", CAL, None,
                  '<D:propertyupdate %s><D:set><D:prop><D:displayname>Work'
                  '</D:displayname><A:calendar-color>#FF0000FF'
                  '</A:calendar-color><A:calendar-order>3</A:calendar-order>'
                  '<X:dead xmlns:X="urn:x">v<b>1</b></X:dead></D:prop>'
                  '</D:set><D:remove><D:prop><C:calendar-description/>'
                  '</D:prop></D:remove></D:propertyupdate>' % NS),
    "mkcalendar": ("MKCALENDAR", "/dav/calendars/alice/m%d/", None,
                   '<C:mkcalendar %s><D:set><D:prop><D:displayname>M'
                   '</D:displayname><C:supported-calendar-component-set>'
                   '<C:comp name="VEVENT"/></C:supported-calendar-component'
                   '-set></D:prop></D:set></C:mkcalendar>' % NS),
    "query": ("REPORT", CAL, "1",
              '<C:calendar-query %s><D:prop><D:getetag/><C:calendar-data>'
              '<C:expand start="20260301T000000Z" end="20260401T000000Z"/>'
              '</C:calendar-data></D:prop><C:filter><C:comp-filter '
              'name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range '
              'start="20260301T000000Z" end="20260401T000000Z"/>'
              '<C:prop-filter name="SUMMARY"><C:text-match collation='
              '"i;ascii-casemap" negate-condition="no">sync</C:text-match>'
              '</C:prop-filter><C:prop-filter name="ATTENDEE"><C:param-filter'
              ' name="PARTSTAT"><C:text-match>ACCEPTED</C:text-match>'
              '</C:param-filter></C:prop-filter></C:comp-filter>'
              '</C:comp-filter></C:filter><C:timezone>BEGIN:VCALENDAR\r\n'
              'END:VCALENDAR\r\n</C:timezone></C:calendar-query>' % NS),
    "query-todo": ("REPORT", CAL, "1",
                   '<C:calendar-query %s><D:prop><C:calendar-data><C:comp '
                   'name="VCALENDAR"><C:prop name="VERSION"/><C:comp name='
                   '"VTODO"><C:prop name="SUMMARY"/></C:comp></C:comp>'
                   '<C:limit-recurrence-set start="20260101T000000Z" end='
                   '"20270101T000000Z"/></C:calendar-data></D:prop><C:filter>'
                   '<C:comp-filter name="VCALENDAR"><C:comp-filter name='
                   '"VTODO"><C:prop-filter name="COMPLETED"><C:is-not-defined'
                   '/></C:prop-filter></C:comp-filter></C:comp-filter>'
                   '</C:filter></C:calendar-query>' % NS),
    "multiget": ("REPORT", CAL, "1",
                 '<C:calendar-multiget %s><D:prop><D:getetag/>'
                 '<C:calendar-data/></D:prop><D:href>%sev0.ics</D:href>'
                 '<D:href>%stodo0.ics</D:href><D:href>/dav/calendars/bob/'
                 'default/x.ics</D:href><D:href>%s..%%2f..%%2fx</D:href>'
                 '</C:calendar-multiget>' % (NS, CAL, CAL, CAL)),
    "sync": ("REPORT", CAL, "0",
             '<D:sync-collection %s><D:sync-token>http://calgate.invalid/'
             'sync/1/1</D:sync-token><D:sync-level>1</D:sync-level><D:prop>'
             '<D:getetag/></D:prop></D:sync-collection>' % NS),
    "homesync": ("REPORT", "/dav/calendars/alice/", "0",
                 '<D:sync-collection %s><D:sync-token/><D:sync-level>1'
                 '</D:sync-level><D:prop><CS:getctag/></D:prop>'
                 '</D:sync-collection>' % NS),
    "freebusy": ("REPORT", CAL, "1",
                 '<C:free-busy-query %s><C:time-range start="20260301T000000Z"'
                 ' end="20260401T000000Z"/></C:free-busy-query>' % NS),
}


JUNK = [b"", b"x" * 3000, b"20261301T250000Z", b"-1", b"99999999T999999Z",
        b"19000101", b"0", b"\xc3\x28\xe2\x82", b"../../etc/passwd",
        b"VCALENDAR", b"VEVENT", b"VTODO", b"i;octet", b"yes",
        b"20260301T000000", b"mailto:", b"%00", b"\\", b"&#0;", b"&amp;",
        b"PT-1H", b"FREQ=SECONDLY;INTERVAL=1", b"Europe/Helsinki"]


def mutate_bytes(rnd, b):
    """Bytes flipped, deleted, inserted, duplicated, cut short."""
    b = bytearray(b)
    for _ in range(rnd.randint(1, 3)):
        if not b:
            break
        at = rnd.randrange(len(b))
        op = rnd.randrange(5)
        if op == 0:
            b[at] = rnd.randrange(256)
        elif op == 1:
            b[at] = rnd.choice(b'<>/&;:="\r\n\t \x00\x80')
        elif op == 2:
            del b[at:at + rnd.randint(1, 40)]
        elif op == 3:
            b[at:at] = bytes(b[at:at + rnd.randint(1, 200)])
        else:
            del b[at:]
    return bytes(b)


def mutate_xml(rnd, b):
    """Still well-formed, mostly: a value, text or element changed."""
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(4)
        if op == 0:     # an attribute value
            spans = [m.span(1) for m in re.finditer(rb'="([^"]*)"', b)]
        elif op == 1:   # text between tags
            spans = [m.span(1) for m in re.finditer(rb">([^<]+)<", b)]
        else:           # a whole element, duplicated or dropped
            spans = [m.span() for m in re.finditer(
                rb"<(\w+:)?[\w-]+(?: [^<>]*)?/>|<((\w+:)?[\w-]+)[^<>]*>"
                rb"[^<]*</\2>", b)]
        if not spans:
            continue
        a, e = rnd.choice(spans)
        if op < 2:
            b = b[:a] + rnd.choice(JUNK) + b[e:]
        elif op == 2:
            b = b[:a] + b[a:e] * rnd.randint(2, 60) + b[e:]
        else:
            b = b[:a] + b[e:]
    return b


def mutate_ics(rnd, b):
    """Lines dropped, duplicated, swapped; values and parameters changed."""
    lines = b.split(b"\r\n")
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(lines))
        op = rnd.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines[i:i] = [lines[i]] * rnd.randint(1, 30)
        elif op == 2:
            j = rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3 and b":" in lines[i]:
            k = lines[i].index(b":")
            lines[i] = lines[i][:k + 1] + rnd.choice(JUNK)
        elif b":" in lines[i]:
            k = lines[i].index(b":")
            lines[i] = lines[i][:k] + rnd.choice(
                [b";TZID=Nowhere/Else", b";VALUE=DATE", b";VALUE=PERIOD",
                 b";X-A=\"b:c\"", b";RANGE=THISANDFUTURE", b";;",
                 b";TZID=America/New_York"]) + lines[i][k:]
    return b"\r\n".join(lines)


def mutate(rnd, b, kind):
    if rnd.random() < 0.3:
        return mutate_bytes(rnd, b)
    return (mutate_ics if kind == "ics" else mutate_xml)(rnd, b)


def main():
    if not os.environ.get("CALGATE_BIN"):
        r = subprocess.run(["make", "--no-print-directory", "-s",
                            "SANITIZE=1", "build-san/calgate"],
                           cwd=ct.ROOT, capture_output=True, text=True)
        if r.returncode == 0:
            ct.BIN = os.path.join(ct.ROOT, "build-san", "calgate")
    print("     (server: %s)" % os.path.relpath(ct.BIN, ct.ROOT))
    t = ct.Results()
    rnd = random.Random(4918)
    rounds = int(os.environ.get("DAV_MUTATE_ROUNDS", "400"))
    with ct.Calgate() as cg:
        cg.seen = None          # thousands of bodies: keep none
        cg.request = server_request(cg)
        for i in range(3):
            cg.request("PUT", CAL + "ev%d.ics" % i,
                       body=ICS % {"uid": "ev%d" % i},
                       headers={"Content-Type": "text/calendar"})
            cg.request("PUT", CAL + "todo%d.ics" % i,
                       body=TODO % {"uid": "todo%d" % i},
                       headers={"Content-Type": "text/calendar"})
        bad = {}
        sent = 0
        for r in range(rounds):
            for name, (method, path, depth, body) in XML.items():
                if "%d" in path:
                    path = path % (r % 7)
                hdrs = {"Content-Type": "application/xml"}
                if depth is not None:
                    hdrs["Depth"] = depth
                st = cg.request(method, path,
                                body=mutate(rnd, body.encode(), "xml"),
                                headers=hdrs).status
                sent += 1
                if st >= 500:
                    bad.setdefault(name, []).append(st)
            for name, tmpl in (("put-event", ICS), ("put-todo", TODO)):
                body = mutate(rnd, (tmpl % {"uid": "m%d" % (r % 5)}).encode(),
                              "ics")
                st = cg.request("PUT", CAL + "m%d.ics" % (r % 5), body=body,
                                headers={"Content-Type": "text/calendar"}
                                ).status
                sent += 1
                if st >= 500:
                    bad.setdefault(name, []).append(st)
            if not cg.alive():
                break
        t.check(cg.alive(), "server up after %d mutated requests" % sent)
        t.check(not bad, "no server error for any mutated request (%r)" %
                {k: v[:5] for k, v in bad.items()})
        r = cg.request("PROPFIND", CAL, headers={"Depth": "1"})
        t.check(r.status == 207 and b"ev0.ics" in r.body,
                "the calendar still lists its events")
        logs = cg.log_text()
        m = re.search(r"^.*(Sanitizer|runtime error).*$", logs, re.M)
        t.check(not m, "no sanitizer report while serving (%s)" %
                (m.group(0)[:200] if m else ""))
        db = sqlite3.connect("file:%s/data/calgate.db?mode=ro" % cg.dir,
                             uri=True)
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        t.check(ok == "ok", "store integrity: %s" % ok)
        cg.stop()
        m = re.search(r"^.*(Sanitizer|runtime error).*$", cg.log_text(),
                      re.M)
        t.check(not m, "no sanitizer report at exit (%s)" %
                (m.group(0)[:200] if m else ""))
    t.finish()


def server_request(cg):
    """cg.request without keeping every response in cg.seen."""
    def req(method, path, user="alice", body=b"", headers=None):
        return ct.request(cg.port, method, path,
                          (user, cg.passwords[user]), body, headers,
                          cg.timeout)
    return req


if __name__ == "__main__":
    main()
