/*
 * server/ical.h: what calgate needs to know about one stored calendar
 * object resource (RFC 4791 4.1, 5.3.2), read with libical. Used by the
 * WebDAV PUT path and by the iTIP merge engine, so both store objects the
 * same way.
 */
#ifndef CALGATE_ICAL_H
#define CALGATE_ICAL_H

#include <stddef.h>
#include <stdint.h>

#include <libical/ical.h>

#include "server/store.h"

#define ICAL_MAX_OBJECT	(4u << 20)	/* one resource, bytes */
#define ICAL_MAX_DEPTH	8		/* BEGIN: nesting, VCALENDAR = 1 */

struct ical_object {
	char *uid;			/* owned */
	char component[16];		/* VEVENT, VTODO, VJOURNAL, VFREEBUSY */
	char *organizer;		/* owned; lower-case mailto: or NULL */
	int64_t start, end;		/* UTC span of all instances;
					   INT64_MIN / INT64_MAX unbounded */
	const char *precondition;	/* on error: the RFC 4791 element,
					   e.g. "valid-calendar-data" */
	void *instances;		/* owned: VEVENT instance digest
					   (ical_digest_match), or NULL */
	size_t instances_len;		/* bytes */
};

/*
 * What libical does not check, on the raw text before it is parsed: every
 * END: names the component its BEGIN: opened (RFC 5545 3.4, 3.6; folded
 * lines unfolded), everything opened is closed, and components nest at
 * most max_depth deep (libical frees them recursively). 0, or -1 with a
 * one-line reason in err.
 */
int ical_prescan(const char *data, size_t len, int max_depth, char *err,
    size_t errlen);

/*
 * Checks that data is one valid calendar object resource: a VCALENDAR
 * with no METHOD, components of one type sharing one UID, at most one
 * master. On success fills out (free with ical_object_clear) and returns
 * 0; on error returns -1 with a one-line reason in err and the RFC 4791
 * precondition element name in out->precondition.
 */
int ical_object_check(const char *data, size_t len, struct ical_object *out,
    char *err, size_t errlen);
void ical_object_clear(struct ical_object *);

/*
 * The first error libical recorded (an X-LIC-ERROR property) in c or
 * below, or NULL when the text was valid. An empty property value (Apple
 * sends "URL;VALUE=URI:") loses nothing: libical dropped the property, and
 * that error is removed from c rather than reported.
 */
const char *ical_parse_error(icalcomponent *c);

/* The store's index record for an object checked above (borrows out). */
void ical_object_meta(const struct ical_object *,
    struct store_object_meta *meta);

/* ---- recurrence: instances of one component (used by webdav/query) ---- */

struct icalcomponent_impl;		/* libical's icalcomponent */
struct icalproperty_impl;		/* libical's icalproperty */

/*
 * One instance of a VEVENT, VTODO or VJOURNAL: the master's expanded
 * occurrence or an override (RECURRENCE-ID). Times are UTC seconds;
 * floating and DATE values are read as UTC (RFC 4791 9.9 lets the
 * server pick; calgate has no per-collection timezone).
 */
struct ical_instance {
	struct icalcomponent_impl *comp; /* borrowed: master or override */
	int recurring;		/* part of a recurrence set */
	int64_t rid;		/* recurring: the original start (UTC) */
	int is_date;		/* DTSTART is a DATE (all-day) */
	int has_start;
	int64_t start;		/* DTSTART of this instance */
	int end_kind;		/* ICAL_END_* */
	int64_t end;		/* DTEND, DUE or DTSTART+DURATION */
};

#define ICAL_END_NONE		0
#define ICAL_END_DTEND		1	/* DTEND (VEVENT) or DUE (VTODO) */
#define ICAL_END_DURATION	2

/* ical_instances() results */
#define ICAL_EXP_DONE		0
#define ICAL_EXP_STOPPED	1	/* fn returned non-zero */
#define ICAL_EXP_UNBOUNDED	2	/* work cap hit or a rule calgate will
					   not expand: more instances may
					   exist at or after *lower */

typedef int (*ical_instance_fn)(void *arg, const struct ical_instance *);

/*
 * Calls fn for each instance of comp (a master: its RRULE/RDATE set minus
 * EXDATE and minus the instances that overrides in root replace; an
 * override or a plain component: itself) whose hull meets [start, end]
 * (a loose window; callers test ical_instance_overlaps). root is comp's
 * VCALENDAR: its VTIMEZONEs resolve TZIDs. The work is bounded
 * (ICAL_MAX_STEPS recurrence steps and a time budget); past it the
 * result is ICAL_EXP_UNBOUNDED with *lower (may be NULL) set.
 */
int ical_instances(struct icalcomponent_impl *root,
    struct icalcomponent_impl *comp, int64_t start, int64_t end,
    ical_instance_fn fn, void *arg, int64_t *lower);

/* RFC 4791 9.9: does the instance overlap [start, end)? */
int ical_instance_overlaps(const struct ical_instance *, int64_t start,
    int64_t end);

/*
 * The instance digest of a VEVENT object, made by ical_object_check and
 * kept by the store (store_object_put_indexed): every instance as the half-open UTC interval that
 * ical_instance_overlaps tests, complete below a limit. It answers a
 * plain VEVENT time-range filter without parsing the object again:
 * 1 some instance overlaps [start, end), 0 none does, -1 the digest
 * cannot tell (it is cut off before end, or malformed): parse instead.
 */
int ical_digest_match(const void *digest, size_t len, int64_t start,
    int64_t end);

/* Tests only: 0 sends every rule through libical's own iterator. */
void ical_set_fast_recur(int on);

/*
 * Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1-12),
 * negative before it; no range check.
 */
int64_t ical_days_from_civil(int64_t y, int m, int d);

/* UTC of a DATE / DATE-TIME property value, honouring its TZID. */
int64_t ical_prop_utc(struct icalcomponent_impl *root,
    struct icalproperty_impl *prop, int *is_date);

#endif
