/*
 * policy/mime.h: finds the calendar parts of a message (RFC 6047 iMIP):
 * text/calendar at any depth, and application/ics carrying a METHOD.
 */
#ifndef CALGATE_MIME_H
#define CALGATE_MIME_H

#include <stddef.h>

#define MIME_MAX_CONTAINERS	64		/* multipart and message parts */
#define MIME_MAX_PARTS		8		/* calendar parts kept */
#define MIME_MAX_ICS		(1024 * 1024)	/* decoded bytes per part */

struct mime_part {
	char *text;		/* owned: decoded, UTF-8, NUL-terminated */
	size_t len;
	int text_calendar;	/* text/calendar (else application/ics) */
	char method[32];	/* Content-Type method=, upper case, or "" */
};

struct mime_parts {
	struct mime_part part[MIME_MAX_PARTS];
	size_t n;
};

enum mime_status {
	MIME_OK = 0,		/* out->n may be 0: no calendar */
	MIME_INVALID,		/* unparsable, too deep, a part too big,
				 * undecodable charset */
};

/*
 * Parses msg[0..len) and collects its calendar parts in document order.
 * On MIME_INVALID writes the reason into err; out holds nothing. Free out
 * with mime_parts_free in both cases.
 */
enum mime_status mime_calendars(const char *msg, size_t len,
    struct mime_parts *out, char *err, size_t errlen);
void mime_parts_free(struct mime_parts *);

#endif
