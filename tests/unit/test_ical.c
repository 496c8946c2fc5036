/*
 * tests/unit/test_ical.c: ical_object_check (server/ical.c): what a
 * calendar object resource may hold (RFC 4791 4.1, 5.3.2) and the UTC
 * span indexed for time-range prefiltering.
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/ical.h"
#include "tests/unit/check.h"

#define DAY 86400
#define CAL(body) "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n" body \
	"END:VCALENDAR\n"
#define EV(body) CAL("BEGIN:VEVENT\nUID:u1\nDTSTAMP:20260101T000000Z\n" \
	body "END:VEVENT\n")

/* 2026-01-10T10:00:00Z and friends */
#define T0110_10 1768039200LL
#define T0110_11 (T0110_10 + 3600)
#define T0110_00 (T0110_10 - 36000)

static const struct {
	const char *what, *ics, *pre;	/* pre: NULL = valid */
	const char *component;
	int64_t start, end;		/* checked when valid */
} cases[] = {
	{ "timed event", EV("DTSTART:20260110T100000Z\nDTEND:"
	    "20260110T110000Z\n"), NULL, "VEVENT", T0110_10 - DAY,
	    T0110_11 + DAY },
	/* Apple Calendar sends an empty URL: valid, nothing lost. */
	{ "Apple's empty URL", EV("DTSTART:20260110T100000Z\nDTEND:"
	    "20260110T110000Z\nURL;VALUE=URI:\n"), NULL, "VEVENT",
	    T0110_10 - DAY, T0110_11 + DAY },
	{ "all-day event", EV("DTSTART;VALUE=DATE:20260110\n"), NULL,
	    "VEVENT", T0110_00 - DAY, T0110_00 + 2 * DAY },
	{ "floating event", EV("DTSTART:20260110T100000\nDURATION:PT1H\n"),
	    NULL, "VEVENT", T0110_10 - DAY, T0110_11 + DAY },
	{ "zoned event", EV("DTSTART;TZID=America/New_York:20260110T050000\n"
	    "DURATION:PT1H\n"), NULL, "VEVENT", T0110_10 - DAY,
	    T0110_11 + DAY },
	{ "weekly, COUNT=3", EV("DTSTART:20260110T100000Z\nDURATION:PT1H\n"
	    "RRULE:FREQ=WEEKLY;COUNT=3\n"), NULL, "VEVENT", T0110_10 - DAY,
	    T0110_11 + 14 * DAY + DAY },
	{ "weekly, UNTIL", EV("DTSTART:20260110T100000Z\nDURATION:PT1H\n"
	    "RRULE:FREQ=WEEKLY;UNTIL=20260124T100000Z\n"), NULL, "VEVENT",
	    T0110_10 - DAY, T0110_11 + 14 * DAY + DAY },
	{ "endless weekly", EV("DTSTART:20260110T100000Z\nDURATION:PT1H\n"
	    "RRULE:FREQ=WEEKLY\n"), NULL, "VEVENT", T0110_10 - DAY,
	    INT64_MAX },
	{ "COUNT=1e9", EV("DTSTART:20260110T100000Z\nDURATION:PT1H\n"
	    "RRULE:FREQ=SECONDLY;COUNT=1000000000\n"), NULL, "VEVENT",
	    T0110_10 - DAY, INT64_MAX },
	{ "RDATE before DTSTART", EV("DTSTART:20260110T100000Z\n"
	    "DURATION:PT1H\nRDATE:20260101T100000Z\n"), NULL, "VEVENT",
	    T0110_10 - 9 * DAY - DAY, T0110_11 + DAY },
	{ "override moved later", CAL("BEGIN:VEVENT\nUID:u\nDTSTAMP:"
	    "20260101T000000Z\nDTSTART:20260110T100000Z\nDURATION:PT1H\n"
	    "RRULE:FREQ=DAILY;COUNT=2\nEND:VEVENT\nBEGIN:VEVENT\nUID:u\n"
	    "DTSTAMP:20260101T000000Z\nRECURRENCE-ID:20260111T100000Z\n"
	    "DTSTART:20260120T100000Z\nDURATION:PT1H\nEND:VEVENT\n"), NULL,
	    "VEVENT", T0110_10 - DAY, T0110_11 + 10 * DAY + DAY },
	{ "task with due", CAL("BEGIN:VTODO\nUID:t\nDTSTAMP:20260101T000000Z"
	    "\nDUE:20260110T100000Z\nEND:VTODO\n"), NULL, "VTODO",
	    T0110_10 - DAY, T0110_10 + DAY },
	{ "task without dates", CAL("BEGIN:VTODO\nUID:t\nDTSTAMP:"
	    "20260101T000000Z\nEND:VTODO\n"), NULL, "VTODO", INT64_MIN,
	    INT64_MAX },
	{ "task created only", CAL("BEGIN:VTODO\nUID:t\nDTSTAMP:"
	    "20260101T000000Z\nCREATED:20260110T100000Z\nEND:VTODO\n"), NULL,
	    "VTODO", T0110_10 - DAY, INT64_MAX },
	{ "journal", CAL("BEGIN:VJOURNAL\nUID:j\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART:20260110T100000Z\nEND:VJOURNAL\n"), NULL, "VJOURNAL",
	    T0110_10 - DAY, T0110_10 + DAY },
	{ "with VTIMEZONE", CAL("BEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\n"
	    "DTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\n"
	    "END:STANDARD\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:z\nDTSTAMP:"
	    "20260101T000000Z\nDTSTART;TZID=X:20260110T110000\nDURATION:PT1H\n"
	    "END:VEVENT\n"), NULL, "VEVENT", T0110_10 - DAY, T0110_11 + DAY },
	{ "hostile VTIMEZONE ignored", CAL("BEGIN:VTIMEZONE\nTZID:X\n"
	    "BEGIN:STANDARD\nDTSTART:19700101T000000\nRRULE:FREQ=SECONDLY\n"
	    "TZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nEND:STANDARD\n"
	    "END:VTIMEZONE\nBEGIN:VEVENT\nUID:z\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART;TZID=X:20260110T100000\nDURATION:PT1H\nEND:VEVENT\n"),
	    NULL, "VEVENT", T0110_10 - DAY, T0110_11 + DAY },
	{ "not iCalendar", "hello", "valid-calendar-data", NULL, 0, 0 },
	/* libical takes these; RFC 5545 does not */
	{ "END names another component", EV("DTSTART:20260110T100000Z\n"
	    "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VEVENT\n"
	    "END:VALARM\n"), "valid-calendar-data", NULL, 0, 0 },
	{ "END without BEGIN", EV("DTSTART:20260110T100000Z\nEND:VALARM\n"),
	  "valid-calendar-data", NULL, 0, 0 },
	{ "BEGIN never closed", "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n"
	    "BEGIN:VEVENT\nUID:u\nDTSTAMP:20260101T000000Z\nDTSTART:"
	    "20260110T100000Z\nEND:VEVENT\n", "valid-calendar-data", NULL, 0,
	    0 },
	{ "nested 9 deep", EV("DTSTART:20260110T100000Z\nBEGIN:X-A\n"
	    "BEGIN:X-A\nBEGIN:X-A\nBEGIN:X-A\nBEGIN:X-A\nBEGIN:X-A\nBEGIN:X-A"
	    "\nEND:X-A\nEND:X-A\nEND:X-A\nEND:X-A\nEND:X-A\nEND:X-A\n"
	    "END:X-A\n"), "valid-calendar-data", NULL, 0, 0 },
	{ "folded and lower-case BEGIN/END", "BEGIN:VCALENDAR\r\nVERSION:2.0"
	    "\r\nPRODID:x\r\nBEGIN:VEV\r\n ENT\r\nUID:u\r\nDTSTAMP:"
	    "20260101T000000Z\r\nDTSTART:20260110T100000Z\r\nend:vevent\r\n"
	    "END:VCALENDAR\r\n", NULL, "VEVENT", T0110_10 - DAY,
	    T0110_10 + DAY },
	{ "truncated", "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x\n",
	    "valid-calendar-data", NULL, 0, 0 },
	{ "METHOD", "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nMETHOD:REQUEST\n"
	    "BEGIN:VEVENT\nUID:u\nDTSTAMP:20260101T000000Z\nDTSTART:"
	    "20260110T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
	    "valid-calendar-object-resource", NULL, 0, 0 },
	{ "two UIDs", CAL("BEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART:20260110T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART:20260110T100000Z\nEND:VEVENT\n"),
	    "valid-calendar-object-resource", NULL, 0, 0 },
	{ "two masters", CAL("BEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART:20260110T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:a\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART:20260110T100000Z\nEND:VEVENT\n"),
	    "valid-calendar-object-resource", NULL, 0, 0 },
	{ "event and task", CAL("BEGIN:VEVENT\nUID:a\nDTSTAMP:"
	    "20260101T000000Z\nDTSTART:20260110T100000Z\nEND:VEVENT\n"
	    "BEGIN:VTODO\nUID:a\nDTSTAMP:20260101T000000Z\nEND:VTODO\n"),
	    "valid-calendar-object-resource", NULL, 0, 0 },
	{ "no UID", CAL("BEGIN:VEVENT\nDTSTAMP:20260101T000000Z\nDTSTART:"
	    "20260110T100000Z\nEND:VEVENT\n"),
	    "valid-calendar-object-resource", NULL, 0, 0 },
	{ "timezone only", CAL("BEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\n"
	    "DTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\n"
	    "END:STANDARD\nEND:VTIMEZONE\n"),
	    "valid-calendar-object-resource", NULL, 0, 0 },
};

int
main(void)
{
	struct ical_object o;
	struct store_object_meta m;
	char err[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = ical_object_check(cases[i].ics, strlen(cases[i].ics),
		    &o, err, sizeof err);

		if (cases[i].pre == NULL) {
			check(r == 0, "%s: rejected: %s", cases[i].what, err);
			check(r || strcmp(o.component, cases[i].component) == 0,
			    "%s: component %s", cases[i].what, o.component);
			check(r || (o.start == cases[i].start &&
			    o.end == cases[i].end), "%s: span %lld..%lld, want "
			    "%lld..%lld", cases[i].what, (long long)o.start,
			    (long long)o.end, (long long)cases[i].start,
			    (long long)cases[i].end);
		} else {
			check(r == -1, "%s: accepted", cases[i].what);
			check(r == 0 || (o.precondition && strcmp(
			    o.precondition, cases[i].pre) == 0),
			    "%s: precondition %s", cases[i].what,
			    o.precondition ? o.precondition : "-");
			check(r == 0 || err[0] != '\0', "%s: no reason",
			    cases[i].what);
		}
		ical_object_clear(&o);
	}

	check(ical_object_check(EV("DTSTART:20260110T100000Z\nORGANIZER:"
	    "MAILTO:Bob@Example.COM\n"), strlen(EV("DTSTART:20260110T100000Z"
	    "\nORGANIZER:MAILTO:Bob@Example.COM\n")), &o, err, sizeof err) == 0
	    && o.uid && strcmp(o.uid, "u1") == 0 && o.organizer &&
	    strcmp(o.organizer, "mailto:bob@example.com") == 0,
	    "uid and lower-cased organizer");
	ical_object_meta(&o, &m);
	check(m.scheduling == 1 && m.start == o.start && m.end == o.end &&
	    strcmp(m.component, "VEVENT") == 0, "meta mirrors the object");
	ical_object_clear(&o);
	check(ical_object_check("BEGIN:VCALENDAR\0", 16, &o, err, sizeof err)
	    == -1, "NUL byte refused");
	ical_object_clear(&o);
	icaltimezone_free_builtin_timezones();
	return check_done();
}
