#!/usr/bin/python3
"""python3-caldav against calgate: discovery from the bare server URL,
calendars, events and tasks, a time-range search over a weekly recurring
event with an exception, multiget and sync-collection."""
import os
import sys
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

import caldav  # noqa: E402

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calgate tests//EN
BEGIN:VTIMEZONE
TZID:Europe/Helsinki
BEGIN:STANDARD
DTSTART:19701025T040000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0300
TZOFFSETTO:+0200
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T030000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0300
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly-1@calgate.test
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Helsinki:20260105T100000
DTEND;TZID=Europe/Helsinki:20260105T110000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Europe/Helsinki:20260119T100000
SUMMARY:Weekly sync
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@calgate.test
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Helsinki:20260126T100000
DTSTART;TZID=Europe/Helsinki:20260128T150000
DTEND;TZID=Europe/Helsinki:20260128T160000
SUMMARY:Weekly sync (moved)
END:VEVENT
END:VCALENDAR
"""

SINGLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calgate tests//EN
BEGIN:VEVENT
UID:single-1@calgate.test
DTSTAMP:20260101T000000Z
DTSTART:20260301T120000Z
DTEND:20260301T130000Z
SUMMARY:Lunch
END:VEVENT
END:VCALENDAR
"""

TODO = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calgate tests//EN
BEGIN:VTODO
UID:todo-1@calgate.test
DTSTAMP:20260101T000000Z
SUMMARY:Buy milk
STATUS:NEEDS-ACTION
END:VTODO
END:VCALENDAR
"""


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def uids(objs):
    out = set()
    for o in objs:
        for line in o.data.splitlines():
            if line.startswith("UID:"):
                out.add(line[4:].strip())
    return out


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        client = caldav.DAVClient(url=cg.url + "/", username="alice",
                                  password="alice-pw")
        principal = client.principal()
        t.check(str(principal.url).endswith("/dav/principals/alice/"),
                "principal discovered from the bare URL: %s" % principal.url)
        cals = principal.calendars()
        t.check(any(str(c.url).endswith("/dav/calendars/alice/default/")
                    for c in cals), "default calendar listed")

        cal = principal.make_calendar(name="Work", cal_id="work")
        t.check(str(cal.url).endswith("/dav/calendars/alice/work/"),
                "calendar created: %s" % cal.url)
        names = [c.get_display_name() for c in principal.calendars()]
        t.check("Work" in names, "new calendar has its displayname")

        ev = cal.save_event(SINGLE)
        t.check(ev is not None, "event created")
        ev.load()
        t.check("SUMMARY:Lunch" in ev.data, "event read back")
        ev.data = ev.data.replace("SUMMARY:Lunch", "SUMMARY:Long lunch")
        ev.save()
        again = cal.event_by_url(ev.url)
        t.check("Long lunch" in again.data, "event updated")

        weekly = cal.save_event(WEEKLY)
        todo = cal.save_todo(TODO)
        t.check(uids(cal.todos()) == {"todo-1@calgate.test"}, "task listed")

        def search(*a):
            return uids(cal.search(event=True, start=utc(*a[:3]),
                                   end=utc(*a[3:])))

        t.check(search(2026, 1, 12, 2026, 1, 13) ==
                {"weekly-1@calgate.test"}, "time-range: a weekly instance")
        t.check(search(2026, 1, 19, 2026, 1, 20) == set(),
                "time-range: EXDATE'd week is empty")
        t.check(search(2026, 1, 26, 2026, 1, 27) == set(),
                "time-range: the moved instance left its day")
        t.check(search(2026, 1, 28, 2026, 1, 29) ==
                {"weekly-1@calgate.test"}, "time-range: moved instance found")
        t.check(search(2026, 2, 20, 2026, 3, 2) == {"single-1@calgate.test"},
                "time-range: after COUNT only the single event")
        t.check(search(2026, 4, 1, 2026, 5, 1) == set(),
                "time-range: empty month")

        got = cal.calendar_multiget([ev.url, weekly.url])
        t.check(uids(got) == {"single-1@calgate.test",
                              "weekly-1@calgate.test"},
                "multiget returns both objects")
        t.check(any("RECURRENCE-ID" in o.data for o in got),
                "multiget data is whole")

        sync = cal.objects_by_sync_token(load_objects=False)
        t.check(len(list(sync)) == 3, "sync-collection lists 3 objects")
        todo.delete()
        ev.data = ev.data.replace("Long lunch", "Short lunch")
        ev.save()
        changed = cal.objects_by_sync_token(sync_token=sync.sync_token)
        t.check(len(list(changed)) == 2,
                "incremental sync reports the change and the deletion")
        t.check(uids(cal.todos()) == set(), "task deleted")
        weekly.delete()
        t.check(uids(cal.events()) == {"single-1@calgate.test"},
                "event deleted")
        t.check(cg.alive(), "server still running")
    t.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a crash is a failed test, not a traceback only
        import traceback
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
