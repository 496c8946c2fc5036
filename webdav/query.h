/*
 * webdav/query.h: the CalDAV query engine (RFC 4791): calendar-query
 * filters (9.7) with time ranges honouring recurrence (9.9), the
 * calendar-data selection and expansion (9.6) and free-busy (7.10).
 * It sees one calendar object at a time as iCalendar text; the store,
 * the XML request parsing and the HTTP answers belong to webdav/dav.c.
 */
#ifndef CALGATE_QUERY_H
#define CALGATE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#define QUERY_NS	"urn:ietf:params:xml:ns:caldav"

struct query;			/* a parsed CALDAV:filter */
struct freebusy;		/* a free-busy answer being built */

/*
 * Parses <C:filter>. Returns a query (free with query_free), or NULL with
 * a one-line reason in err on a bad filter (the caller answers 403 with
 * CALDAV:valid-filter; an unknown collation says "supported-collation").
 */
struct query *query_parse(xmlNode *filter, char *err, size_t errlen);
void query_free(struct query *);

/*
 * The UTC span for the store prefilter (store_object_list): the
 * intersection of the time-ranges of the comp-filters right under
 * VCALENDAR; INT64_MIN / INT64_MAX when there are none.
 */
void query_span(const struct query *, int64_t *start, int64_t *end);

/* 1 if the calendar object matches, 0 if not or if it is not iCalendar. */
int query_match(const struct query *, const char *ics, size_t len);
/*
 * The same answer from the object's stored instance digest (see
 * ical_digest_match) without parsing it, when the filter is a plain
 * VEVENT time-range and the object a VEVENT: 1 or 0; -1 when the digest
 * cannot tell (call query_match).
 */
int query_match_digest(const struct query *, const char *component,
    const void *digest, size_t len);

/*
 * What goes inside <C:calendar-data> for the request element elem
 * (NULL or an empty element: the object unchanged): comp/prop selection,
 * expand, limit-recurrence-set, limit-freebusy-set. Returns malloc'd
 * text (caller frees) with its length in *outlen, or NULL with a reason
 * in err on a bad request element or bad calendar data.
 */
char *query_calendar_data(xmlNode *elem, const char *ics, size_t len,
    size_t *outlen, char *err, size_t errlen);

/*
 * Free-busy (RFC 4791 7.10) over [start, end): add each object, then
 * finish. freebusy_add returns 0, or -1 if the data is not iCalendar.
 * freebusy_finish returns a malloc'd VCALENDAR with one VFREEBUSY
 * (caller frees) and frees fb; NULL only when out of memory.
 */
struct freebusy *freebusy_new(int64_t start, int64_t end);
int freebusy_add(struct freebusy *, const char *ics, size_t len);
char *freebusy_finish(struct freebusy *, size_t *len);
void freebusy_free(struct freebusy *);

/* Parses an RFC 4791 UTC time attribute (20060104T000000Z); 0 or -1. */
int query_parse_utc(const char *s, int64_t *out);

#endif
