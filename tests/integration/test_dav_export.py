#!/usr/bin/python3
"""GET on a calendar collection: the whole calendar as one iCalendar
object (what "subscribe to this calendar" URLs and backups use). Every
event and task is in it once, byte for byte, each time zone once, no
METHOD; python3-icalendar reads it back; the ETag is the calendar's
DAV:getetag and follows
the collection's changes and If-None-Match gives 304; bob's calendar
stays bob's; a plain collection still answers with a short text."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402
import icalendar  # noqa: E402

CAL = "/dav/calendars/alice/default/"
TZ = ("BEGIN:VTIMEZONE\r\nTZID:Europe/Helsinki\r\nBEGIN:STANDARD\r\n"
      "DTSTART:19701025T040000\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0200\r\n"
      "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
      "BEGIN:DAYLIGHT\r\nDTSTART:19700329T030000\r\nTZOFFSETFROM:+0200\r\n"
      "TZOFFSETTO:+0300\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
      "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n")


def event(uid, summary, tz=True, lf=False):
    body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
            "CALSCALE:GREGORIAN\r\n" + (TZ if tz else "") +
            "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
            "DTSTART;TZID=Europe/Helsinki:20260210T100000\r\n"
            "SUMMARY:%s\r\nDESCRIPTION:a long line folded at seventy-five "
            "octets as RFC 5545\r\n  says, continued here\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n") % (uid, summary)
    return body.replace("\r\n", "\n") if lf else body


TODO = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20260101T000000Z\r\n"
        "SUMMARY:Buy milk\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        for name, body in [("a.ics", event("ev-a", "First")),
                           ("b.ics", event("ev-b", "Second; with, commas")),
                           ("c.ics", event("ev-c", "Bare LF", lf=True)),
                           ("t.ics", TODO)]:
            r = cg.request("PUT", CAL + name, body=body,
                           headers={"Content-Type": "text/calendar"})
            t.check(r.status == 201, "PUT %s: %d" % (name, r.status))
        r = cg.request("PROPPATCH", CAL, body=(
            '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            '<D:displayname>Work, main</D:displayname></D:prop></D:set>'
            '</D:propertyupdate>'))
        t.check(r.status == 207, "displayname set")

        r = cg.get(CAL)
        text = r.body.decode()
        t.check(r.status == 200 and r.headers.get("content-type", "")
                .startswith("text/calendar"),
                "GET calendar: 200 text/calendar (%d %s)" % (
                    r.status, r.headers.get("content-type")))
        t.check(text.startswith("BEGIN:VCALENDAR\r\n") and
                text.endswith("END:VCALENDAR\r\n") and
                text.count("BEGIN:VCALENDAR") == 1,
                "one VCALENDAR")
        t.check(all(text.count("UID:%s\r\n" % u) == 1 for u in
                    ("ev-a", "ev-b", "ev-c", "todo-1")),
                "every event and task once")
        t.check(text.count("BEGIN:VTIMEZONE") == 1 and
                text.count("TZID:Europe/Helsinki\r\n") == 1,
                "the shared time zone once (%d)" %
                text.count("BEGIN:VTIMEZONE"))
        t.check("METHOD" not in text and text.count("PRODID") == 1 and
                "CALSCALE" not in text, "no per-object calendar properties")
        t.check(re.search(r"(?<!\r)\n", text) is None,
                "CRLF line endings throughout (bare-LF object included)")
        t.check("\r\n  says, continued here\r\n" in text,
                "folded lines kept as stored")
        t.check("X-WR-CALNAME:Work\\, main\r\n" in text,
                "calendar name, TEXT-escaped")
        etag = r.headers.get("etag")
        pf = cg.request("PROPFIND", CAL, body=(
            '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>'
            '</D:propfind>'), headers={"Depth": "0"})
        t.check(etag is not None and ("<D:getetag>%s</D:getetag>" %
                                      etag.replace('"', "&quot;"))
                in pf.text(),
                "ETag: %s, the calendar's DAV:getetag" % etag)

        # what a subscribing client does with it (python3-icalendar comes
        # with python3-caldav)
        cal = icalendar.Calendar.from_ical(r.body)
        comps = sorted((c.name, str(c["UID"])) for c in cal.walk()
                       if c.name in ("VEVENT", "VTODO"))
        t.check(comps == [("VEVENT", "ev-a"), ("VEVENT", "ev-b"),
                          ("VEVENT", "ev-c"), ("VTODO", "todo-1")] and
                [str(c["SUMMARY"]) for c in cal.walk("VEVENT")
                 if c["UID"] == "ev-b"] == ["Second; with, commas"],
                "a client reads every component back (%r)" % comps)

        r = cg.request("GET", CAL, headers={"If-None-Match": etag})
        t.check(r.status == 304, "If-None-Match: 304 (%d)" % r.status)
        cg.request("DELETE", CAL + "t.ics")
        r = cg.request("GET", CAL, headers={"If-None-Match": etag})
        t.check(r.status == 200 and r.headers.get("etag") != etag and
                b"todo-1" not in r.body,
                "after a DELETE: new ETag, the task gone (%d)" % r.status)
        r = cg.request("HEAD", CAL)
        t.check(r.status == 200 and r.body == b"", "HEAD: 200, no body")

        r = cg.get("/dav/calendars/bob/default/", user="alice")
        t.check(r.status in (403, 404) and b"VCALENDAR" not in r.body,
                "alice cannot export bob's calendar (%d)" % r.status)
        cg.request("MKCOL", "/dav/calendars/alice/files/")
        r = cg.get("/dav/calendars/alice/files/")
        t.check(r.status == 200 and b"VCALENDAR" not in r.body,
                "a plain collection is not exported")
        t.check(cg.alive(), "server still running")
    t.finish()


if __name__ == "__main__":
    main()
