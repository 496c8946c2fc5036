/*
 * tests/unit/test_query.c: the CalDAV query engine (webdav/query.c) on
 * real iCalendar text: RFC 4791 9.9 time ranges, recurrence, time zones
 * and DST, text/param filters, calendar-data shaping, free-busy, hostile
 * recurrence rules and malformed filters. Fixtures: tests/data/query/.
 */
#include <libical/ical.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "server/ical.h"
#include "tests/unit/check.h"
#include "webdav/query.h"

#define CNS "xmlns:C=\"urn:ietf:params:xml:ns:caldav\""

static char *
load(const char *name)
{
	char path[256], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "tests/data/query/%s", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static xmlDoc *
xml(const char *text)
{
	xmlDoc *d = xmlReadMemory(text, (int)strlen(text), "t.xml", NULL,
	    XML_PARSE_NONET);

	if (d == NULL) {
		fprintf(stderr, "bad test XML: %s\n", text);
		exit(2);
	}
	return d;
}

static struct query *
filter(const char *text, char *err, size_t errlen)
{
	xmlDoc *d = xml(text);
	struct query *q = query_parse(xmlDocGetRootElement(d), err, errlen);

	xmlFreeDoc(d);
	return q;
}

/* -1: the filter did not parse */
static int
match_filter(const char *f, const char *ics)
{
	char err[256];
	struct query *q = filter(f, err, sizeof err);
	int r;

	if (q == NULL) {
		fprintf(stderr, "filter rejected: %s\n", err);
		return -1;
	}
	r = query_match(q, ics, strlen(ics));
	query_free(q);
	return r;
}

static int
match_range(const char *comp, const char *s, const char *e, const char *ics)
{
	char f[1024], sa[64] = "", ea[64] = "";

	if (s)
		snprintf(sa, sizeof sa, " start=\"%s\"", s);
	if (e)
		snprintf(ea, sizeof ea, " end=\"%s\"", e);
	snprintf(f, sizeof f, "<C:filter " CNS "><C:comp-filter "
	    "name=\"VCALENDAR\"><C:comp-filter name=\"%s\"><C:time-range%s%s/>"
	    "</C:comp-filter></C:comp-filter></C:filter>", comp, sa, ea);
	return match_filter(f, ics);
}

#define CAL(body) "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n" body \
	"END:VCALENDAR\n"
#define EV(body) CAL("BEGIN:VEVENT\nUID:u1\nDTSTAMP:20260101T000000Z\n" \
	body "END:VEVENT\n")
#define TODO(body) CAL("BEGIN:VTODO\nUID:t1\nDTSTAMP:20260101T000000Z\n" \
	body "END:VTODO\n")

static const struct range_case {
	const char *what, *comp, *ics, *start, *end;
	int want;
} ranges[] = {
	{ "timed event inside", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DTEND:20260110T110000Z\n"), "20260110T103000Z",
	    "20260110T104000Z", 1 },
	{ "range ends at DTSTART", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DTEND:20260110T110000Z\n"), "20260110T090000Z",
	    "20260110T100000Z", 0 },
	{ "range starts at DTEND", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DTEND:20260110T110000Z\n"), "20260110T110000Z",
	    "20260110T120000Z", 0 },
	{ "open-ended range", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DTEND:20260110T110000Z\n"), "20260110T105959Z", NULL, 1 },
	{ "range with only end", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DTEND:20260110T110000Z\n"), NULL, "20260110T100001Z", 1 },
	{ "all-day, last second", "VEVENT", EV("DTSTART;VALUE=DATE:20260110\n"),
	    "20260110T235959Z", "20260111T010000Z", 1 },
	{ "all-day, next day", "VEVENT", EV("DTSTART;VALUE=DATE:20260110\n"),
	    "20260111T000000Z", "20260112T000000Z", 0 },
	{ "all-day, day before", "VEVENT", EV("DTSTART;VALUE=DATE:20260110\n"),
	    "20260109T000000Z", "20260110T000000Z", 0 },
	{ "three-day all-day", "VEVENT", EV("DTSTART;VALUE=DATE:20260110\n"
	    "DTEND;VALUE=DATE:20260113\n"), "20260112T120000Z",
	    "20260112T130000Z", 1 },
	{ "three-day all-day, after", "VEVENT", EV("DTSTART;VALUE=DATE:"
	    "20260110\nDTEND;VALUE=DATE:20260113\n"), "20260113T000000Z",
	    "20260114T000000Z", 0 },
	{ "floating read as UTC", "VEVENT", EV("DTSTART:20260110T100000\n"
	    "DURATION:PT1H\n"), "20260110T103000Z", "20260110T103001Z", 1 },
	{ "floating after end", "VEVENT", EV("DTSTART:20260110T100000\n"
	    "DURATION:PT1H\n"), "20260110T110000Z", "20260110T120000Z", 0 },
	{ "system zone, DURATION", "VEVENT", EV("DTSTART;TZID=Europe/Helsinki:"
	    "20260110T100000\nDURATION:PT30M\n"), "20260110T080000Z",
	    "20260110T080100Z", 1 },
	{ "system zone, local hour", "VEVENT", EV("DTSTART;TZID=Europe/"
	    "Helsinki:20260110T100000\nDURATION:PT30M\n"), "20260110T100000Z",
	    "20260110T103000Z", 0 },
	{ "zero DURATION at start", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DURATION:PT0S\n"), "20260110T100000Z", "20260110T100100Z", 1 },
	{ "zero DURATION before", "VEVENT", EV("DTSTART:20260110T100000Z\n"
	    "DURATION:PT0S\n"), "20260110T090000Z", "20260110T100000Z", 0 },
	{ "no DTEND, at start", "VEVENT", EV("DTSTART:20260110T100000Z\n"),
	    "20260110T100000Z", "20260110T100001Z", 1 },
	{ "no DTEND, after", "VEVENT", EV("DTSTART:20260110T100000Z\n"),
	    "20260110T100001Z", "20260110T110000Z", 0 },
	/* RFC 4791 9.9 VTODO table, row by row */
	{ "todo start+duration", "VTODO", TODO("DTSTART:20260110T100000Z\n"
	    "DURATION:PT1H\n"), "20260110T110000Z", "20260110T120000Z", 1 },
	{ "todo start+duration after", "VTODO", TODO("DTSTART:20260110T100000Z"
	    "\nDURATION:PT1H\n"), "20260110T110001Z", "20260110T120000Z", 0 },
	{ "todo start+due inside", "VTODO", TODO("DTSTART:20260110T100000Z\n"
	    "DUE:20260110T120000Z\n"), "20260110T110000Z", "20260110T113000Z",
	    1 },
	{ "todo start+due at due", "VTODO", TODO("DTSTART:20260110T100000Z\n"
	    "DUE:20260110T120000Z\n"), "20260110T120000Z", "20260110T130000Z",
	    0 },
	{ "todo start+due before", "VTODO", TODO("DTSTART:20260110T100000Z\n"
	    "DUE:20260110T120000Z\n"), "20260110T090000Z", "20260110T100000Z",
	    0 },
	{ "todo start only", "VTODO", TODO("DTSTART:20260110T100000Z\n"),
	    "20260110T100000Z", "20260110T110000Z", 1 },
	{ "todo start only before", "VTODO", TODO("DTSTART:20260110T100000Z\n"),
	    "20260110T090000Z", "20260110T100000Z", 0 },
	{ "todo due only", "VTODO", TODO("DUE:20260110T120000Z\n"),
	    "20260110T110000Z", "20260110T120000Z", 1 },
	{ "todo due only after", "VTODO", TODO("DUE:20260110T120000Z\n"),
	    "20260110T120000Z", "20260110T130000Z", 0 },
	{ "todo completed+created", "VTODO", TODO("CREATED:20260101T000000Z\n"
	    "COMPLETED:20260105T000000Z\n"), "20260102T000000Z",
	    "20260103T000000Z", 1 },
	{ "todo completed+created after", "VTODO", TODO("CREATED:"
	    "20260101T000000Z\nCOMPLETED:20260105T000000Z\n"),
	    "20260106T000000Z", "20260107T000000Z", 0 },
	{ "todo completed only, end on it", "VTODO", TODO("COMPLETED:"
	    "20260105T000000Z\n"), "20260104T000000Z", "20260105T000000Z", 1 },
	{ "todo completed only after", "VTODO", TODO("COMPLETED:"
	    "20260105T000000Z\n"), "20260105T000001Z", "20260106T000000Z", 0 },
	{ "todo created only before", "VTODO", TODO("CREATED:20260101T000000Z"
	    "\n"), "20251201T000000Z", "20251231T000000Z", 0 },
	{ "todo created only later", "VTODO", TODO("CREATED:20260101T000000Z"
	    "\n"), "20300101T000000Z", "20300102T000000Z", 1 },
	{ "todo with no dates", "VTODO", TODO("SUMMARY:x\n"),
	    "19990101T000000Z", "19990102T000000Z", 1 },
	{ "journal datetime", "VJOURNAL", CAL("BEGIN:VJOURNAL\nUID:j\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART:20260110T100000Z\n"
	    "END:VJOURNAL\n"), "20260110T100000Z", "20260110T100001Z", 1 },
	{ "journal date", "VJOURNAL", CAL("BEGIN:VJOURNAL\nUID:j\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART;VALUE=DATE:20260110\n"
	    "END:VJOURNAL\n"), "20260110T200000Z", "20260110T210000Z", 1 },
	{ "journal without DTSTART", "VJOURNAL", CAL("BEGIN:VJOURNAL\nUID:j\n"
	    "DTSTAMP:20260101T000000Z\nEND:VJOURNAL\n"), "20000101T000000Z",
	    "20300101T000000Z", 0 },
	{ "vfreebusy dtstart/dtend", "VFREEBUSY", CAL("BEGIN:VFREEBUSY\n"
	    "UID:f\nDTSTAMP:20260101T000000Z\nDTSTART:20260110T000000Z\n"
	    "DTEND:20260111T000000Z\nEND:VFREEBUSY\n"), "20260110T120000Z",
	    "20260110T130000Z", 1 },
	{ "vfreebusy periods", "VFREEBUSY", CAL("BEGIN:VFREEBUSY\nUID:f\n"
	    "DTSTAMP:20260101T000000Z\nFREEBUSY:20260110T100000Z/PT1H\n"
	    "END:VFREEBUSY\n"), "20260110T110000Z", "20260110T120000Z", 0 },
	{ "RDATE list", "VEVENT", EV("DTSTART:20260101T120000Z\nDTEND:"
	    "20260101T130000Z\nRDATE:20260215T120000Z,20260301T090000Z\n"),
	    "20260215T000000Z", "20260216T000000Z", 1 },
	{ "RDATE keeps the length", "VEVENT", EV("DTSTART:20260101T120000Z\n"
	    "DTEND:20260101T130000Z\nRDATE:20260215T120000Z,20260301T090000Z"
	    "\n"), "20260301T093000Z", "20260301T093100Z", 1 },
	{ "between RDATEs", "VEVENT", EV("DTSTART:20260101T120000Z\nDTEND:"
	    "20260101T130000Z\nRDATE:20260215T120000Z\n"), "20260201T000000Z",
	    "20260202T000000Z", 0 },
	{ "RDATE period", "VEVENT", EV("DTSTART:20260101T120000Z\nDTEND:"
	    "20260101T130000Z\nRDATE;VALUE=PERIOD:20260401T100000Z/"
	    "20260401T140000Z\n"), "20260401T133000Z", "20260401T133100Z", 1 },
	{ "recurring all-day yearly", "VEVENT", EV("DTSTART;VALUE=DATE:"
	    "20000229\nRRULE:FREQ=YEARLY\n"), "20280229T120000Z",
	    "20280229T130000Z", 1 },
	{ "recurring all-day, not leap", "VEVENT", EV("DTSTART;VALUE=DATE:"
	    "20000229\nRRULE:FREQ=YEARLY\n"), "20270228T000000Z",
	    "20270302T000000Z", 0 },
};

static void
test_ranges(void)
{
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
		const struct range_case *c = &ranges[i];
		int got = match_range(c->comp, c->start, c->end, c->ics);

		check(got == c->want, "%s: got %d want %d", c->what, got,
		    c->want);
	}
}

static const struct {
	const char *file, *start, *end;
	int want;
	const char *what;
} fixture_ranges[] = {
	{ "weekly-helsinki.ics", "20260105T080000Z", "20260105T080001Z", 1,
	    "first instance at 08:00Z (UTC+2)" },
	{ "weekly-helsinki.ics", "20260112T000000Z", "20260113T000000Z", 0,
	    "EXDATE removes the instance" },
	{ "weekly-helsinki.ics", "20260119T000000Z", "20260120T000000Z", 0,
	    "override moved the instance out" },
	{ "weekly-helsinki.ics", "20260121T130000Z", "20260121T130001Z", 1,
	    "override moved it in (15:00 local)" },
	{ "weekly-helsinki.ics", "20260126T080000Z", "20260126T080001Z", 1,
	    "plain instance" },
	{ "weekly-helsinki.ics", "20260302T000000Z", "20260303T000000Z", 0,
	    "tenth instance moved out" },
	{ "weekly-helsinki.ics", "20260401T070000Z", "20260401T070001Z", 1,
	    "moved past COUNT into April (UTC+3)" },
	{ "weekly-helsinki.ics", "20260316T000000Z", "20260317T000000Z", 0,
	    "after COUNT=10" },
	{ "daily-helsinki-dst.ics", "20260328T070000Z", "20260328T070001Z", 1,
	    "09:00 EET is 07:00Z" },
	{ "daily-helsinki-dst.ics", "20260329T060000Z", "20260329T060001Z", 1,
	    "09:00 EEST is 06:00Z after the March change" },
	{ "daily-helsinki-dst.ics", "20260329T070000Z", "20260329T070001Z", 0,
	    "not at the winter instant after the change" },
	{ "daily-helsinki-dst.ics", "20261024T060000Z", "20261024T060001Z", 1,
	    "October, summer time" },
	{ "daily-helsinki-dst.ics", "20261025T070000Z", "20261025T070001Z", 1,
	    "October change back to 07:00Z" },
	{ "daily-helsinki-dst.ics", "20261025T060000Z", "20261025T060001Z", 0,
	    "not at the summer instant after the change" },
	{ "daily-newyork-builtin.ics", "20260307T140000Z", "20260307T140001Z",
	    1, "09:00 EST is 14:00Z" },
	{ "daily-newyork-builtin.ics", "20260308T130000Z", "20260308T130001Z",
	    1, "09:00 EDT is 13:00Z from 8 March" },
	{ "daily-newyork-builtin.ics", "20260308T140000Z", "20260308T140001Z",
	    0, "not 14:00Z on 8 March" },
	{ "daily-newyork-builtin.ics", "20261031T130000Z", "20261031T130001Z",
	    1, "31 October still EDT" },
	{ "daily-newyork-builtin.ics", "20261101T140000Z", "20261101T140001Z",
	    1, "1 November back to EST" },
	{ "daily-newyork-builtin.ics", "20270105T140000Z", "20270105T140001Z",
	    0, "after UNTIL" },
	{ "outlook-eastern.ics", "20261031T130000Z", "20261031T130001Z", 1,
	    "Windows zone name via the object's VTIMEZONE, EDT" },
	{ "outlook-eastern.ics", "20261102T140000Z", "20261102T140001Z", 1,
	    "Windows zone name, EST after 1 November" },
	{ "outlook-eastern.ics", "20261102T130000Z", "20261102T130001Z", 0,
	    "Windows zone name, not at EDT instant in November" },
};

static void
test_fixtures(void)
{
	for (size_t i = 0; i < sizeof fixture_ranges /
	    sizeof fixture_ranges[0]; i++) {
		char *ics = load(fixture_ranges[i].file);
		int got = match_range("VEVENT", fixture_ranges[i].start,
		    fixture_ranges[i].end, ics);

		check(got == fixture_ranges[i].want, "%s %s: got %d",
		    fixture_ranges[i].file, fixture_ranges[i].what, got);
		free(ics);
	}
}

#define F(inner) "<C:filter " CNS "><C:comp-filter name=\"VCALENDAR\">" \
	inner "</C:comp-filter></C:filter>"
#define FEV(inner) F("<C:comp-filter name=\"VEVENT\">" inner \
	"</C:comp-filter>")

static const char *const ev_meeting = EV("DTSTART:20260110T100000Z\n"
    "DTEND:20260110T110000Z\nSUMMARY:Team Meeting\nATTENDEE;PARTSTAT="
    "ACCEPTED;CN=\"Bob, B\":mailto:bob@example.com\nBEGIN:VALARM\n"
    "ACTION:DISPLAY\nDESCRIPTION:x\nTRIGGER:-PT15M\nEND:VALARM\n");

static const struct {
	const char *what, *filter;
	int want;
} filters[] = {
	{ "casemap substring", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match>meeting</C:text-match></C:prop-filter>"), 1 },
	{ "explicit casemap", FEV("<C:prop-filter name=\"summary\">"
	    "<C:text-match collation=\"i;ascii-casemap\">TEAM</C:text-match>"
	    "</C:prop-filter>"), 1 },
	{ "octet is case-sensitive", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match collation=\"i;octet\">meeting</C:text-match>"
	    "</C:prop-filter>"), 0 },
	{ "octet exact case", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match collation=\"i;octet\">Meeting</C:text-match>"
	    "</C:prop-filter>"), 1 },
	{ "negate a hit", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match negate-condition=\"yes\">meeting</C:text-match>"
	    "</C:prop-filter>"), 0 },
	{ "negate a miss", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match negate-condition=\"yes\">lunch</C:text-match>"
	    "</C:prop-filter>"), 1 },
	{ "negate needs the property", FEV("<C:prop-filter name=\"LOCATION\">"
	    "<C:text-match negate-condition=\"yes\">x</C:text-match>"
	    "</C:prop-filter>"), 0 },
	{ "prop is-not-defined, absent", FEV("<C:prop-filter name=\"LOCATION\">"
	    "<C:is-not-defined/></C:prop-filter>"), 1 },
	{ "prop is-not-defined, present", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:is-not-defined/></C:prop-filter>"), 0 },
	{ "prop defined", FEV("<C:prop-filter name=\"SUMMARY\"/>"), 1 },
	{ "comp is-not-defined VTODO", F("<C:comp-filter name=\"VTODO\">"
	    "<C:is-not-defined/></C:comp-filter>"), 1 },
	{ "comp is-not-defined VEVENT", F("<C:comp-filter name=\"VEVENT\">"
	    "<C:is-not-defined/></C:comp-filter>"), 0 },
	{ "VTODO wanted, event given", F("<C:comp-filter name=\"VTODO\"/>"),
	    0 },
	{ "param text-match", FEV("<C:prop-filter name=\"ATTENDEE\">"
	    "<C:text-match>bob@</C:text-match><C:param-filter name="
	    "\"PARTSTAT\"><C:text-match>accepted</C:text-match>"
	    "</C:param-filter></C:prop-filter>"), 1 },
	{ "param text-match miss", FEV("<C:prop-filter name=\"ATTENDEE\">"
	    "<C:param-filter name=\"PARTSTAT\"><C:text-match>NEEDS-ACTION"
	    "</C:text-match></C:param-filter></C:prop-filter>"), 0 },
	{ "quoted param value", FEV("<C:prop-filter name=\"ATTENDEE\">"
	    "<C:param-filter name=\"CN\"><C:text-match collation=\"i;octet\">"
	    "Bob, B</C:text-match></C:param-filter></C:prop-filter>"), 1 },
	{ "param is-not-defined", FEV("<C:prop-filter name=\"ATTENDEE\">"
	    "<C:param-filter name=\"ROLE\"><C:is-not-defined/>"
	    "</C:param-filter></C:prop-filter>"), 1 },
	{ "param is-not-defined, present", FEV("<C:prop-filter name="
	    "\"ATTENDEE\"><C:param-filter name=\"PARTSTAT\"><C:is-not-defined/>"
	    "</C:param-filter></C:prop-filter>"), 0 },
	{ "alarm at 09:45", FEV("<C:comp-filter name=\"VALARM\"><C:time-range "
	    "start=\"20260110T094500Z\" end=\"20260110T094600Z\"/>"
	    "</C:comp-filter>"), 1 },
	{ "no alarm at 10:00", FEV("<C:comp-filter name=\"VALARM\">"
	    "<C:time-range start=\"20260110T100000Z\" "
	    "end=\"20260110T100100Z\"/></C:comp-filter>"), 0 },
	{ "prop time-range on DTSTAMP", FEV("<C:prop-filter name=\"DTSTAMP\">"
	    "<C:time-range start=\"20260101T000000Z\" "
	    "end=\"20260102T000000Z\"/></C:prop-filter>"), 1 },
	{ "range and text together", FEV("<C:time-range start="
	    "\"20260110T000000Z\" end=\"20260111T000000Z\"/><C:prop-filter "
	    "name=\"SUMMARY\"><C:text-match>team</C:text-match>"
	    "</C:prop-filter>"), 1 },
	{ "range misses, text hits", FEV("<C:time-range start="
	    "\"20260111T000000Z\" end=\"20260112T000000Z\"/><C:prop-filter "
	    "name=\"SUMMARY\"><C:text-match>team</C:text-match>"
	    "</C:prop-filter>"), 0 },
	{ "empty VCALENDAR filter", F(""), 1 },
};

static void
test_filters(void)
{
	char *weekly = load("weekly-helsinki.ics");

	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		int got = match_filter(filters[i].filter, ev_meeting);

		check(got == filters[i].want, "%s: got %d want %d",
		    filters[i].what, got, filters[i].want);
	}
	/* per-component evaluation: the override has its own SUMMARY */
	check(match_filter(FEV("<C:time-range start=\"20260121T000000Z\" "
	    "end=\"20260122T000000Z\"/><C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match>moved</C:text-match></C:prop-filter>"), weekly) == 1,
	    "override matched with its own SUMMARY");
	check(match_filter(FEV("<C:time-range start=\"20260126T000000Z\" "
	    "end=\"20260127T000000Z\"/><C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match>moved</C:text-match></C:prop-filter>"), weekly) == 0,
	    "master instance does not take the override's SUMMARY");
	check(match_filter(FEV(""), "garbage") == 0, "bad ics never matches");
	/* VTIMEZONEs skipped for speed stay visible to filters naming them */
	check(match_filter(F("<C:comp-filter name=\"VTIMEZONE\"><C:prop-filter "
	    "name=\"TZID\"><C:text-match>Helsinki</C:text-match>"
	    "</C:prop-filter></C:comp-filter>"), weekly) == 1,
	    "VTIMEZONE comp-filter");
	check(match_filter(F("<C:comp-filter name=\"VTIMEZONE\">"
	    "<C:is-not-defined/></C:comp-filter>"), weekly) == 0,
	    "VTIMEZONE is defined");
	free(weekly);
}

static const struct {
	const char *what, *filter, *errpart;
} bad_filters[] = {
	{ "not a filter", "<C:prop-filter " CNS " name=\"X\"/>", "filter" },
	{ "no comp-filter", "<C:filter " CNS "/>", "exactly one" },
	{ "two comp-filters", "<C:filter " CNS "><C:comp-filter name="
	    "\"VCALENDAR\"/><C:comp-filter name=\"VCALENDAR\"/></C:filter>",
	    "exactly one" },
	{ "top is VEVENT", "<C:filter " CNS "><C:comp-filter name=\"VEVENT\"/>"
	    "</C:filter>", "VCALENDAR" },
	{ "missing name", F("<C:comp-filter/>"), "name" },
	{ "bad time format", FEV("<C:time-range start=\"2026-01-01\"/>"),
	    "start" },
	{ "local time", FEV("<C:time-range start=\"20260101T000000\"/>"),
	    "start" },
	{ "empty time-range", FEV("<C:time-range/>"), "start or end" },
	{ "end before start", FEV("<C:time-range start=\"20260102T000000Z\" "
	    "end=\"20260101T000000Z\"/>"), "not after" },
	{ "bad month", FEV("<C:time-range start=\"20261301T000000Z\"/>"),
	    "start" },
	{ "unknown collation", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match collation=\"i;unicode-casemap\">x</C:text-match>"
	    "</C:prop-filter>"), "collation" },
	{ "bad negate", FEV("<C:prop-filter name=\"SUMMARY\">"
	    "<C:text-match negate-condition=\"maybe\">x</C:text-match>"
	    "</C:prop-filter>"), "negate" },
	{ "unknown element", FEV("<C:foo/>"), "foo" },
	{ "too deep", F("<C:comp-filter name=\"A\"><C:comp-filter name=\"A\">"
	    "<C:comp-filter name=\"A\"><C:comp-filter name=\"A\">"
	    "<C:comp-filter name=\"A\"><C:comp-filter name=\"A\">"
	    "<C:comp-filter name=\"A\"><C:comp-filter name=\"A\">"
	    "<C:comp-filter name=\"A\"/></C:comp-filter></C:comp-filter>"
	    "</C:comp-filter></C:comp-filter></C:comp-filter></C:comp-filter>"
	    "</C:comp-filter></C:comp-filter>"), "deep" },
};

static void
test_bad_filters(void)
{
	char err[256];

	for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0];
	    i++) {
		struct query *q;

		err[0] = '\0';
		q = filter(bad_filters[i].filter, err, sizeof err);
		check(q == NULL, "%s: accepted", bad_filters[i].what);
		check(strstr(err, bad_filters[i].errpart) != NULL,
		    "%s: err \"%s\"", bad_filters[i].what, err);
		query_free(q);
	}
	check(query_parse(NULL, err, sizeof err) == NULL, "NULL filter");
}

static void
test_span(void)
{
	char err[256];
	struct query *q;
	int64_t s, e;

	q = filter(FEV("<C:time-range start=\"20260101T000000Z\" end="
	    "\"20260201T000000Z\"/>"), err, sizeof err);
	query_span(q, &s, &e);
	check(s == 1767225600 && e == 1769904000, "span %lld %lld",
	    (long long)s, (long long)e);
	query_free(q);
	q = filter(FEV("<C:prop-filter name=\"SUMMARY\"/>"), err, sizeof err);
	query_span(q, &s, &e);
	check(s == INT64_MIN && e == INT64_MAX, "no time-range: unbounded");
	query_free(q);
	q = filter(FEV("<C:time-range start=\"20260101T000000Z\"/>"), err,
	    sizeof err);
	query_span(q, &s, &e);
	check(s == 1767225600 && e == INT64_MAX, "open end");
	query_free(q);
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static char *
cdata(const char *req, const char *ics, char *err, size_t errlen)
{
	xmlDoc *d = req ? xml(req) : NULL;
	size_t len;
	char *out = query_calendar_data(d ? xmlDocGetRootElement(d) : NULL,
	    ics, strlen(ics), &len, err, errlen);

	check(out == NULL || strlen(out) == len, "length matches");
	xmlFreeDoc(d);
	return out;
}

#define CD(inner) "<C:calendar-data " CNS ">" inner "</C:calendar-data>"

static void
test_calendar_data(void)
{
	char *weekly = load("weekly-helsinki.ics"), *dst =
	    load("daily-helsinki-dst.ics"), *out, err[256];

	out = cdata(NULL, weekly, err, sizeof err);
	check(out && strcmp(out, weekly) == 0, "NULL: unchanged bytes");
	free(out);
	out = cdata(CD(""), weekly, err, sizeof err);
	check(out && strcmp(out, weekly) == 0, "empty element: unchanged");
	free(out);

	out = cdata(CD("<C:expand start=\"20260101T000000Z\" end="
	    "\"20260201T000000Z\"/>"), weekly, err, sizeof err);
	check(out != NULL, "expand: %s", err);
	if (out) {
		check(count(out, "BEGIN:VEVENT") == 3, "3 instances in "
		    "January (5th, 21st moved, 26th): %d\n%s",
		    count(out, "BEGIN:VEVENT"), out);
		check(strstr(out, "RECURRENCE-ID:20260105T080000Z"), "rid 5th");
		check(strstr(out, "RECURRENCE-ID:20260119T080000Z"),
		    "moved instance keeps its RID in UTC");
		check(strstr(out, "DTSTART:20260121T130000Z"), "moved start");
		check(strstr(out, "RECURRENCE-ID:20260126T080000Z"),
		    "rid 26th");
		check(!strstr(out, "20260112T080000Z"), "EXDATE honoured");
		check(!strstr(out, "RRULE") && !strstr(out, "EXDATE") &&
		    !strstr(out, "VTIMEZONE") && !strstr(out, "TZID"),
		    "no rule, zone or TZID left");
		check(strstr(out, "DTEND:20260105T090000Z") != NULL,
		    "DTEND UTC");
	}
	free(out);

	out = cdata(CD("<C:expand start=\"20260327T000000Z\" end="
	    "\"20260331T000000Z\"/>"), dst, err, sizeof err);
	check(out && count(out, "BEGIN:VEVENT") == 4, "4 days across DST");
	check(out && strstr(out, "RECURRENCE-ID:20260328T070000Z") &&
	    strstr(out, "RECURRENCE-ID:20260329T060000Z"),
	    "DST expansion lands on the right UTC instants");
	free(out);

	out = cdata(CD("<C:limit-recurrence-set start=\"20260125T000000Z\" "
	    "end=\"20260201T000000Z\"/>"), weekly, err, sizeof err);
	check(out && count(out, "BEGIN:VEVENT") == 1 && strstr(out, "RRULE"),
	    "limit-recurrence-set: master only");
	free(out);
	out = cdata(CD("<C:limit-recurrence-set start=\"20260120T000000Z\" "
	    "end=\"20260122T000000Z\"/>"), weekly, err, sizeof err);
	check(out && count(out, "BEGIN:VEVENT") == 2 &&
	    strstr(out, "Moved standup") && !strstr(out, "April"),
	    "limit-recurrence-set keeps the override moved into range");
	free(out);
	out = cdata(CD("<C:limit-recurrence-set start=\"20260302T000000Z\" "
	    "end=\"20260303T000000Z\"/>"), weekly, err, sizeof err);
	check(out && strstr(out, "April"),
	    "limit-recurrence-set keeps the override moved out of range");
	free(out);

	out = cdata(CD("<C:comp name=\"VCALENDAR\"><C:prop name=\"VERSION\"/>"
	    "<C:comp name=\"VEVENT\"><C:prop name=\"SUMMARY\"/><C:prop name="
	    "\"UID\"/></C:comp></C:comp>"), weekly, err, sizeof err);
	check(out != NULL, "partial: %s", err);
	if (out) {
		check(strstr(out, "VERSION:2.0") && strstr(out, "SUMMARY:") &&
		    strstr(out, "UID:weekly-1"), "selected props kept");
		check(!strstr(out, "PRODID") && !strstr(out, "DTSTART") &&
		    !strstr(out, "VTIMEZONE"), "others dropped:\n%s", out);
		check(count(out, "BEGIN:VEVENT") == 3, "all VEVENTs kept");
	}
	free(out);
	out = cdata(CD("<C:comp name=\"VCALENDAR\"><C:allprop/><C:comp name="
	    "\"VTIMEZONE\"/></C:comp>"), weekly, err, sizeof err);
	check(out && strstr(out, "TZOFFSETTO") && !strstr(out, "VEVENT") &&
	    strstr(out, "PRODID"), "empty comp keeps a whole VTIMEZONE");
	free(out);
	out = cdata(CD("<C:comp name=\"VCALENDAR\"><C:allprop/><C:allcomp/>"
	    "</C:comp>"), weekly, err, sizeof err);
	check(out && count(out, "BEGIN:VEVENT") == 3 &&
	    strstr(out, "VTIMEZONE"), "allprop/allcomp");
	free(out);

	out = cdata(CD("<C:limit-freebusy-set start=\"20260110T000000Z\" "
	    "end=\"20260111T000000Z\"/>"), CAL("BEGIN:VFREEBUSY\nUID:f\n"
	    "DTSTAMP:20260101T000000Z\nFREEBUSY:20260110T100000Z/PT1H\n"
	    "FREEBUSY:20260112T100000Z/PT1H\nEND:VFREEBUSY\n"), err,
	    sizeof err);
	check(out && count(out, "FREEBUSY:") == 1 &&
	    strstr(out, "20260110T100000Z"), "limit-freebusy-set");
	free(out);

	check(cdata(CD("<C:expand start=\"x\" end=\"y\"/>"), weekly, err,
	    sizeof err) == NULL, "bad expand rejected");
	check(cdata(CD("<C:comp name=\"VEVENT\"/>"), weekly, err, sizeof err)
	    == NULL, "top comp must be VCALENDAR");
	check(cdata("<C:calendar-data " CNS " content-type=\"text/html\"/>",
	    weekly, err, sizeof err) == NULL, "content-type checked");
	check(cdata(CD("<C:expand start=\"20260101T000000Z\" end="
	    "\"20260201T000000Z\"/>"), "nonsense", err, sizeof err) == NULL,
	    "bad stored data: error");
	free(weekly);
	free(dst);
}

static void
test_freebusy(void)
{
	struct freebusy *fb = freebusy_new(1768003200 /* 20260110 */,
	    1768089600 /* 20260111 */);
	char *out, *weekly = load("weekly-helsinki.ics");
	size_t len;

	check(freebusy_add(fb, "junk", 4) == -1, "junk refused");
	freebusy_add(fb, CAL("BEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART:20260110T100000Z\nDTEND:20260110T110000Z\nEND:VEVENT\n"),
	    strlen(CAL("BEGIN:VEVENT\nUID:a\nDTSTAMP:20260101T000000Z\n"
	    "DTSTART:20260110T100000Z\nDTEND:20260110T110000Z\nEND:VEVENT\n")));
#define ADD(s) freebusy_add(fb, s, strlen(s))
	ADD(EV("DTSTART:20260110T103000Z\nDTEND:20260110T120000Z\n"));
	ADD(EV("DTSTART:20260110T120000Z\nDTEND:20260110T123000Z\n"));
	ADD(EV("DTSTART:20260110T140000Z\nDTEND:20260110T150000Z\n"
	    "STATUS:TENTATIVE\n"));
	ADD(EV("DTSTART:20260110T160000Z\nDTEND:20260110T170000Z\n"
	    "TRANSP:TRANSPARENT\n"));
	ADD(EV("DTSTART:20260110T180000Z\nDTEND:20260110T190000Z\n"
	    "STATUS:CANCELLED\n"));
	ADD(EV("DTSTART:20260110T230000Z\nDTEND:20260111T020000Z\n"));
	ADD(EV("DTSTART:20260110T050000Z\n"));	/* zero length */
	ADD(EV("DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=WEEKLY;COUNT=2\n"));
	ADD(CAL("BEGIN:VFREEBUSY\nUID:f\nDTSTAMP:20260101T000000Z\n"
	    "FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20260110T200000Z/PT1H\n"
	    "FREEBUSY;FBTYPE=FREE:20260110T060000Z/PT1H\nEND:VFREEBUSY\n"));
	freebusy_add(fb, weekly, strlen(weekly));
	out = freebusy_finish(fb, &len);
	check(out && strlen(out) == len, "freebusy text");
	if (out) {
		check(strstr(out, "FREEBUSY;FBTYPE=BUSY:20260110T100000Z/"
		    "20260110T123000Z\r\n") != NULL,
		    "overlapping and touching periods coalesced:\n%s", out);
		check(strstr(out, "FBTYPE=BUSY-TENTATIVE:20260110T140000Z/"
		    "20260110T150000Z"), "tentative");
		check(strstr(out, "FBTYPE=BUSY-UNAVAILABLE:20260110T200000Z/"
		    "20260110T210000Z"), "VFREEBUSY component");
		check(strstr(out, "BUSY:20260110T230000Z/20260111T000000Z"),
		    "clipped to the range");
		check(!strstr(out, "T160000Z") && !strstr(out, "T180000Z") &&
		    !strstr(out, "T050000Z") && !strstr(out, "T060000Z"),
		    "transparent, cancelled, zero-length, FREE skipped");
		check(count(out, "FREEBUSY;") == 4, "4 periods");
		check(strstr(out, "DTSTART:20260110T000000Z") &&
		    strstr(out, "DTEND:20260111T000000Z"), "range");
	}
	free(out);
	free(weekly);
}

static const struct {
	const char *what, *rule;
	int want;		/* match for a range in 2026 */
} hostile[] = {
	{ "COUNT=1e9", "FREQ=DAILY;COUNT=1000000000", 1 },
	{ "secondly, no end", "FREQ=SECONDLY", 1 },
	{ "secondly with COUNT", "FREQ=SECONDLY;COUNT=1000000000", 1 },
	{ "minutely impossible day", "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
	    1 },
	{ "hourly impossible day", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", 1 },
	{ "secondly BYHOUR", "FREQ=SECONDLY;BYHOUR=3;BYMINUTE=0;BYSECOND=0;"
	    "COUNT=100000", 1 },
	{ "daily impossible day", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;"
	    "COUNT=5", 1 },
	{ "yearly impossible", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", 1 },
	{ "BYSECOND lists", "FREQ=YEARLY;BYSECOND=0,1,2,3,4,5,6,7,8,9,10,11,"
	    "12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,"
	    "33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,"
	    "54,55,56,57,58,59;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
	    "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,"
	    "37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,"
	    "58,59;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
	    "21,22,23;COUNT=1000000000", 1 },
	{ "huge interval", "FREQ=YEARLY;INTERVAL=5000", 0 },
	{ "weekly impossible setpos", "FREQ=WEEKLY;BYMONTH=2;BYDAY=MO;"
	    "BYSETPOS=5", 0 },
};

/* Rules that would run (nearly) forever without the engine's bounds:
 * each must answer. A runaway rule is a hang, not a slow pass: SIGALRM
 * ends the test (no "N passed" line, a failure), whatever the machine's
 * speed; how fast the engine is belongs to make bench. */
static void
test_hostile(void)
{
	alarm(120);
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		char ics[2048], err[256], *out;
		struct ical_object o;
		int got;

		snprintf(ics, sizeof ics, "BEGIN:VCALENDAR\nVERSION:2.0\n"
		    "PRODID:-//t//EN\nBEGIN:VEVENT\nUID:h\nDTSTAMP:20260101T"
		    "000000Z\nDTSTART:19700101T000000Z\nDURATION:PT1S\n"
		    "RRULE:%s\nEND:VEVENT\nEND:VCALENDAR\n", hostile[i].rule);
		got = match_range("VEVENT", "20260601T000000Z",
		    "20260601T000100Z", ics);
		check(got == hostile[i].want, "%s: match %d", hostile[i].what,
		    got);
		check(ical_object_check(ics, strlen(ics), &o, err,
		    sizeof err) == 0, "%s: valid: %s", hostile[i].what, err);
		ical_object_clear(&o);
		out = cdata(CD("<C:expand start=\"20260101T000000Z\" end="
		    "\"20270101T000000Z\"/>"), ics, err, sizeof err);
		check(out != NULL, "%s: expand", hostile[i].what);
		free(out);
	}
	alarm(0);
}

/*
 * An endless rule is entered near the window (icalrecur_iterator_set_start)
 * while a COUNT rule is walked from DTSTART: both must give the same
 * instances.
 */
static void
test_skip_ahead(void)
{
	static const char *const rules[] = {
		"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
		"FREQ=MONTHLY;INTERVAL=3;BYDAY=-1FR", "FREQ=HOURLY;INTERVAL=7",
		"FREQ=DAILY;INTERVAL=3", "FREQ=YEARLY;BYMONTH=1,2,3;BYDAY=2TU",
		"FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=DAILY",
	};
	const char *fmt = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n"
	    "BEGIN:VEVENT\nUID:x\nDTSTAMP:20200101T000000Z\nDTSTART;TZID="
	    "Europe/Helsinki:20200106T093000\nDURATION:PT1H\nRRULE:%s%s\n"
	    "END:VEVENT\nEND:VCALENDAR\n";

	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		char a[512], b[512], err[256], *x, *y;

		snprintf(a, sizeof a, fmt, rules[i], "");
		snprintf(b, sizeof b, fmt, rules[i], ";COUNT=19000");
		x = cdata(CD("<C:expand start=\"20260101T000000Z\" end="
		    "\"20260401T000000Z\"/>"), a, err, sizeof err);
		y = cdata(CD("<C:expand start=\"20260101T000000Z\" end="
		    "\"20260401T000000Z\"/>"), b, err, sizeof err);
		check(x && y && strcmp(x, y) == 0 && count(x, "BEGIN:VEVENT")
		    > 0, "%s: skip-ahead differs", rules[i]);
		free(x);
		free(y);
	}
}

/*
 * The date-arithmetic fast path in server/ical.c against libical's own
 * iterator: same instances, for every simple rule shape, with COUNT,
 * UNTIL, intervals, month ends, leap days, zones and DST.
 */
static void
test_fast_path(void)
{
	static const char *const rules[] = {
		"FREQ=DAILY", "FREQ=DAILY;INTERVAL=3", "FREQ=DAILY;COUNT=400",
		"FREQ=DAILY;INTERVAL=2;COUNT=300",
		"FREQ=DAILY;UNTIL=20260615T000000Z",
		"FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=2;COUNT=40",
		"FREQ=WEEKLY;BYDAY=MO,WE,FR",
		"FREQ=WEEKLY;BYDAY=TU,TH;COUNT=150",
		"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU",
		"FREQ=WEEKLY;INTERVAL=3;BYDAY=SA,SU;WKST=SU",
		"FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,MO;WKST=SU;COUNT=90",
		"FREQ=WEEKLY;BYDAY=SU;UNTIL=20260405T000000Z",
		"FREQ=MONTHLY", "FREQ=MONTHLY;INTERVAL=5",
		"FREQ=MONTHLY;COUNT=90",
		"FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=4", "FREQ=YEARLY;COUNT=12",
	};
	static const char *const starts[] = {
		"DTSTART;TZID=Europe/Helsinki:20190131T093000",
		"DTSTART;TZID=America/New_York:20200229T013000",
		"DTSTART:20180103T230000Z", "DTSTART;VALUE=DATE:20200229",
		"DTSTART:20251231T120000", "DTSTART;VALUE=DATE:20260330",
	};
	const char *req = CD("<C:expand start=\"20260101T000000Z\" end="
	    "\"20270301T000000Z\"/>");

	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		for (size_t j = 0; j < sizeof starts / sizeof starts[0]; j++) {
			char ics[1024], err[256], *a, *b;
			struct ical_object oa, ob;

			snprintf(ics, sizeof ics, "BEGIN:VCALENDAR\nVERSION:2.0"
			    "\nPRODID:x\nBEGIN:VEVENT\nUID:x\nDTSTAMP:"
			    "20200101T000000Z\n%s\nRRULE:%s\nEND:VEVENT\n"
			    "END:VCALENDAR\n", starts[j], rules[i]);
			ical_set_fast_recur(1);
			a = cdata(req, ics, err, sizeof err);
			ical_object_check(ics, strlen(ics), &oa, err,
			    sizeof err);
			ical_set_fast_recur(0);
			b = cdata(req, ics, err, sizeof err);
			ical_object_check(ics, strlen(ics), &ob, err,
			    sizeof err);
			ical_set_fast_recur(1);
			check(a && b && strcmp(a, b) == 0, "%s from %s: fast "
			    "path differs (%d vs %d instances)", rules[i],
			    starts[j], a ? count(a, "BEGIN:VEVENT") : -1,
			    b ? count(b, "BEGIN:VEVENT") : -1);
			check(oa.start == ob.start && oa.end == ob.end,
			    "%s from %s: span differs", rules[i], starts[j]);
			ical_object_clear(&oa);
			ical_object_clear(&ob);
			free(a);
			free(b);
		}
}

/*
 * The instance digest (server/ical.c, kept by the store) answers a plain
 * VEVENT time-range without parsing: wherever it gives an answer, that
 * must be the full evaluation's, for recurrence sets with EXDATE, moved
 * and shortened overrides, RDATE, DST, all-day and endless rules.
 */
static const struct {
	const char *what, *ics;
	int min_decided;	/* of the windows below, at least */
} digests[] = {
	{ "weekly, EXDATE, moved override", CAL("BEGIN:VEVENT\nUID:d1\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART;TZID=Europe/Helsinki:"
	    "20260105T100000\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;COUNT=20\n"
	    "EXDATE;TZID=Europe/Helsinki:20260119T100000\nEND:VEVENT\n"
	    "BEGIN:VEVENT\nUID:d1\nDTSTAMP:20260101T000000Z\nRECURRENCE-ID;"
	    "TZID=Europe/Helsinki:20260126T100000\nDTSTART;TZID=Europe/"
	    "Helsinki:20260128T150000\nDTEND;TZID=Europe/Helsinki:"
	    "20260128T170000\nEND:VEVENT\n"), 500 },
	{ "daily across DST, UNTIL", EV("DTSTART;TZID=Europe/Helsinki:"
	    "20260301T233000\nDTEND;TZID=Europe/Helsinki:20260302T003000\n"
	    "RRULE:FREQ=DAILY;UNTIL=20260410T000000Z\nEXDATE;TZID=Europe/"
	    "Helsinki:20260329T233000\n"), 500 },
	{ "endless yearly", EV("DTSTART:20200220T120000Z\nDURATION:P2D\n"
	    "RRULE:FREQ=YEARLY\n"), 500 },
	{ "all-day, EXDATE", EV("DTSTART;VALUE=DATE:20260110\n"
	    "RRULE:FREQ=DAILY;COUNT=10\nEXDATE;VALUE=DATE:20260112\n"), 500 },
	{ "instants, no end", EV("DTSTART:20260201T060000Z\n"
	    "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=9\n"), 500 },
	{ "RDATE and a shortened override", CAL("BEGIN:VEVENT\nUID:d2\n"
	    "DTSTAMP:20260101T000000Z\nDTSTART:20260107T090000Z\n"
	    "DTEND:20260107T110000Z\nRDATE:20260111T090000Z,20260302T090000Z"
	    "\nRRULE:FREQ=MONTHLY;COUNT=3\nEND:VEVENT\nBEGIN:VEVENT\nUID:d2\n"
	    "DTSTAMP:20260101T000000Z\nRECURRENCE-ID:20260207T090000Z\n"
	    "DTSTART:20260207T093000Z\nDTEND:20260207T094500Z\n"
	    "END:VEVENT\n"), 500 },
	{ "single, zero length", EV("DTSTART:20260301T120000Z\n"
	    "DTEND:20260301T120000Z\n"), 500 },
};

static void
test_digest(void)
{
	/* windows every 5 hours from Christmas to May: every hour of the
	 * day, starts and ends on instance boundaries among them */
	static const int64_t lens[] = { 1, 3600, 9 * 86400 };
	int64_t from = 1766620800;		/* 2025-12-25 */
	int64_t to = 1777593600;		/* 2026-05-01 */

	for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++) {
		const char *ics = digests[i].ics;
		struct ical_object o;
		char err[256];
		int decided = 0, wrong = 0;

		check(ical_object_check(ics, strlen(ics), &o, err,
		    sizeof err) == 0 && o.instances != NULL,
		    "%s: checked with a digest: %s", digests[i].what, err);
		if (o.instances == NULL) {
			ical_object_clear(&o);
			continue;
		}
		for (int64_t s = from; s < to; s += 5 * 3600)
			for (size_t l = 0; l < 3; l++) {
				char f[512], sa[32], ea[32];
				struct query *q;
				int fast, slow;
				time_t ts = (time_t)s, te = (time_t)(s +
				    lens[l]);

				strftime(sa, sizeof sa, "%Y%m%dT%H%M%SZ",
				    gmtime(&ts));
				strftime(ea, sizeof ea, "%Y%m%dT%H%M%SZ",
				    gmtime(&te));
				snprintf(f, sizeof f, "<C:filter " CNS "><C:"
				    "comp-filter name=\"VCALENDAR\"><C:comp-"
				    "filter name=\"VEVENT\"><C:time-range start"
				    "=\"%s\" end=\"%s\"/></C:comp-filter></C:"
				    "comp-filter></C:filter>", sa, ea);
				q = filter(f, err, sizeof err);
				if (q == NULL)
					continue;
				fast = query_match_digest(q, "VEVENT",
				    o.instances, o.instances_len);
				slow = query_match(q, ics, strlen(ics));
				if (fast >= 0) {
					decided++;
					if (fast != slow && wrong++ < 3)
						check(0, "%s: %s..%s digest "
						    "says %d, parse %d",
						    digests[i].what, sa, ea,
						    fast, slow);
				}
				query_free(q);
			}
		check(wrong == 0, "%s: %d windows answered wrongly",
		    digests[i].what, wrong);
		check(decided >= digests[i].min_decided, "%s: the digest "
		    "answered %d windows", digests[i].what, decided);
		ical_object_clear(&o);
	}
}

/* Runs of equal step and length: a year of a zoned daily event is a
 * few runs, not a list of its 365 instances. */
static void
test_digest_compact(void)
{
	const char *ics = EV("DTSTART;TZID=Europe/Helsinki:20260101T093000\n"
	    "DURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=365\n");
	struct ical_object o;
	char err[256];

	check(ical_object_check(ics, strlen(ics), &o, err, sizeof err) == 0 &&
	    o.instances != NULL && o.instances_len < 80,
	    "a year of a daily event: %zu bytes of digest", o.instances_len);
	if (o.instances) {
		/* cut anywhere: never a wrong answer, at most "parse" */
		for (size_t n = 0; n < o.instances_len; n++) {
			int m = ical_digest_match(o.instances, n, 1798761600,
			    1798765200);	/* 2027-01-01, after the set */

			check(m == -1 || m == 0, "cut at %zu: %d", n, m);
		}
		check(ical_digest_match(o.instances, o.instances_len,
		    1775111400, 1775111401) == 1, "2026-04-02 09:30 local "
		    "(06:30Z, after DST) is an instance");
		check(ical_digest_match(o.instances, o.instances_len,
		    1775115000, 1775160000) == 0, "nothing later that day");
	}
	ical_object_clear(&o);
}

/* A store written before version 2 holds "dig1" digests: still read. */
static void
test_digest_v1(void)
{
	int64_t d[7] = { 0x31676964, INT64_MAX, 3600, 1000, 4600, 90000,
	    93600 };

	check(ical_digest_match(d, sizeof d, 0, 1000) == 0, "v1: before");
	check(ical_digest_match(d, sizeof d, 4599, 4601) == 1, "v1: last "
	    "second of the first");
	check(ical_digest_match(d, sizeof d, 4600, 90000) == 0, "v1: between");
	check(ical_digest_match(d, sizeof d, 93599, 100000) == 1, "v1: "
	    "second");
	d[1] = 50000;		/* listed only below 50000 */
	check(ical_digest_match(d, sizeof d, 60000, 70000) == -1, "v1: past "
	    "its limit");
	check(ical_digest_match(d, sizeof d - 1, 0, 1000) == -1, "v1: torn");
	d[0] = 0x33676964;
	check(ical_digest_match(d, sizeof d, 0, 1000) == -1, "unknown magic");
}

int
main(void)
{
	test_ranges();
	test_fixtures();
	test_filters();
	test_bad_filters();
	test_span();
	test_calendar_data();
	test_freebusy();
	test_hostile();
	test_skip_ahead();
	test_fast_path();
	test_digest();
	test_digest_compact();
	test_digest_v1();
	icaltimezone_free_builtin_timezones();
	xmlCleanupParser();
	return check_done();
}
