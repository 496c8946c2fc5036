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

#include "server/store.h"

#define ICAL_MAX_OBJECT	(4u << 20)	/* one resource, bytes */

struct ical_object {
	char *uid;			/* owned */
	char component[16];		/* VEVENT, VTODO, VJOURNAL, VFREEBUSY */
	char *organizer;		/* owned; lower-case mailto: or NULL */
	int64_t start, end;		/* UTC span of all instances;
					   INT64_MIN / INT64_MAX unbounded */
	const char *precondition;	/* on error: the RFC 4791 element,
					   e.g. "valid-calendar-data" */
};

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

/* The store's index record for an object checked above (borrows out). */
void ical_object_meta(const struct ical_object *,
    struct store_object_meta *meta);

#endif
