#!/usr/bin/python3
"""Prefer: return=minimal (RFC 8144 3.2) and Apple's older "Brief: t" on
PROPFIND and REPORT: the 404 propstats are left out, everything found is
the same as without it, a response with nothing found keeps an empty 200
propstat, Preference-Applied says so, and without the header nothing
changes."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

HOME = "/dav/calendars/alice/"
CAL = HOME + "default/"
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
         "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
         "DTSTART:20260210T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n")
PROPS = ('<D:propfind xmlns:D="DAV:" xmlns:X="urn:x" '
         'xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:getetag/>'
         '<D:displayname/><CS:getctag/><X:nothing/></D:prop></D:propfind>')
NONE = ('<D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><X:nothing/>'
        '</D:prop></D:propfind>')
SYNC = ('<D:sync-collection xmlns:D="DAV:" xmlns:X="urn:x"><D:sync-token/>'
        '<D:sync-level>1</D:sync-level><D:prop><D:getetag/><X:nothing/>'
        '</D:prop></D:sync-collection>')


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        for i in range(3):
            cg.request("PUT", CAL + "p%d.ics" % i, body=EVENT % ("p%d" % i),
                       headers={"Content-Type": "text/calendar"})

        def ask(method, path, body, depth, extra=None):
            h = {"Depth": depth, "Content-Type": "application/xml"}
            h.update(extra or {})
            return cg.request(method, path, body=body, headers=h)

        full = ask("PROPFIND", CAL, PROPS, "1")
        mini = ask("PROPFIND", CAL, PROPS, "1",
                   {"Prefer": "return=minimal"})
        fb, mb = full.body.decode(), mini.body.decode()
        t.check(full.status == 207 and "404 Not Found" in fb and
                "X:nothing" in fb, "plain PROPFIND: the 404 propstats")
        t.check(mini.status == 207 and "404" not in mb and
                "nothing" not in mb, "return=minimal: no 404 propstat")
        strip = re.sub(r"<D:propstat>(?:(?!</D:propstat>).)*404 Not Found"
                       r"</D:status></D:propstat>", "", fb)
        t.check(strip == mb, "return=minimal: everything else identical")
        t.check(mini.headers.get("preference-applied") == "return=minimal"
                and full.headers.get("preference-applied") is None,
                "Preference-Applied only when applied")
        brief = ask("PROPFIND", CAL, PROPS, "1", {"Brief": "t"})
        t.check(brief.body == mini.body, "Brief: t is the same")
        other = ask("PROPFIND", CAL, PROPS, "1",
                    {"Prefer": "respond-async, return=representation"})
        t.check(other.body == full.body,
                "other preferences change nothing")

        n = ask("PROPFIND", CAL + "p0.ics", NONE, "0",
                {"Prefer": "return=minimal"})
        t.check(n.status == 207 and "<D:propstat><D:prop></D:prop><D:status>"
                "HTTP/1.1 200 OK</D:status></D:propstat>" in n.text() and
                "404" not in n.text(),
                "nothing found: one empty 200 propstat (%s)" % n.text()[-200:])

        s = ask("REPORT", CAL, SYNC, "0", {"Prefer": "return=minimal"})
        t.check(s.status == 207 and s.text().count("<D:getetag>") == 3 and
                "404" not in s.text(),
                "sync-collection with return=minimal: etags, no 404")
    t.finish()


if __name__ == "__main__":
    main()
