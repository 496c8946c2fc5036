/*
 * policy/ics.h: the iTIP fields of one iMIP calendar object (libical).
 */
#ifndef CALGATE_ICS_H
#define CALGATE_ICS_H

#include <stddef.h>

#define ICS_MAX_ATTENDEES	1000

struct ics_info {
	char *method;		/* owned, upper case: REQUEST, REPLY, ... */
	char *uid;		/* owned */
	char *organizer;	/* owned, as written ("mailto:..."), or NULL */
	char **attendees;	/* owned, as written */
	size_t nattendees;
	int sequence;
	char *recurrence_id;	/* owned or NULL (first component's) */
	char *dtstamp;		/* owned or NULL */
	char *dtstart;		/* owned or NULL */
	char *summary;		/* owned or NULL */
};

/*
 * Parses text as one VCALENDAR with a METHOD and components that share
 * one UID and one ORGANIZER. Returns 0 and fills out, or -1 with the
 * reason in err (the gate's ical-invalid). Free out with ics_free either
 * way.
 */
int ics_parse(const char *text, struct ics_info *out, char *err,
    size_t errlen);
void ics_free(struct ics_info *);

/*
 * The address in a calendar user value ("mailto:Bob@X.org" ->
 * "bob@x.org"), lower case, into out. Returns 0, or -1 if it is not a
 * mailto: address.
 */
int ics_address(const char *cal_address, char *out, size_t outlen);

/* Call once before threads start: libical must not abort on bad input. */
void ics_init(void);

#endif
