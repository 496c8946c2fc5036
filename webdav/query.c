/*
 * webdav/query.c: the CalDAV query engine. Parses CALDAV:filter into a
 * tree and evaluates it against one calendar object (RFC 4791 9.7, 9.9),
 * shapes CALDAV:calendar-data (9.6) and builds free-busy answers (7.10).
 * Recurrence expansion, time zones and the per-instance time-range rules
 * live in server/ical.c (ical_instances); this file decides what to ask.
 *
 * Choices the RFC leaves open:
 * - floating and all-day values are read as UTC (no calendar-timezone);
 * - a recurrence set calgate will not fully expand (work cap, or a rule
 *   libical cannot bound) matches any range ending after its first
 *   unexamined instance: answering too much is safer than too little;
 * - VALARM time-ranges use TRIGGER (absolute, or relative to the start or
 *   end of each instance of the parent) and at most 1000 REPEATs;
 * - RANGE=THISANDFUTURE overrides replace only their own instance;
 * - X- components are never matched by name; prop novalue is ignored;
 * - expand returns at most QUERY_MAX_OUT_INSTANCES instances per object.
 */
#include "webdav/query.h"

#include <ctype.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/ical.h"

/* Independent cursors: see FOREACH_COMP in server/ical.c. */
#define FOREACH_COMP(c, parent, kind)					\
	for (icalcompiter c##_it =					\
	    icalcomponent_begin_component(parent, kind);		\
	    ((c) = icalcompiter_deref(&c##_it)) != NULL;		\
	    icalcompiter_next(&c##_it))

#define QUERY_MAX_NODES		512	/* filter elements */
#define QUERY_MAX_DEPTH		8	/* nested comp-filters */
#define QUERY_MAX_TEXT		4096	/* text-match bytes */
#define QUERY_MAX_PERIODS	100000	/* free-busy periods */
#define QUERY_MAX_REPEAT	1000	/* VALARM REPEAT */

struct text_match {
	char *text;		/* owned */
	int octet;		/* i;octet, else i;ascii-casemap */
	int negate;
};

struct param_filter {
	char *name;		/* owned */
	int undefined;
	struct text_match *tm;
	struct param_filter *next;
};

struct prop_filter {
	char *name;		/* owned */
	int undefined;
	int has_range;
	int64_t start, end;
	struct text_match *tm;
	struct param_filter *params;
	struct prop_filter *next;
};

struct comp_filter {
	char *name;		/* owned */
	int undefined;
	int has_range;
	int64_t start, end;
	struct prop_filter *props;
	struct comp_filter *comps;
	struct comp_filter *next;
};

struct query {
	struct comp_filter *root;
	int nodes;
	int vtimezone;		/* the filter looks at VTIMEZONE */
};

/* ---- parsing --------------------------------------------------------- */

static int
is_c(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	    strcmp((const char *)n->ns->href, QUERY_NS) == 0 &&
	    (name == NULL || strcmp((const char *)n->name, name) == 0);
}

static char *
attr(const xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	char *s;

	if (v == NULL)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	return s;
}

int
query_parse_utc(const char *s, int64_t *out)
{
	int v[6], w[6] = { 4, 2, 2, 2, 2, 2 }, pos = 0;

	if (s == NULL || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return -1;
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		if (pos == 8)
			pos++;
		for (int j = 0; j < w[i]; j++, pos++) {
			if (!isdigit((unsigned char)s[pos]))
				return -1;
			v[i] = v[i] * 10 + (s[pos] - '0');
		}
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 ||
	    v[2] > icaltime_days_in_month(v[1], v[0]) || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	*out = ical_days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 +
	    v[4] * 60 + v[5];
	return 0;
}

/* RFC 4791 9.9: start and/or end, UTC, start before end. */
static int
parse_range(const xmlNode *n, int64_t *start, int64_t *end, char *err,
    size_t errlen)
{
	char *s = attr(n, "start"), *e = attr(n, "end");
	int ret = -1;

	*start = INT64_MIN;
	*end = INT64_MAX;
	if (s == NULL && e == NULL)
		snprintf(err, errlen, "%s needs start or end", n->name);
	else if (s && query_parse_utc(s, start))
		snprintf(err, errlen, "%s: bad start (want UTC "
		    "YYYYMMDDTHHMMSSZ)", n->name);
	else if (e && query_parse_utc(e, end))
		snprintf(err, errlen, "%s: bad end (want UTC "
		    "YYYYMMDDTHHMMSSZ)", n->name);
	else if (*start >= *end)
		snprintf(err, errlen, "%s: end is not after start", n->name);
	else
		ret = 0;
	free(s);
	free(e);
	return ret;
}

static void
text_match_free(struct text_match *t)
{
	if (t == NULL)
		return;
	free(t->text);
	free(t);
}

static struct text_match *
parse_text_match(const xmlNode *n, char *err, size_t errlen)
{
	struct text_match *t = calloc(1, sizeof *t);
	char *coll = attr(n, "collation"), *neg = attr(n, "negate-condition");
	xmlChar *content = xmlNodeGetContent(n);

	if (t == NULL)
		goto fail;
	if (coll && strcmp(coll, "i;octet") == 0)
		t->octet = 1;
	else if (coll && strcmp(coll, "i;ascii-casemap") != 0) {
		snprintf(err, errlen, "supported-collation: unknown "
		    "collation");
		goto fail;
	}
	if (neg && strcmp(neg, "yes") == 0)
		t->negate = 1;
	else if (neg && strcmp(neg, "no") != 0) {
		snprintf(err, errlen, "negate-condition must be yes or no");
		goto fail;
	}
	if (content && strlen((char *)content) > QUERY_MAX_TEXT) {
		snprintf(err, errlen, "text-match too long");
		goto fail;
	}
	t->text = strdup(content ? (char *)content : "");
	if (t->text == NULL)
		goto fail;
	free(coll);
	free(neg);
	xmlFree(content);
	return t;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "out of memory");
	free(coll);
	free(neg);
	xmlFree(content);
	text_match_free(t);
	return NULL;
}

static void
param_filter_free(struct param_filter *p)
{
	while (p) {
		struct param_filter *n = p->next;

		free(p->name);
		text_match_free(p->tm);
		free(p);
		p = n;
	}
}

static void
prop_filter_free(struct prop_filter *p)
{
	while (p) {
		struct prop_filter *n = p->next;

		free(p->name);
		text_match_free(p->tm);
		param_filter_free(p->params);
		free(p);
		p = n;
	}
}

static void
comp_filter_free(struct comp_filter *c)
{
	while (c) {
		struct comp_filter *n = c->next;

		free(c->name);
		prop_filter_free(c->props);
		comp_filter_free(c->comps);
		free(c);
		c = n;
	}
}

void
query_free(struct query *q)
{
	if (q == NULL)
		return;
	comp_filter_free(q->root);
	free(q);
}

static char *
need_name(const xmlNode *n, char *err, size_t errlen)
{
	char *name = attr(n, "name");

	if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
		snprintf(err, errlen, "%s without a valid name attribute",
		    n->name);
		free(name);
		return NULL;
	}
	return name;
}

static int
count_node(struct query *q, char *err, size_t errlen)
{
	if (++q->nodes > QUERY_MAX_NODES) {
		snprintf(err, errlen, "filter too large");
		return -1;
	}
	return 0;
}

static struct param_filter *
parse_param(struct query *q, const xmlNode *n, char *err, size_t errlen)
{
	struct param_filter *p = calloc(1, sizeof *p);

	if (p == NULL || count_node(q, err, errlen) ||
	    (p->name = need_name(n, err, errlen)) == NULL)
		goto fail;
	for (xmlNode *k = n->children; k; k = k->next) {
		if (is_c(k, "is-not-defined"))
			p->undefined = 1;
		else if (is_c(k, "text-match") && p->tm == NULL) {
			if ((p->tm = parse_text_match(k, err, errlen)) == NULL)
				goto fail;
		} else if (is_c(k, NULL)) {
			snprintf(err, errlen, "unexpected %s in param-filter",
			    k->name);
			goto fail;
		}
	}
	return p;
fail:
	param_filter_free(p);
	return NULL;
}

static struct prop_filter *
parse_prop(struct query *q, const xmlNode *n, char *err, size_t errlen)
{
	struct prop_filter *p = calloc(1, sizeof *p);
	struct param_filter **tail;

	if (p == NULL || count_node(q, err, errlen) ||
	    (p->name = need_name(n, err, errlen)) == NULL)
		goto fail;
	tail = &p->params;
	for (xmlNode *k = n->children; k; k = k->next) {
		if (is_c(k, "is-not-defined"))
			p->undefined = 1;
		else if (is_c(k, "time-range") && !p->has_range && !p->tm) {
			if (parse_range(k, &p->start, &p->end, err, errlen))
				goto fail;
			p->has_range = 1;
		} else if (is_c(k, "text-match") && !p->tm && !p->has_range) {
			if ((p->tm = parse_text_match(k, err, errlen)) == NULL)
				goto fail;
		} else if (is_c(k, "param-filter")) {
			if ((*tail = parse_param(q, k, err, errlen)) == NULL)
				goto fail;
			tail = &(*tail)->next;
		} else if (is_c(k, NULL)) {
			snprintf(err, errlen, "unexpected %s in prop-filter",
			    k->name);
			goto fail;
		}
	}
	return p;
fail:
	prop_filter_free(p);
	return NULL;
}

static struct comp_filter *
parse_comp(struct query *q, const xmlNode *n, int depth, char *err,
    size_t errlen)
{
	struct comp_filter *c = calloc(1, sizeof *c), **ctail;
	struct prop_filter **ptail;

	if (c == NULL || count_node(q, err, errlen) ||
	    (c->name = need_name(n, err, errlen)) == NULL)
		goto fail;
	if (depth > QUERY_MAX_DEPTH) {
		snprintf(err, errlen, "comp-filter nested too deep");
		goto fail;
	}
	if (strcasecmp(c->name, "VTIMEZONE") == 0)
		q->vtimezone = 1;
	ctail = &c->comps;
	ptail = &c->props;
	for (xmlNode *k = n->children; k; k = k->next) {
		if (is_c(k, "is-not-defined"))
			c->undefined = 1;
		else if (is_c(k, "time-range") && !c->has_range) {
			if (parse_range(k, &c->start, &c->end, err, errlen))
				goto fail;
			c->has_range = 1;
		} else if (is_c(k, "prop-filter")) {
			if ((*ptail = parse_prop(q, k, err, errlen)) == NULL)
				goto fail;
			ptail = &(*ptail)->next;
		} else if (is_c(k, "comp-filter")) {
			*ctail = parse_comp(q, k, depth + 1, err, errlen);
			if (*ctail == NULL)
				goto fail;
			ctail = &(*ctail)->next;
		} else if (is_c(k, NULL)) {
			snprintf(err, errlen, "unexpected %s in comp-filter",
			    k->name);
			goto fail;
		}
	}
	return c;
fail:
	comp_filter_free(c);
	return NULL;
}

struct query *
query_parse(xmlNode *filter, char *err, size_t errlen)
{
	struct query *q;
	xmlNode *top = NULL;

	err[0] = '\0';
	if (filter == NULL || !is_c(filter, "filter")) {
		snprintf(err, errlen, "expected CALDAV:filter");
		return NULL;
	}
	for (xmlNode *k = filter->children; k; k = k->next) {
		if (!is_c(k, NULL))
			continue;
		if (!is_c(k, "comp-filter") || top) {
			snprintf(err, errlen, "filter must hold exactly one "
			    "comp-filter");
			return NULL;
		}
		top = k;
	}
	if (top == NULL) {
		snprintf(err, errlen, "filter must hold exactly one "
		    "comp-filter");
		return NULL;
	}
	q = calloc(1, sizeof *q);
	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->root = parse_comp(q, top, 0, err, errlen);
	if (q->root && (strcasecmp(q->root->name, "VCALENDAR") != 0 ||
	    q->root->undefined)) {
		snprintf(err, errlen, "the top comp-filter must be VCALENDAR");
		query_free(q);
		return NULL;
	}
	if (q->root == NULL) {
		query_free(q);
		return NULL;
	}
	return q;
}

void
query_span(const struct query *q, int64_t *start, int64_t *end)
{
	*start = INT64_MIN;
	*end = INT64_MAX;
	if (q == NULL || q->root == NULL)
		return;
	/* comp-filters are ANDed: the intersection bounds every match */
	for (const struct comp_filter *c = q->root->comps; c; c = c->next) {
		if (!c->has_range || c->undefined)
			continue;
		if (c->start > *start)
			*start = c->start;
		if (c->end < *end)
			*end = c->end;
	}
}

/* ---- matching -------------------------------------------------------- */

/*
 * Cuts out VTIMEZONE blocks whose TZID names a zone the system zone data
 * has: server/ical.c reads such TZIDs from the system data anyway, and
 * parsing the block is about two thirds of libical's work on a typical
 * client-written event. Folded or parameterised TZID lines are left
 * alone.
 */
static void
strip_known_zones(char *text)
{
	static const char begin[] = "BEGIN:VTIMEZONE", end[] =
	    "END:VTIMEZONE";
	char *p = text, *e, *next, *t, tzid[128];
	size_t n;

	while ((p = strstr(p, begin)) != NULL) {
		if ((p != text && p[-1] != '\n') ||
		    (e = strstr(p, end)) == NULL)
			return;
		next = e + sizeof end - 1;
		next += strspn(next, "\r\n");
		t = strstr(p, "\nTZID:");
		if (t == NULL || t > e) {
			p = next;
			continue;
		}
		t += 6;
		n = strcspn(t, "\r\n");
		if (n == 0 || n >= sizeof tzid || t[n + strspn(t + n, "\r")
		    + 1] == ' ' || t[n + strspn(t + n, "\r") + 1] == '\t' ||
		    memchr(t, '.', n) || t[0] == '/') {
			p = next;
			continue;
		}
		memcpy(tzid, t, n);
		tzid[n] = '\0';
		if (icaltimezone_get_builtin_timezone(tzid) == NULL) {
			p = next;
			continue;
		}
		memmove(p, next, strlen(next) + 1);
	}
}

static icalcomponent *
parse_ics(const char *ics, size_t len, int strip_zones)
{
	icalcomponent *root;
	char *text;

	if (ics == NULL || len > ICAL_MAX_OBJECT || memchr(ics, '\0', len))
		return NULL;
	text = strndup(ics, len);
	if (text == NULL)
		return NULL;
	if (strip_zones)
		strip_known_zones(text);
	root = icalparser_parse_string(text);
	free(text);
	if (root && icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT) {
		icalcomponent_free(root);
		root = NULL;
	}
	return root;
}

static const char *
ascii_casestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return n == 0 ? hay : NULL;
}

static int
text_ok(const struct text_match *t, const char *s)
{
	int found;

	if (t->octet)
		found = strstr(s, t->text) != NULL;
	else
		found = ascii_casestr(s, t->text) != NULL;
	return t->negate ? !found : found;
}

/* The property's value as text, unescaped for TEXT; malloc'd. */
static char *
prop_text(icalproperty *p)
{
	icalvalue *v = icalproperty_get_value(p);
	char *r, *s;

	if (v && icalvalue_isa(v) == ICAL_TEXT_VALUE)
		return strdup(icalvalue_get_text(v) ? icalvalue_get_text(v) :
		    "");
	r = icalproperty_get_value_as_string_r(p);
	s = strdup(r ? r : "");
	icalmemory_free_buffer(r);
	return s;
}

/* A parameter's value (the text after NAME=, unquoted); malloc'd. */
static char *
param_text(icalparameter *pa)
{
	char *r = icalparameter_as_ical_string_r(pa), *eq, *s;
	size_t n;

	eq = r ? strchr(r, '=') : NULL;
	s = strdup(eq ? eq + 1 : "");
	icalmemory_free_buffer(r);
	if (s && (n = strlen(s)) >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
	return s;
}

static int
param_named(icalparameter *pa, const char *name)
{
	icalparameter_kind k = icalparameter_isa(pa);
	const char *n;

	if (k == ICAL_X_PARAMETER)
		n = icalparameter_get_xname(pa);
	else if (k == ICAL_IANA_PARAMETER)
		n = icalparameter_get_iana_name(pa);
	else
		n = icalparameter_kind_to_string(k);
	return n && strcasecmp(n, name) == 0;
}

static int
param_ok(const struct param_filter *f, icalproperty *p)
{
	int found = 0;

	for (icalparameter *pa = icalproperty_get_first_parameter(p,
	    ICAL_ANY_PARAMETER); pa; pa = icalproperty_get_next_parameter(p,
	    ICAL_ANY_PARAMETER)) {
		char *v;
		int ok;

		if (!param_named(pa, f->name))
			continue;
		found = 1;
		if (f->undefined || f->tm == NULL)
			break;
		if ((v = param_text(pa)) == NULL)
			return 0;
		ok = text_ok(f->tm, v);
		free(v);
		if (ok)
			return 1;
	}
	if (f->undefined)
		return !found;
	return found && f->tm == NULL;
}

static int
prop_named(icalproperty *p, const char *name)
{
	const char *n = icalproperty_isa(p) == ICAL_X_PROPERTY ?
	    icalproperty_get_x_name(p) : icalproperty_get_property_name(p);

	return n && strcasecmp(n, name) == 0;
}

/* RFC 4791 9.9, for DATE and DATE-TIME property values. */
static int
prop_in_range(icalcomponent *root, icalproperty *p, int64_t s, int64_t e)
{
	icalvalue *v = icalproperty_get_value(p);
	int is_date;
	int64_t t;

	if (v == NULL || (icalvalue_isa(v) != ICAL_DATETIME_VALUE &&
	    icalvalue_isa(v) != ICAL_DATE_VALUE))
		return 0;
	t = ical_prop_utc(root, p, &is_date);
	if (is_date)
		return s < t + 86400 && e > t;
	return s <= t && e > t;
}

static int
prop_ok(icalcomponent *root, const struct prop_filter *f,
    icalcomponent *c)
{
	int found = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_ANY_PROPERTY); p; p = icalcomponent_get_next_property(c,
	    ICAL_ANY_PROPERTY)) {
		const struct param_filter *pf;
		int ok = 1;

		if (!prop_named(p, f->name))
			continue;
		found = 1;
		if (f->undefined)
			break;
		if (f->has_range && !prop_in_range(root, p, f->start, f->end))
			continue;
		if (f->tm) {
			char *v = prop_text(p);

			ok = v && text_ok(f->tm, v);
			free(v);
		}
		for (pf = f->params; ok && pf; pf = pf->next)
			ok = param_ok(pf, p);
		if (ok)
			return 1;
	}
	return f->undefined ? !found : 0;
}

struct range_arg {
	int64_t start, end;
	icalproperty *trigger;	/* VALARM: evaluate this TRIGGER */
	int64_t offset, interval;
	int repeat, related_end;
	int hit;
};

static int
instance_hit(void *arg, const struct ical_instance *in)
{
	struct range_arg *r = arg;

	if (ical_instance_overlaps(in, r->start, r->end)) {
		r->hit = 1;
		return 1;
	}
	return 0;
}

static int
alarm_hit(void *arg, const struct ical_instance *in)
{
	struct range_arg *r = arg;
	int64_t base = in->start;

	if (r->related_end && in->end_kind != ICAL_END_NONE)
		base = in->end;
	for (int k = 0; k <= r->repeat; k++) {
		int64_t t = base + r->offset + k * r->interval;

		if (r->start <= t && r->end > t) {
			r->hit = 1;
			return 1;
		}
	}
	return 0;
}

static int
instances_hit(icalcomponent *root, icalcomponent *c, struct range_arg *r,
    ical_instance_fn fn, int64_t widen)
{
	int64_t lower, s = r->start, e = r->end;
	int ret;

	if (s != INT64_MIN)
		s = s - widen;
	if (e != INT64_MAX)
		e = e + widen;
	ret = ical_instances(root, c, s, e, fn, r, &lower);
	if (ret == ICAL_EXP_UNBOUNDED && lower < e)
		return 1;	/* conservative: see the top of the file */
	return r->hit;
}

/* VALARM (RFC 4791 9.9): any trigger time inside the range. */
static int
alarm_in_range(icalcomponent *root, icalcomponent *alarm, int64_t s,
    int64_t e)
{
	icalcomponent *parent = icalcomponent_get_parent(alarm);
	icalproperty *tp, *rp, *dp;
	struct icaltriggertype tr;
	icalparameter *rel;
	struct range_arg r;
	int64_t span;

	tp = icalcomponent_get_first_property(alarm, ICAL_TRIGGER_PROPERTY);
	if (tp == NULL || parent == NULL)
		return 0;
	memset(&r, 0, sizeof r);
	r.start = s;
	r.end = e;
	tr = icalproperty_get_trigger(tp);
	rp = icalcomponent_get_first_property(alarm, ICAL_REPEAT_PROPERTY);
	dp = icalcomponent_get_first_property(alarm, ICAL_DURATION_PROPERTY);
	if (rp && dp) {
		r.repeat = icalproperty_get_repeat(rp);
		if (r.repeat < 0 || r.repeat > QUERY_MAX_REPEAT)
			r.repeat = r.repeat < 0 ? 0 : QUERY_MAX_REPEAT;
		r.interval = icaldurationtype_as_int(
		    icalproperty_get_duration(dp));
	}
	if (!icaltime_is_null_time(tr.time)) {
		struct ical_instance in;

		memset(&in, 0, sizeof in);
		in.start = ical_prop_utc(root, tp, NULL);
		alarm_hit(&r, &in);
		return r.hit;
	}
	r.offset = icaldurationtype_as_int(tr.duration);
	rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
	r.related_end = rel &&
	    icalparameter_get_related(rel) == ICAL_RELATED_END;
	span = (r.offset < 0 ? -r.offset : r.offset) +
	    (int64_t)r.repeat * (r.interval < 0 ? -r.interval : r.interval);
	return instances_hit(root, parent, &r, alarm_hit, span);
}

/* VFREEBUSY (RFC 4791 9.9). */
static int
freebusy_in_range(icalcomponent *root, icalcomponent *c, int64_t s,
    int64_t e)
{
	icalproperty *ps, *pe, *p;

	ps = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);
	pe = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY);
	if (ps && pe)
		return s <= ical_prop_utc(root, pe, NULL) &&
		    e > ical_prop_utc(root, ps, NULL);
	for (p = icalcomponent_get_first_property(c, ICAL_FREEBUSY_PROPERTY);
	    p; p = icalcomponent_get_next_property(c,
	    ICAL_FREEBUSY_PROPERTY)) {
		struct icalperiodtype pd = icalproperty_get_freebusy(p);
		int64_t a = (int64_t)icaltime_as_timet(pd.start), b;

		b = icaltime_is_null_time(pd.end) ? a +
		    icaldurationtype_as_int(pd.duration) :
		    (int64_t)icaltime_as_timet(pd.end);
		if (s < b && e > a)
			return 1;
	}
	return 0;
}

static int
comp_in_range(icalcomponent *root, const struct comp_filter *f,
    icalcomponent *c)
{
	struct range_arg r;

	switch (icalcomponent_isa(c)) {
	case ICAL_VEVENT_COMPONENT:
	case ICAL_VTODO_COMPONENT:
	case ICAL_VJOURNAL_COMPONENT:
		memset(&r, 0, sizeof r);
		r.start = f->start;
		r.end = f->end;
		return instances_hit(root, c, &r, instance_hit, 0);
	case ICAL_VFREEBUSY_COMPONENT:
		return freebusy_in_range(root, c, f->start, f->end);
	case ICAL_VALARM_COMPONENT:
		return alarm_in_range(root, c, f->start, f->end);
	default:
		return 0;
	}
}

static int comp_ok(icalcomponent *, const struct comp_filter *,
    icalcomponent *);

static int
comp_named(icalcomponent *c, const char *name)
{
	icalcomponent_kind k = icalcomponent_isa(c);

	return k != ICAL_X_COMPONENT &&
	    strcasecmp(icalcomponent_kind_to_string(k), name) == 0;
}

static int
sub_ok(icalcomponent *root, const struct comp_filter *f,
    icalcomponent *parent)
{
	icalcomponent *k;
	int found = 0;

	FOREACH_COMP(k, parent, ICAL_ANY_COMPONENT) {
		if (!comp_named(k, f->name))
			continue;
		found = 1;
		if (f->undefined)
			break;
		if (comp_ok(root, f, k))
			return 1;
	}
	return f->undefined ? !found : 0;
}

static int
comp_ok(icalcomponent *root, const struct comp_filter *f, icalcomponent *c)
{
	/*
	 * Each component of a recurrence set is tested on its own: the
	 * master with its instances minus the overridden ones, each
	 * override with its own properties and time.
	 */
	if (f->has_range && c != root && !comp_in_range(root, f, c))
		return 0;
	for (const struct prop_filter *p = f->props; p; p = p->next)
		if (!prop_ok(root, p, c))
			return 0;
	for (const struct comp_filter *k = f->comps; k; k = k->next)
		if (!sub_ok(root, k, c))
			return 0;
	return 1;
}

int
query_match_digest(const struct query *q, const char *component,
    const void *digest, size_t len)
{
	const struct comp_filter *r, *c;

	if (q == NULL || (r = q->root) == NULL || digest == NULL ||
	    component == NULL || strcmp(component, "VEVENT") != 0)
		return -1;
	/* Only the plainest shape: VCALENDAR > VEVENT > time-range. */
	c = r->comps;
	if (r->undefined || r->has_range || r->props || c == NULL ||
	    c->next || c->undefined || !c->has_range || c->props ||
	    c->comps || strcasecmp(c->name, "VEVENT") != 0)
		return -1;
	return ical_digest_match(digest, len, c->start, c->end);
}

int
query_match(const struct query *q, const char *ics, size_t len)
{
	icalcomponent *root;
	int ok;

	if (q == NULL || q->root == NULL)
		return 0;
	root = parse_ics(ics, len, !q->vtimezone);
	if (root == NULL)
		return 0;
	ok = comp_ok(root, q->root, root);
	icalcomponent_free(root);
	return ok;
}

/* ---- calendar-data (RFC 4791 9.6) ------------------------------------ */

#define QUERY_MAX_OUT_INSTANCES	3000	/* per object: bounds memory */

struct cdata {
	const xmlNode *comp;		/* <C:comp name="VCALENDAR"> */
	int expand, limit_rset, limit_fb;
	int64_t es, ee, rs, re, fs, fe;
};

static int
parse_cdata(const xmlNode *elem, struct cdata *cd, char *err, size_t errlen)
{
	char *ct = attr(elem, "content-type"), *ver = attr(elem, "version");
	int ret = -1;

	memset(cd, 0, sizeof *cd);
	if ((ct && strcasecmp(ct, "text/calendar") != 0) ||
	    (ver && strcmp(ver, "2.0") != 0)) {
		snprintf(err, errlen, "supported-calendar-data: only "
		    "text/calendar 2.0");
		goto out;
	}
	for (const xmlNode *k = elem->children; k; k = k->next) {
		if (is_c(k, "comp") && cd->comp == NULL) {
			char *n = attr(k, "name");

			if (n == NULL || strcasecmp(n, "VCALENDAR") != 0) {
				snprintf(err, errlen, "calendar-data: the "
				    "top comp must be VCALENDAR");
				free(n);
				goto out;
			}
			free(n);
			cd->comp = k;
		} else if (is_c(k, "expand") && !cd->expand) {
			if (parse_range(k, &cd->es, &cd->ee, err, errlen))
				goto out;
			cd->expand = 1;
		} else if (is_c(k, "limit-recurrence-set") &&
		    !cd->limit_rset) {
			if (parse_range(k, &cd->rs, &cd->re, err, errlen))
				goto out;
			cd->limit_rset = 1;
		} else if (is_c(k, "limit-freebusy-set") && !cd->limit_fb) {
			if (parse_range(k, &cd->fs, &cd->fe, err, errlen))
				goto out;
			cd->limit_fb = 1;
		} else if (is_c(k, NULL)) {
			snprintf(err, errlen, "unexpected %s in calendar-data",
			    k->name);
			goto out;
		}
	}
	if (cd->expand && cd->limit_rset) {
		snprintf(err, errlen, "expand and limit-recurrence-set "
		    "together");
		goto out;
	}
	ret = 0;
out:
	free(ct);
	free(ver);
	return ret;
}

static struct icaltimetype
utc_tt(int64_t t, int is_date)
{
	if (is_date)
		return icaltime_from_timet_with_zone((time_t)t, 1, NULL);
	return icaltime_from_timet_with_zone((time_t)t, 0,
	    icaltimezone_get_utc_timezone());
}

/* Replaces a DATE/DATE-TIME property's value with t in UTC (or DATE). */
static void
set_utc(icalcomponent *c, icalproperty_kind kind, int64_t t, int is_date)
{
	icalproperty *p = icalcomponent_get_first_property(c, kind);
	icalvalue *v;

	if (p == NULL) {
		p = icalproperty_new(kind);
		if (p == NULL)
			return;
		icalcomponent_add_property(c, p);
	}
	icalproperty_remove_parameter_by_kind(p, ICAL_TZID_PARAMETER);
	icalproperty_remove_parameter_by_kind(p, ICAL_VALUE_PARAMETER);
	icalproperty_remove_parameter_by_kind(p, ICAL_RANGE_PARAMETER);
	v = is_date ? icalvalue_new_date(utc_tt(t, 1)) :
	    icalvalue_new_datetime(utc_tt(t, 0));
	if (v)
		icalproperty_set_value(p, v);
	if (is_date)
		icalproperty_add_parameter(p,
		    icalparameter_new_value(ICAL_VALUE_DATE));
}

static void
remove_props(icalcomponent *c, icalproperty_kind kind)
{
	icalproperty *p;

	while ((p = icalcomponent_get_first_property(c, kind)) != NULL) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
}

struct expand_arg {
	icalcomponent *root, *out;
	int64_t start, end;
	int count;
};

/* RFC 4791 9.6.5: one component per instance, all times in UTC. */
static int
expand_one(void *arg, const struct ical_instance *in)
{
	struct expand_arg *a = arg;
	icalcomponent *c;
	icalproperty *p;
	int is_date = in->is_date;

	if (!ical_instance_overlaps(in, a->start, a->end))
		return 0;
	if (++a->count > QUERY_MAX_OUT_INSTANCES)
		return 1;
	c = icalcomponent_new_clone(in->comp);
	if (c == NULL)
		return 1;
	remove_props(c, ICAL_RRULE_PROPERTY);
	remove_props(c, ICAL_RDATE_PROPERTY);
	remove_props(c, ICAL_EXDATE_PROPERTY);
	if (in->has_start)
		set_utc(c, ICAL_DTSTART_PROPERTY, in->start, is_date);
	if (in->end_kind == ICAL_END_DTEND) {
		icalproperty_kind k = icalcomponent_isa(c) ==
		    ICAL_VTODO_COMPONENT ? ICAL_DUE_PROPERTY :
		    ICAL_DTEND_PROPERTY;

		if (icalcomponent_get_first_property(c, k) ||
		    icalcomponent_get_first_property(c, ICAL_RDATE_PROPERTY))
			set_utc(c, k, in->end, is_date);
	}
	p = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
	if (in->recurring)
		set_utc(c, ICAL_RECURRENCEID_PROPERTY, in->rid, is_date);
	else if (p) {
		icalcomponent_remove_property(c, p);
		icalproperty_free(p);
	}
	icalcomponent_add_component(a->out, c);
	return 0;
}

static icalcomponent *
expand_calendar(icalcomponent *root, int64_t s, int64_t e)
{
	struct expand_arg a = { root, NULL, s, e, 0 };
	icalcomponent *c;

	a.out = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
	if (a.out == NULL)
		return NULL;
	for (icalproperty *p = icalcomponent_get_first_property(root,
	    ICAL_ANY_PROPERTY); p; p = icalcomponent_get_next_property(root,
	    ICAL_ANY_PROPERTY))
		icalcomponent_add_property(a.out, icalproperty_new_clone(p));
	FOREACH_COMP(c, root, ICAL_ANY_COMPONENT) {
		switch (icalcomponent_isa(c)) {
		case ICAL_VTIMEZONE_COMPONENT:
			break;	/* every time is UTC now */
		case ICAL_VEVENT_COMPONENT:
		case ICAL_VTODO_COMPONENT:
		case ICAL_VJOURNAL_COMPONENT:
			ical_instances(root, c, s, e, expand_one, &a, NULL);
			break;
		default:
			icalcomponent_add_component(a.out,
			    icalcomponent_new_clone(c));
		}
	}
	return a.out;
}

static int
first_hit(void *arg, const struct ical_instance *in)
{
	struct range_arg *r = arg;

	if (ical_instance_overlaps(in, r->start, r->end))
		r->hit = 1;
	return r->hit;
}

/*
 * RFC 4791 9.6.6: keep the master and the overrides that affect an
 * instance in the range (moved into it, or replacing one that was).
 */
static void
limit_recurrence_set(icalcomponent *root, int64_t s, int64_t e)
{
	icalcomponent *c, *drop[256];
	size_t n = 0;

	do {
		n = 0;
		FOREACH_COMP(c, root, ICAL_ANY_COMPONENT) {
			icalproperty *rid = icalcomponent_get_first_property(
			    c, ICAL_RECURRENCEID_PROPERTY);
			struct range_arg r;
			int64_t t;

			if (rid == NULL || n == 256)
				continue;
			memset(&r, 0, sizeof r);
			r.start = s;
			r.end = e;
			t = ical_prop_utc(root, rid, NULL);
			if (t >= s && t < e)
				continue;
			ical_instances(root, c, s, e, first_hit, &r, NULL);
			if (!r.hit)
				drop[n++] = c;
		}
		for (size_t i = 0; i < n; i++) {
			icalcomponent_remove_component(root, drop[i]);
			icalcomponent_free(drop[i]);
		}
	} while (n == 256);
}

/* RFC 4791 9.6.7: only FREEBUSY periods that overlap the range. */
static void
limit_freebusy_set(icalcomponent *root, int64_t s, int64_t e)
{
	icalcomponent *c;

	FOREACH_COMP(c, root, ICAL_VFREEBUSY_COMPONENT) {
		icalproperty *p, *next;

		for (p = icalcomponent_get_first_property(c,
		    ICAL_FREEBUSY_PROPERTY); p; p = next) {
			struct icalperiodtype pd = icalproperty_get_freebusy(p);
			int64_t a = (int64_t)icaltime_as_timet(pd.start), b;

			next = icalcomponent_get_next_property(c,
			    ICAL_FREEBUSY_PROPERTY);
			b = icaltime_is_null_time(pd.end) ? a +
			    icaldurationtype_as_int(pd.duration) :
			    (int64_t)icaltime_as_timet(pd.end);
			if (!(s < b && e > a)) {
				icalcomponent_remove_property(c, p);
				icalproperty_free(p);
			}
		}
	}
}

static const xmlNode *
spec_child(const xmlNode *spec, const char *elem, const char *name)
{
	for (const xmlNode *k = spec->children; k; k = k->next) {
		xmlChar *n;
		int hit;

		if (!is_c(k, elem))
			continue;
		n = xmlGetNoNsProp(k, (const xmlChar *)"name");
		hit = n && strcasecmp((const char *)n, name) == 0;
		xmlFree(n);
		if (hit)
			return k;
	}
	return NULL;
}

static int
spec_has(const xmlNode *spec, const char *elem)
{
	for (const xmlNode *k = spec->children; k; k = k->next)
		if (is_c(k, elem))
			return 1;
	return 0;
}

/*
 * RFC 4791 9.6.1-9.6.4: keep only the named properties and components.
 * An empty <C:comp> keeps everything (the RFC 7.8.1 example returns its
 * VTIMEZONE whole).
 */
static void
select_parts(icalcomponent *c, const xmlNode *spec, int depth)
{
	int allprop = spec_has(spec, "allprop"), allcomp =
	    spec_has(spec, "allcomp");
	icalproperty *p, *pnext;
	icalcomponent *k, *drop[64];
	size_t n;

	if (!spec_has(spec, "prop") && !allprop && !spec_has(spec, "comp") &&
	    !allcomp)
		return;
	if (!allprop)
		for (p = icalcomponent_get_first_property(c,
		    ICAL_ANY_PROPERTY); p; p = pnext) {
			const char *name = icalproperty_isa(p) ==
			    ICAL_X_PROPERTY ? icalproperty_get_x_name(p) :
			    icalproperty_get_property_name(p);

			pnext = icalcomponent_get_next_property(c,
			    ICAL_ANY_PROPERTY);
			if (name && spec_child(spec, "prop", name))
				continue;
			icalcomponent_remove_property(c, p);
			icalproperty_free(p);
		}
	if (allcomp)
		return;
	do {
		n = 0;
		FOREACH_COMP(k, c, ICAL_ANY_COMPONENT) {
			const xmlNode *sub = NULL;

			if (icalcomponent_isa(k) != ICAL_X_COMPONENT)
				sub = spec_child(spec, "comp",
				    icalcomponent_kind_to_string(
				    icalcomponent_isa(k)));
			if (sub && depth < QUERY_MAX_DEPTH)
				select_parts(k, sub, depth + 1);
			else if (n < 64)
				drop[n++] = k;
		}
		for (size_t i = 0; i < n; i++) {
			icalcomponent_remove_component(c, drop[i]);
			icalcomponent_free(drop[i]);
		}
	} while (n == 64);
}

static char *
dup_out(const char *s, size_t len, size_t *outlen)
{
	char *r = malloc(len + 1);

	if (r == NULL)
		return NULL;
	memcpy(r, s, len);
	r[len] = '\0';
	if (outlen)
		*outlen = len;
	return r;
}

char *
query_calendar_data(xmlNode *elem, const char *ics, size_t len,
    size_t *outlen, char *err, size_t errlen)
{
	struct cdata cd;
	icalcomponent *root = NULL, *x;
	char *text = NULL, *ret = NULL;

	err[0] = '\0';
	if (elem == NULL)
		return dup_out(ics, len, outlen);
	if (parse_cdata(elem, &cd, err, errlen))
		return NULL;
	if (!cd.comp && !cd.expand && !cd.limit_rset && !cd.limit_fb)
		return dup_out(ics, len, outlen);
	if ((root = parse_ics(ics, len, 0)) == NULL) {
		snprintf(err, errlen, "stored object is not iCalendar");
		return NULL;
	}
	if (cd.expand) {
		if ((x = expand_calendar(root, cd.es, cd.ee)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		icalcomponent_free(root);
		root = x;
	} else if (cd.limit_rset)
		limit_recurrence_set(root, cd.rs, cd.re);
	if (cd.limit_fb)
		limit_freebusy_set(root, cd.fs, cd.fe);
	if (cd.comp)
		select_parts(root, cd.comp, 0);
	text = icalcomponent_as_ical_string_r(root);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret = dup_out(text, strlen(text), outlen);
	if (ret == NULL)
		snprintf(err, errlen, "out of memory");
out:
	icalmemory_free_buffer(text);
	icalcomponent_free(root);
	return ret;
}

/* ---- free-busy (RFC 4791 7.10) --------------------------------------- */

enum { FB_BUSY, FB_TENTATIVE, FB_UNAVAILABLE, FB_NTYPES };
static const char *const fb_names[FB_NTYPES] = {
	"BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"
};

struct fb_period {
	int64_t start, end;
	int type;
};

struct freebusy {
	int64_t start, end;
	struct fb_period *v;		/* owned */
	size_t n, cap;
};

struct freebusy *
freebusy_new(int64_t start, int64_t end)
{
	struct freebusy *fb = calloc(1, sizeof *fb);

	if (fb == NULL)
		return NULL;
	fb->start = start;
	fb->end = end;
	return fb;
}

void
freebusy_free(struct freebusy *fb)
{
	if (fb == NULL)
		return;
	free(fb->v);
	free(fb);
}

static int
cmp_period(const void *a, const void *b)
{
	const struct fb_period *x = a, *y = b;

	if (x->type != y->type)
		return x->type - y->type;
	return (x->start > y->start) - (x->start < y->start);
}

/* Sorts and merges overlapping or touching periods of the same type. */
static void
coalesce(struct freebusy *fb)
{
	size_t w = 0;

	if (fb->n == 0)
		return;
	qsort(fb->v, fb->n, sizeof *fb->v, cmp_period);
	for (size_t i = 1; i < fb->n; i++) {
		struct fb_period *cur = &fb->v[w], *p = &fb->v[i];

		if (p->type == cur->type && p->start <= cur->end) {
			if (p->end > cur->end)
				cur->end = p->end;
		} else
			fb->v[++w] = *p;
	}
	fb->n = w + 1;
}

static void
fb_add(struct freebusy *fb, int64_t s, int64_t e, int type)
{
	if (s < fb->start)
		s = fb->start;
	if (e > fb->end)
		e = fb->end;
	if (e <= s)
		return;
	if (fb->n == fb->cap) {
		size_t nc = fb->cap ? fb->cap * 2 : 64;
		struct fb_period *nv;

		if (fb->n >= QUERY_MAX_PERIODS) {
			coalesce(fb);
			if (fb->n >= QUERY_MAX_PERIODS)
				return;
		}
		if (fb->n < fb->cap)
			goto add;
		nv = realloc(fb->v, nc * sizeof *nv);
		if (nv == NULL)
			return;
		fb->v = nv;
		fb->cap = nc;
	}
add:
	fb->v[fb->n].start = s;
	fb->v[fb->n].end = e;
	fb->v[fb->n].type = type;
	fb->n++;
}

struct fb_arg {
	struct freebusy *fb;
	int type;
};

static int
fb_instance(void *arg, const struct ical_instance *in)
{
	struct fb_arg *a = arg;

	/* zero-length events block no time */
	if (in->has_start && in->end_kind != ICAL_END_NONE &&
	    in->end > in->start &&
	    ical_instance_overlaps(in, a->fb->start, a->fb->end))
		fb_add(a->fb, in->start, in->end, a->type);
	return 0;
}

static void
fb_event(struct freebusy *fb, icalcomponent *root, icalcomponent *c)
{
	icalproperty *p;
	struct fb_arg a = { fb, FB_BUSY };

	p = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);
	if (p && icalproperty_get_transp(p) == ICAL_TRANSP_TRANSPARENT)
		return;
	p = icalcomponent_get_first_property(c, ICAL_STATUS_PROPERTY);
	if (p && icalproperty_get_status(p) == ICAL_STATUS_CANCELLED)
		return;
	if (p && icalproperty_get_status(p) == ICAL_STATUS_TENTATIVE)
		a.type = FB_TENTATIVE;
	ical_instances(root, c, fb->start, fb->end, fb_instance, &a, NULL);
}

static void
fb_vfreebusy(struct freebusy *fb, icalcomponent *c)
{
	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_FREEBUSY_PROPERTY); p; p = icalcomponent_get_next_property(c,
	    ICAL_FREEBUSY_PROPERTY)) {
		icalparameter *t = icalproperty_get_first_parameter(p,
		    ICAL_FBTYPE_PARAMETER);
		struct icalperiodtype pd = icalproperty_get_freebusy(p);
		int type = FB_BUSY;
		int64_t a, b;

		if (t && icalparameter_get_fbtype(t) == ICAL_FBTYPE_FREE)
			continue;
		if (t && icalparameter_get_fbtype(t) ==
		    ICAL_FBTYPE_BUSYTENTATIVE)
			type = FB_TENTATIVE;
		if (t && icalparameter_get_fbtype(t) ==
		    ICAL_FBTYPE_BUSYUNAVAILABLE)
			type = FB_UNAVAILABLE;
		if (icaltime_is_null_time(pd.start))
			continue;
		a = (int64_t)icaltime_as_timet(pd.start);
		b = icaltime_is_null_time(pd.end) ? a +
		    icaldurationtype_as_int(pd.duration) :
		    (int64_t)icaltime_as_timet(pd.end);
		fb_add(fb, a, b, type);
	}
}

int
freebusy_add(struct freebusy *fb, const char *ics, size_t len)
{
	icalcomponent *root, *c;

	if (fb == NULL || (root = parse_ics(ics, len, 1)) == NULL)
		return -1;
	FOREACH_COMP(c, root, ICAL_ANY_COMPONENT) {
		if (icalcomponent_isa(c) == ICAL_VEVENT_COMPONENT)
			fb_event(fb, root, c);
		else if (icalcomponent_isa(c) == ICAL_VFREEBUSY_COMPONENT)
			fb_vfreebusy(fb, c);
	}
	icalcomponent_free(root);
	return 0;
}

static void
fmt_utc(int64_t t, char buf[64])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	snprintf(buf, 64, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *
freebusy_finish(struct freebusy *fb, size_t *len)
{
	char a[64], b[64], now[64], *out = NULL;
	size_t size = 0;
	FILE *f;

	if (fb == NULL)
		return NULL;
	coalesce(fb);
	f = open_memstream(&out, &size);
	if (f == NULL)
		goto out;
	fmt_utc(time(NULL), now);
	fmt_utc(fb->start, a);
	fmt_utc(fb->end, b);
	fprintf(f, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "PRODID:-//calgate//CalDAV free-busy//EN\r\n"
	    "BEGIN:VFREEBUSY\r\nDTSTAMP:%s\r\nDTSTART:%s\r\nDTEND:%s\r\n",
	    now, a, b);
	/* one period per line keeps every line under the 75-octet fold */
	for (size_t i = 0; i < fb->n; i++) {
		fmt_utc(fb->v[i].start, a);
		fmt_utc(fb->v[i].end, b);
		fprintf(f, "FREEBUSY;FBTYPE=%s:%s/%s\r\n",
		    fb_names[fb->v[i].type], a, b);
	}
	fprintf(f, "END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
	if (fclose(f) != 0) {
		free(out);
		out = NULL;
		goto out;
	}
	if (len)
		*len = size;
out:
	freebusy_free(fb);
	return out;
}
