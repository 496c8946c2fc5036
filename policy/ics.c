/*
 * policy/ics.c: extracts what the gate and the iTIP merge engine need from
 * an iMIP object (RFC 5546): METHOD, UID, ORGANIZER, ATTENDEEs, SEQUENCE,
 * RECURRENCE-ID, DTSTAMP, DTSTART, SUMMARY. libical parses leniently and
 * marks what it could not read with X-LIC-ERROR; any such mark, a missing
 * METHOD or UID, or components that disagree on UID or ORGANIZER make the
 * object invalid. The merge itself is server/itip.c's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libical/ical.h>

#include "policy/ics.h"
#include "server/ical.h"

void
ics_init(void)
{
	icalerror_set_errors_are_fatal(0);
}

void
ics_free(struct ics_info *s)
{
	if (s == NULL)
		return;
	free(s->method);
	free(s->uid);
	free(s->organizer);
	for (size_t i = 0; i < s->nattendees; i++)
		free(s->attendees[i]);
	free(s->attendees);
	free(s->recurrence_id);
	free(s->dtstamp);
	free(s->dtstart);
	free(s->summary);
	memset(s, 0, sizeof *s);
}

int
ics_address(const char *v, char *out, size_t outlen)
{
	size_t i;

	if (v == NULL || strncasecmp(v, "mailto:", 7) != 0)
		return -1;
	v += 7;
	while (*v == ' ')
		v++;
	for (i = 0; v[i] && i + 1 < outlen; i++)
		out[i] = (char)tolower((unsigned char)v[i]);
	out[i] = '\0';
	if (v[i] != '\0' || strchr(out, '@') == NULL)
		return -1;
	return 0;
}

static char *
ics_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The property's value as text (for dates, as written). */
static char *
ics_prop_text(icalcomponent *c, icalproperty_kind k)
{
	icalproperty *p = icalcomponent_get_first_property(c, k);

	if (p == NULL)
		return NULL;
	return ics_dup(icalproperty_get_value_as_string(p));
}

static int
ics_count_errors(icalcomponent *c, char *err, size_t errlen)
{
	icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_XLICERROR_PROPERTY);
	icalcomponent *sub;

	if (p != NULL) {
		const char *t = icalproperty_get_xlicerror(p);
		snprintf(err, errlen, "libical: %.100s", t ? t : "error");
		return 1;
	}
	for (sub = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT);
	    sub != NULL;
	    sub = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
		if (ics_count_errors(sub, err, errlen))
			return 1;
	return 0;
}

static int
ics_add_attendee(struct ics_info *s, const char *v)
{
	char **n;

	if (v == NULL)
		return 0;
	for (size_t i = 0; i < s->nattendees; i++)
		if (!strcasecmp(s->attendees[i], v))
			return 0;
	if (s->nattendees >= ICS_MAX_ATTENDEES)
		return -1;
	n = realloc(s->attendees, (s->nattendees + 1) * sizeof *n);
	if (n == NULL)
		return -1;
	s->attendees = n;
	s->attendees[s->nattendees] = strdup(v);
	if (s->attendees[s->nattendees] == NULL)
		return -1;
	s->nattendees++;
	return 0;
}

/* One VEVENT/VTODO/VJOURNAL/VFREEBUSY: same UID and ORGANIZER as the
 * others (RFC 5546 1.4: one iTIP message, one UID). */
static int
ics_component(icalcomponent *c, struct ics_info *s, int first, char *err,
    size_t errlen)
{
	icalproperty *p;
	const char *uid = icalcomponent_get_uid(c);
	const char *org = NULL;

	p = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);
	if (p != NULL)
		org = icalproperty_get_organizer(p);
	if (uid == NULL || *uid == '\0') {
		snprintf(err, errlen, "component without UID");
		return -1;
	}
	if (first) {
		s->uid = strdup(uid);
		s->organizer = ics_dup(org);
		s->sequence = icalcomponent_get_sequence(c);
		s->recurrence_id = ics_prop_text(c,
		    ICAL_RECURRENCEID_PROPERTY);
		s->dtstamp = ics_prop_text(c, ICAL_DTSTAMP_PROPERTY);
		s->dtstart = ics_prop_text(c, ICAL_DTSTART_PROPERTY);
		s->summary = ics_prop_text(c, ICAL_SUMMARY_PROPERTY);
		if (s->sequence < 0)
			s->sequence = 0;
	} else {
		if (strcmp(s->uid, uid) != 0) {
			snprintf(err, errlen, "components with different "
			    "UIDs");
			return -1;
		}
		if ((s->organizer == NULL) != (org == NULL) ||
		    (org != NULL && strcasecmp(s->organizer, org) != 0)) {
			snprintf(err, errlen, "components with different "
			    "ORGANIZERs");
			return -1;
		}
	}
	for (p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY);
	    p != NULL;
	    p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
		if (ics_add_attendee(s, icalproperty_get_attendee(p)) != 0) {
			snprintf(err, errlen, "too many attendees");
			return -1;
		}
	}
	return 0;
}

int
ics_parse(const char *text, struct ics_info *s, char *err, size_t errlen)
{
	icalcomponent *root, *c;
	icalproperty *mp;
	int n = 0, ret = -1;

	memset(s, 0, sizeof *s);
	/* what libical lets through (and an END before its BEGIN, which it
	 * reports on stderr), as the merge engine checks it */
	if (ical_prescan(text, strlen(text), ICAL_MAX_DEPTH, err, errlen))
		return -1;
	root = icalparser_parse_string(text);
	if (root == NULL) {
		snprintf(err, errlen, "not an iCalendar object");
		return -1;
	}
	if (icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT) {
		snprintf(err, errlen, "not exactly one VCALENDAR");
		goto out;
	}
	if (ics_count_errors(root, err, errlen))
		goto out;
	mp = icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY);
	if (mp == NULL || icalproperty_get_method(mp) == ICAL_METHOD_NONE ||
	    icalproperty_get_method(mp) == ICAL_METHOD_X) {
		snprintf(err, errlen, "no METHOD (not iTIP)");
		goto out;
	}
	s->method = strdup(icalproperty_method_to_string(
	    icalproperty_get_method(mp)));
	for (c = icalcomponent_get_first_component(root, ICAL_ANY_COMPONENT);
	    c != NULL;
	    c = icalcomponent_get_next_component(root, ICAL_ANY_COMPONENT)) {
		icalcomponent_kind k = icalcomponent_isa(c);
		if (k != ICAL_VEVENT_COMPONENT && k != ICAL_VTODO_COMPONENT &&
		    k != ICAL_VJOURNAL_COMPONENT &&
		    k != ICAL_VFREEBUSY_COMPONENT)
			continue;
		if (ics_component(c, s, n == 0, err, errlen) != 0)
			goto out;
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "no VEVENT, VTODO, VJOURNAL or "
		    "VFREEBUSY");
		goto out;
	}
	if (s->method == NULL || s->uid == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = 0;
out:
	icalcomponent_free(root);
	if (ret != 0)
		ics_free(s);
	return ret;
}
