/*
 * server/ical.c: validation and indexing of calendar object resources.
 * The time span is deliberately conservative: a recurring object without
 * a computed end is indexed as unbounded, so a time-range prefilter never
 * drops an object that a full evaluation would match.
 */
#include "server/ical.h"

#include <ctype.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
ical_object_clear(struct ical_object *o)
{
	if (o == NULL)
		return;
	free(o->uid);
	free(o->organizer);
	memset(o, 0, sizeof *o);
}

static int
fail(struct ical_object *o, const char *pre, char *err, size_t errlen,
    const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	free(o->uid);
	free(o->organizer);
	o->uid = o->organizer = NULL;
	o->precondition = pre;
	return -1;
}

/* Any X-LIC-ERROR libical inserted means the text was not valid. */
static int
has_parse_error(icalcomponent *c)
{
	if (icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY))
		return 1;
	for (icalcomponent *k = icalcomponent_get_first_component(c,
	    ICAL_ANY_COMPONENT); k; k = icalcomponent_get_next_component(c,
	    ICAL_ANY_COMPONENT))
		if (has_parse_error(k))
			return 1;
	return 0;
}

static char *
lower_mailto(const char *v)
{
	char *s = strdup(v);

	if (s == NULL)
		return NULL;
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

int
ical_object_check(const char *data, size_t len, struct ical_object *out,
    char *err, size_t errlen)
{
	icalcomponent *root = NULL, *c;
	icalcomponent_kind kind = ICAL_NO_COMPONENT;
	int masters = 0, ret = -1;
	char *text;

	memset(out, 0, sizeof *out);
	out->start = INT64_MIN;
	out->end = INT64_MAX;
	if (len > ICAL_MAX_OBJECT)
		return fail(out, "max-resource-size", err, errlen,
		    "calendar object too large");
	if (memchr(data, '\0', len))
		return fail(out, "valid-calendar-data", err, errlen,
		    "NUL byte in calendar data");
	text = strndup(data, len);
	if (text == NULL)
		return fail(out, "valid-calendar-data", err, errlen,
		    "out of memory");
	root = icalparser_parse_string(text);
	free(text);
	if (root == NULL || icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT
	    || has_parse_error(root)) {
		ret = fail(out, "valid-calendar-data", err, errlen,
		    "not a valid iCalendar object (RFC 5545)");
		goto out;
	}
	if (icalcomponent_get_first_property(root, ICAL_METHOD_PROPERTY)) {
		ret = fail(out, "valid-calendar-object-resource", err, errlen,
		    "METHOD is not allowed in a calendar object resource");
		goto out;
	}
	for (c = icalcomponent_get_first_component(root, ICAL_ANY_COMPONENT);
	    c; c = icalcomponent_get_next_component(root, ICAL_ANY_COMPONENT)) {
		icalcomponent_kind k = icalcomponent_isa(c);
		const char *uid;

		if (k == ICAL_VTIMEZONE_COMPONENT)
			continue;
		if (k != ICAL_VEVENT_COMPONENT && k != ICAL_VTODO_COMPONENT &&
		    k != ICAL_VJOURNAL_COMPONENT &&
		    k != ICAL_VFREEBUSY_COMPONENT) {
			ret = fail(out, "supported-calendar-component", err,
			    errlen, "unsupported component");
			goto out;
		}
		if (kind != ICAL_NO_COMPONENT && k != kind) {
			ret = fail(out, "valid-calendar-object-resource", err,
			    errlen, "components of more than one type");
			goto out;
		}
		kind = k;
		uid = icalcomponent_get_uid(c);
		if (uid == NULL || *uid == '\0') {
			ret = fail(out, "valid-calendar-object-resource", err,
			    errlen, "a component without UID");
			goto out;
		}
		if (out->uid == NULL)
			out->uid = strdup(uid);
		else if (strcmp(out->uid, uid) != 0) {
			ret = fail(out, "valid-calendar-object-resource", err,
			    errlen, "more than one UID in one resource");
			goto out;
		}
		if (icalcomponent_get_first_property(c,
		    ICAL_RECURRENCEID_PROPERTY) == NULL && ++masters > 1) {
			ret = fail(out, "valid-calendar-object-resource", err,
			    errlen, "two components with the same UID and no "
			    "RECURRENCE-ID");
			goto out;
		}
		if (out->organizer == NULL) {
			icalproperty *p = icalcomponent_get_first_property(c,
			    ICAL_ORGANIZER_PROPERTY);

			if (p && icalproperty_get_organizer(p))
				out->organizer = lower_mailto(
				    icalproperty_get_organizer(p));
		}
	}
	if (kind == ICAL_NO_COMPONENT) {
		ret = fail(out, "valid-calendar-object-resource", err, errlen,
		    "no VEVENT, VTODO or VJOURNAL");
		goto out;
	}
	snprintf(out->component, sizeof out->component, "%s",
	    icalcomponent_kind_to_string(kind));
	ret = 0;
out:
	if (root)
		icalcomponent_free(root);
	return ret;
}

void
ical_object_meta(const struct ical_object *o, struct store_object_meta *m)
{
	memset(m, 0, sizeof *m);
	m->uid = o->uid;
	m->component = o->component;
	m->start = o->start;
	m->end = o->end;
	m->organizer = o->organizer;
	m->scheduling = o->organizer != NULL;
}
