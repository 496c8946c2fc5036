/*
 * server/ical.c: validation and indexing of calendar object resources,
 * and the recurrence engine (ical_instances) that webdav/query.c builds
 * time-range filters, expand and free-busy on. The time span is
 * deliberately conservative: a recurring object without a computed end
 * is indexed as unbounded, so a time-range prefilter never drops an
 * object that a full evaluation would match. Floating and DATE values
 * are read as UTC and the indexed span is widened by a day for them.
 * TZIDs resolve to the system zone data first, then to the object's own
 * VTIMEZONE; an unknown TZID is read as floating.
 */
#include "server/ical.h"

#include <ctype.h>
#include <pthread.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * libical's get_first/get_next share one cursor per component; the
 * recurrence code walks the VCALENDAR while its callers do too, so every
 * walk here uses its own icalcompiter.
 */
#define FOREACH_COMP(c, parent, kind)					\
	for (icalcompiter c##_it =					\
	    icalcomponent_begin_component(parent, kind);		\
	    ((c) = icalcompiter_deref(&c##_it)) != NULL;		\
	    icalcompiter_next(&c##_it))

void
ical_object_clear(struct ical_object *o)
{
	if (o == NULL)
		return;
	free(o->uid);
	free(o->organizer);
	free(o->instances);
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

const char *
ical_parse_error(icalcomponent *c)
{
	icalproperty *p, *next;
	const char *e;

	for (p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
	    p; p = next) {
		next = icalcomponent_get_next_property(c,
		    ICAL_XLICERROR_PROPERTY);
		e = icalproperty_get_xlicerror(p);
		if (e && strncmp(e, "No value for ", 13) == 0) {
			icalcomponent_remove_property(c, p);
			icalproperty_free(p);
		}
	}
	p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
	if (p)
		return icalproperty_get_xlicerror(p);
	for (icalcomponent *k = icalcomponent_get_first_component(c,
	    ICAL_ANY_COMPONENT); k; k = icalcomponent_get_next_component(c,
	    ICAL_ANY_COMPONENT))
		if ((e = ical_parse_error(k)) != NULL)
			return e;
	return NULL;
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

/*
 * The instance digest (see ical_digest_match). Every instance starting
 * before limit is listed; INT64_MAX means all are. At most
 * ICAL_DIGEST_MAX instances are kept (a year of a daily event fits); an
 * endless rule is cut off there.
 *
 * Version 2 ("dig2"): two int64 (magic, limit), then the instances
 * sorted by start as runs of equal step and length, each run four
 * varints (LEB128): its first start as a zigzag delta from the previous
 * run's first start (from 0 for the first run), the number of instances
 * k >= 1, the step between their starts and the length of each [start,
 * end). A year of a daily event in a zone with DST is three runs, some
 * 40 bytes; version 1 took 16 bytes per instance and crowded the page
 * cache out.
 *
 * Version 1 ("dig1"): three int64 (magic, limit, longest length), then
 * (start, end) int64 pairs. Still read: an object stored before keeps
 * its digest until it is written again.
 */
#define ICAL_DIGEST_MAGIC1	0x31676964	/* "dig1" */
#define ICAL_DIGEST_MAGIC	0x32676964	/* "dig2" */
#define ICAL_DIGEST_MAX		1024

struct span {
	int64_t lo, hi;
	int digest;			/* collect pairs below */
	int64_t *pairs;			/* start, end, start, end, ... */
	size_t n, cap;			/* pairs */
	int oom;
};

static void instance_hull(const struct ical_instance *, int64_t *,
    int64_t *);

/* The interval [a, b) with ical_instance_overlaps(in, s, e) equal to
 * a < e && b > s for a VEVENT; 0 if the instance matches no range. */
static int
instance_interval(const struct ical_instance *in, int64_t *a, int64_t *b)
{
	if (!in->has_start)
		return 0;
	*a = in->start;
	if (in->end_kind == ICAL_END_NONE || in->end <= in->start)
		/* s <= start && e > start, in whole seconds */
		*b = in->start == INT64_MAX ? INT64_MAX : in->start + 1;
	else
		*b = in->end;
	return 1;
}

static int
span_add(void *arg, const struct ical_instance *in)
{
	struct span *s = arg;
	int64_t lo, hi, a, b;

	instance_hull(in, &lo, &hi);
	if (lo < s->lo)
		s->lo = lo;
	if (hi > s->hi)
		s->hi = hi;
	if (!s->digest || s->oom || !instance_interval(in, &a, &b))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		int64_t *p = realloc(s->pairs, cap * 2 * sizeof *p);

		if (p == NULL) {
			s->oom = 1;
			return 0;
		}
		s->pairs = p;
		s->cap = cap;
	}
	s->pairs[2 * s->n] = a;
	s->pairs[2 * s->n + 1] = b;
	s->n++;
	return 0;
}

static int
cmp_pair(const void *x, const void *y)
{
	const int64_t *a = x, *b = y;

	return a[0] < b[0] ? -1 : a[0] > b[0];
}

static unsigned char *
put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

/* Builds o's digest from the pairs collected below limit. */
static void
digest_make(struct span *s, int64_t limit, struct ical_object *o)
{
	unsigned char *d, *p;
	int64_t h[2], prev = 0;

	if (s->oom)
		return;
	qsort(s->pairs, s->n, 2 * sizeof *s->pairs, cmp_pair);
	if (s->n > ICAL_DIGEST_MAX) {
		if (s->pairs[2 * ICAL_DIGEST_MAX] < limit)
			limit = s->pairs[2 * ICAL_DIGEST_MAX];
		s->n = ICAL_DIGEST_MAX;
	}
	for (size_t i = 0; i < s->n; i++) {
		int64_t a = s->pairs[2 * i], b = s->pairs[2 * i + 1];

		/* b - a and the steps could overflow for absurd times: then
		 * the digest would mislead ical_digest_match; keep none */
		if (a < -(INT64_MAX / 4) || a > INT64_MAX / 4 ||
		    (b != INT64_MAX && b > INT64_MAX / 4) ||
		    b - a > INT64_MAX / 4)
			return;
	}
	/* worst case: every instance its own run of four 10-byte varints */
	d = malloc(sizeof h + s->n * 40);
	if (d == NULL)
		return;
	h[0] = ICAL_DIGEST_MAGIC;
	h[1] = limit;
	memcpy(d, h, sizeof h);
	p = d + sizeof h;
	for (size_t i = 0; i < s->n;) {
		int64_t a = s->pairs[2 * i], len = s->pairs[2 * i + 1] - a;
		int64_t step = 0, delta = a - prev;
		size_t k = 1;

		if (i + 1 < s->n)
			step = s->pairs[2 * (i + 1)] - a;
		while (i + k < s->n &&
		    s->pairs[2 * (i + k)] - s->pairs[2 * (i + k - 1)] == step &&
		    s->pairs[2 * (i + k) + 1] - s->pairs[2 * (i + k)] == len)
			k++;
		if (k == 1)
			step = 0;
		p = put_varint(p, ((uint64_t)delta << 1) ^
		    (uint64_t)(delta >> 63));
		p = put_varint(p, k);
		p = put_varint(p, (uint64_t)step);
		p = put_varint(p, (uint64_t)len);
		prev = a;
		i += k;
	}
	o->instances = d;
	o->instances_len = (size_t)(p - d);
}

/*
 * An endless rule is not expanded over all time: its digest lists the
 * instances up to a few years past now (or past where the expansion gave
 * up), which is where queries look; later ones are left to a parse.
 */
#define ICAL_DIGEST_YEARS	5

static void
digest_bounded(icalcomponent *root, icalcomponent_kind kind, int64_t lower,
    struct ical_object *o)
{
	struct span s = { INT64_MAX, INT64_MIN, 1, NULL, 0, 0, 0 };
	int64_t from = (int64_t)time(NULL), limit, l;
	icalcomponent *c;

	if (lower > from)
		from = lower;
	if (from > INT64_MAX - ICAL_DIGEST_YEARS * 366 * 86400LL)
		return;
	limit = from + ICAL_DIGEST_YEARS * 366 * 86400LL;
	FOREACH_COMP(c, root, kind)
		if (ical_instances(root, c, INT64_MIN, limit, span_add, &s,
		    &l) == ICAL_EXP_UNBOUNDED && l < limit)
			limit = l;
	/* every instance starting before limit met the window */
	digest_make(&s, limit, o);
	free(s.pairs);
}

/* Version 1 (see ICAL_DIGEST_MAGIC1): p after the magic. */
static int
digest1_match(const unsigned char *p, size_t len, int64_t start,
    int64_t end)
{
	int64_t h[2], from;
	size_t n, lo, hi;

	if (len < sizeof h || (len - sizeof h) % (2 * sizeof(int64_t)) != 0)
		return -1;
	memcpy(h, p, sizeof h);		/* a blob need not be aligned */
	if (h[1] < 0)
		return -1;
	p += sizeof h;
	n = (len - sizeof h) / (2 * sizeof(int64_t));
	/* An interval [a, b) with b - a <= longest overlaps [start, end)
	 * only if start - longest < a < end: find the first such a. */
	lo = 0;
	hi = n;
	from = start <= INT64_MIN + h[1] ? INT64_MIN : start - h[1];
	while (from != INT64_MIN && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t a;

		memcpy(&a, p + mid * 2 * sizeof a, sizeof a);
		if (a <= from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < n; i++) {
		int64_t ab[2];

		memcpy(ab, p + i * sizeof ab, sizeof ab);
		if (ab[0] >= end)
			break;
		if (ab[1] > start)
			return 1;
	}
	/* nothing listed overlaps; instances from limit on are unknown */
	return end > h[0] ? -1 : 0;
}

static int
get_varint(const unsigned char **p, const unsigned char *e, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *p < e; shift += 7) {
		unsigned char c = *(*p)++;

		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Version 2 (see ICAL_DIGEST_MAGIC): p after the magic. */
static int
digest2_match(const unsigned char *p, size_t len, int64_t start,
    int64_t end)
{
	const unsigned char *e = p + len;
	int64_t limit, first = 0;

	if (len < sizeof limit)
		return -1;
	memcpy(&limit, p, sizeof limit);
	p += sizeof limit;
	while (p < e) {
		uint64_t zd, k, step, n;
		__int128 i = 0, a;

		if (get_varint(&p, e, &zd) || get_varint(&p, e, &k) ||
		    get_varint(&p, e, &step) || get_varint(&p, e, &n) ||
		    k == 0 || step > INT64_MAX / 4 || n > INT64_MAX / 4)
			return -1;
		a = (__int128)first + (int64_t)((zd >> 1) ^ -(zd & 1));
		if (a < INT64_MIN / 4 || a > INT64_MAX / 4)
			return -1;
		first = (int64_t)a;
		/* runs and the starts within them ascend */
		if (first >= end)
			break;
		/* the run's first instance [a, a + n) ending after start */
		if (a + n <= start) {
			if (step == 0)
				continue;
			i = ((__int128)start - n - a) / step + 1;
		}
		if (i < k && a + i * step < end)
			return 1;
	}
	/* nothing listed overlaps; instances from limit on are unknown */
	return end > limit ? -1 : 0;
}

int
ical_digest_match(const void *digest, size_t len, int64_t start,
    int64_t end)
{
	int64_t magic;

	if (digest == NULL || len < sizeof magic)
		return -1;
	memcpy(&magic, digest, sizeof magic);
	if (magic == ICAL_DIGEST_MAGIC)
		return digest2_match((const unsigned char *)digest +
		    sizeof magic, len - sizeof magic, start, end);
	if (magic == ICAL_DIGEST_MAGIC1)
		return digest1_match((const unsigned char *)digest +
		    sizeof magic, len - sizeof magic, start, end);
	return -1;
}

/*
 * The UTC span of every instance of every component, widened by a day on
 * each side: floating and all-day values are read as UTC here, and a
 * client in another zone may one day be answered in its own. For a
 * VEVENT object also its instance digest.
 */
static void
object_span(icalcomponent *root, icalcomponent_kind kind, int64_t *start,
    int64_t *end, struct ical_object *o)
{
	struct span s = { INT64_MAX, INT64_MIN, 0, NULL, 0, 0, 0 };
	icalcomponent *c;
	int64_t lower, limit = INT64_MAX;

	s.digest = kind == ICAL_VEVENT_COMPONENT;
	FOREACH_COMP(c, root, kind)
		if (ical_instances(root, c, INT64_MIN, INT64_MAX, span_add,
		    &s, &lower) == ICAL_EXP_UNBOUNDED) {
			s.hi = INT64_MAX;
			if (lower < s.lo)
				s.lo = lower;
			if (lower < limit)
				limit = lower;
		}
	if (s.digest && limit != INT64_MAX)
		digest_bounded(root, kind, limit, o);
	else if (s.digest)
		digest_make(&s, limit, o);
	free(s.pairs);
	if (s.lo > s.hi) {	/* every instance excluded */
		s.lo = INT64_MIN;
		s.hi = INT64_MAX;
	}
	*start = s.lo == INT64_MIN ? INT64_MIN : s.lo - 86400;
	*end = s.hi == INT64_MAX ? INT64_MAX : s.hi + 86400;
}

/* The component name of a BEGIN:/END: line at s (value at s + skip),
 * folded lines unfolded, into name; 0, or -1 when it is too long. */
static int
prescan_name(const char *s, const char *end, size_t skip, char *name,
    size_t size)
{
	size_t n = 0;

	s += skip;
	for (;;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;

		if (e > s && e[-1] == '\r')
			e--;
		if ((size_t)(e - s) >= size - n)
			return -1;
		memcpy(name + n, s, (size_t)(e - s));
		n += (size_t)(e - s);
		if (nl == NULL || nl + 1 >= end || (nl[1] != ' ' &&
		    nl[1] != '\t'))
			break;
		s = nl + 2;		/* a continuation line */
	}
	name[n] = '\0';
	return 0;
}

int
ical_prescan(const char *s, size_t len, int max_depth, char *err,
    size_t errlen)
{
	char stack[ICAL_MAX_DEPTH][64], name[64];
	const char *p = s, *end = s + len;
	int depth = 0;

	if (max_depth > ICAL_MAX_DEPTH)
		max_depth = ICAL_MAX_DEPTH;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		int begin = end - p >= 6 && !strncasecmp(p, "BEGIN:", 6);

		if (begin || (end - p >= 4 && !strncasecmp(p, "END:", 4))) {
			if (prescan_name(p, end, begin ? 6 : 4, name,
			    sizeof name) != 0) {
				snprintf(err, errlen, "component name too "
				    "long");
				return -1;
			}
			if (begin) {
				if (depth == max_depth) {
					snprintf(err, errlen, "components "
					    "nested more than %d deep",
					    max_depth);
					return -1;
				}
				memcpy(stack[depth++], name, sizeof name);
			} else if (depth == 0) {
				snprintf(err, errlen, "END:%.40s without "
				    "BEGIN", name);
				return -1;
			} else if (strcasecmp(stack[--depth], name) != 0) {
				snprintf(err, errlen, "END:%.40s closes "
				    "BEGIN:%.40s", name, stack[depth]);
				return -1;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (depth != 0) {
		snprintf(err, errlen, "BEGIN:%.40s is never closed",
		    stack[depth - 1]);
		return -1;
	}
	return 0;
}

int
ical_object_check(const char *data, size_t len, struct ical_object *out,
    char *err, size_t errlen)
{
	icalcomponent *root = NULL, *c;
	icalcomponent_kind kind = ICAL_NO_COMPONENT;
	int masters = 0, ret = -1;
	char *text, why[160];

	memset(out, 0, sizeof *out);
	out->start = INT64_MIN;
	out->end = INT64_MAX;
	if (len > ICAL_MAX_OBJECT)
		return fail(out, "max-resource-size", err, errlen,
		    "calendar object too large");
	if (memchr(data, '\0', len))
		return fail(out, "valid-calendar-data", err, errlen,
		    "NUL byte in calendar data");
	if (ical_prescan(data, len, ICAL_MAX_DEPTH, why, sizeof why) != 0)
		return fail(out, "valid-calendar-data", err, errlen, why);
	text = strndup(data, len);
	if (text == NULL)
		return fail(out, "valid-calendar-data", err, errlen,
		    "out of memory");
	root = icalparser_parse_string(text);
	free(text);
	if (root == NULL || icalcomponent_isa(root) != ICAL_VCALENDAR_COMPONENT
	    || ical_parse_error(root) != NULL) {
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
	object_span(root, kind, &out->start, &out->end, out);
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

/* ---- recurrence ------------------------------------------------------ */

/*
 * Why these limits: libical's iterator can spin for a long time inside
 * one icalrecur_iterator_next() call (a sub-daily rule restricted to a
 * day that never comes, e.g. FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30, scans
 * every minute up to the year 2582). Rules of that shape are refused up
 * front and treated as unbounded; everything else is capped by steps and
 * by wall time, and a capped set is reported as unbounded so that callers
 * answer conservatively (match, or an open-ended span).
 */
#define ICAL_MAX_STEPS		20000	/* iterator steps per component */
#define ICAL_MAX_DATES		20000	/* RDATE + EXDATE values */
#define ICAL_BUDGET_NS		100000000LL	/* 100 ms per component */
#define ICAL_DAY		86400

struct occ {
	int64_t utc;
	struct icaltimetype local;
	int has_end;			/* RDATE;VALUE=PERIOD */
	int64_t end;
};

struct expand {
	icalcomponent *root, *comp;
	icalcomponent_kind kind;
	icaltimezone *zone;
	struct icaltimetype dtstart;
	int64_t dtstart_utc;
	int64_t qs, qe;
	int64_t lead, tail;		/* hull before / after a start */
	int end_kind;
	int64_t len;			/* end - start of the master */
	struct occ *v;
	size_t n, cap;
	int64_t *ex;			/* EXDATE instants, sorted */
	size_t nex;
	int *exday;			/* EXDATE;VALUE=DATE as yyyymmdd */
	size_t nexday;
	int64_t *rids;			/* overridden instants, sorted */
	size_t nrids;
	int unbounded;
	int64_t lower;
	long steps;
	struct timespec t0;
};

static int
tzid_plausible(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 96 || strstr(s, ".."))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("/_+-. ", *s))
			return 0;
	return 1;
}

/*
 * A VTIMEZONE is used only if libical can expand it cheaply: its
 * observances recur yearly at most and list a bounded number of RDATEs.
 * A hostile FREQ=SECONDLY observance would otherwise make libical build
 * billions of transitions.
 */
static icalcomponent *
vtimezone_sane(icalcomponent *root, const char *tzid)
{
	icalcomponent *tz, *ob;

	FOREACH_COMP(tz, root, ICAL_VTIMEZONE_COMPONENT) {
		icalproperty *p = icalcomponent_get_first_property(tz,
		    ICAL_TZID_PROPERTY);
		int nob = 0, nrd = 0;

		if (p == NULL || icalproperty_get_tzid(p) == NULL ||
		    strcmp(icalproperty_get_tzid(p), tzid) != 0)
			continue;
		FOREACH_COMP(ob, tz, ICAL_ANY_COMPONENT) {
			if (++nob > 64)
				return NULL;
			for (p = icalcomponent_get_first_property(ob,
			    ICAL_RRULE_PROPERTY); p; p =
			    icalcomponent_get_next_property(ob,
			    ICAL_RRULE_PROPERTY)) {
				struct icalrecurrencetype r =
				    icalproperty_get_rrule(p);

				if (r.freq != ICAL_YEARLY_RECURRENCE)
					return NULL;
			}
			for (p = icalcomponent_get_first_property(ob,
			    ICAL_RDATE_PROPERTY); p; p =
			    icalcomponent_get_next_property(ob,
			    ICAL_RDATE_PROPERTY))
				if (++nrd > 1000)
					return NULL;
			p = icalcomponent_get_first_property(ob,
			    ICAL_DTSTART_PROPERTY);
			if (p == NULL ||
			    icalproperty_get_dtstart(p).year < 1000)
				return NULL;
		}
		return tz;
	}
	return NULL;
}

/*
 * Objects from Outlook carry their own VTIMEZONE under a Windows name
 * ("W. Europe Standard Time", observances from 1601); libical expands it
 * anew for every parsed object, several milliseconds each. Identical
 * definitions share one icaltimezone, kept for the life of the process.
 * The table only grows (a zone in use is never freed); once full, new
 * definitions are simply not cached.
 */
#define ICAL_TZ_CACHE		64
#define ICAL_TZ_MAX_TEXT	16384

static struct {
	char *text;			/* owned: the VTIMEZONE as iCalendar */
	icaltimezone *zone;		/* owned, never freed */
} tz_cache[ICAL_TZ_CACHE];
static size_t tz_cached;
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static icaltimezone *
shared_zone(icalcomponent *vtz)
{
	char *text = icalcomponent_as_ical_string_r(vtz);
	icaltimezone *z = NULL;
	icalcomponent *copy;
	size_t i;

	if (text == NULL || strlen(text) > ICAL_TZ_MAX_TEXT) {
		icalmemory_free_buffer(text);
		return NULL;
	}
	pthread_mutex_lock(&tz_lock);
	for (i = 0; i < tz_cached; i++)
		if (strcmp(tz_cache[i].text, text) == 0) {
			z = tz_cache[i].zone;
			goto out;
		}
	if (tz_cached == ICAL_TZ_CACHE)
		goto out;
	copy = icalcomponent_new_clone(vtz);
	z = icaltimezone_new();
	tz_cache[tz_cached].text = strdup(text);
	if (copy == NULL || z == NULL || tz_cache[tz_cached].text == NULL ||
	    !icaltimezone_set_component(z, copy)) {
		if (z)
			icaltimezone_free(z, 1);
		else if (copy)
			icalcomponent_free(copy);
		free(tz_cache[tz_cached].text);
		tz_cache[tz_cached].text = NULL;
		z = NULL;
		goto out;
	}
	tz_cache[tz_cached++].zone = z;
out:
	pthread_mutex_unlock(&tz_lock);
	icalmemory_free_buffer(text);
	return z;
}

/*
 * The zone a DATE-TIME property is in: UTC, the system zone of that name,
 * else the object's own VTIMEZONE (Outlook's Windows zone names only work
 * this way); NULL means floating, read as UTC.
 */
static icaltimezone *
prop_zone(icalcomponent *root, icalproperty *p, struct icaltimetype t)
{
	icalcomponent *vtz;
	icalparameter *tp;
	icaltimezone *z = NULL;
	const char *tzid;

	if (icaltime_is_utc(t))
		return icaltimezone_get_utc_timezone();
	if (t.is_date || p == NULL)
		return NULL;
	tp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
	if (tp == NULL || (tzid = icalparameter_get_tzid(tp)) == NULL)
		return NULL;
	/*
	 * An IANA name is read from the system zone data, shared by every
	 * request: expanding each object's own copy of the same VTIMEZONE
	 * costs about a millisecond per object and per query.
	 */
	if (tzid_plausible(tzid))
		z = icaltimezone_get_builtin_timezone(tzid);
	if (z == NULL && root && (vtz = vtimezone_sane(root, tzid)) != NULL) {
		z = shared_zone(vtz);
		if (z == NULL)
			z = icalcomponent_get_timezone(root, tzid);
	}
	if (z == NULL && tzid[0] == '/' && tzid_plausible(tzid))
		z = icaltimezone_get_builtin_timezone_from_tzid(tzid);
	return z;
}

static int64_t
tt_utc(struct icaltimetype t, icaltimezone *z)
{
	if (icaltime_is_null_time(t))
		return 0;
	t.is_date = 0;
	return (int64_t)icaltime_as_timet_with_zone(t, z);
}

int64_t
ical_prop_utc(icalcomponent *root, icalproperty *p, int *is_date)
{
	icalvalue *v = icalproperty_get_value(p);
	struct icaltimetype t;

	if (v == NULL)
		return 0;
	t = icalvalue_get_datetime(v);
	if (is_date)
		*is_date = t.is_date;
	return tt_utc(t, prop_zone(root, p, t));
}

static int64_t
sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int
budget_spent(struct expand *x)
{
	struct timespec now;

	if (++x->steps > ICAL_MAX_STEPS)
		return 1;
	if (x->steps % 64)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - x->t0.tv_sec) * 1000000000LL +
	    (now.tv_nsec - x->t0.tv_nsec) > ICAL_BUDGET_NS;
}

static void
give_up(struct expand *x, int64_t lower)
{
	x->unbounded = 1;
	if (lower < x->lower)
		x->lower = lower;
}

static int
push_occ(struct expand *x, struct icaltimetype local, int64_t utc,
    int has_end, int64_t end)
{
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 16;
		struct occ *nv;

		if (nc > ICAL_MAX_STEPS + ICAL_MAX_DATES + 1)
			return -1;
		nv = realloc(x->v, nc * sizeof *nv);
		if (nv == NULL)
			return -1;
		x->v = nv;
		x->cap = nc;
	}
	x->v[x->n].local = local;
	x->v[x->n].utc = utc;
	x->v[x->n].has_end = has_end;
	x->v[x->n].end = end;
	x->n++;
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_occ(const void *a, const void *b)
{
	return cmp_i64(&((const struct occ *)a)->utc,
	    &((const struct occ *)b)->utc);
}

static int
has_by(const short *a)
{
	return a[0] != ICAL_RECURRENCE_ARRAY_MAX;
}

int64_t
ical_days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t d, int *y, int *m, int *md)
{
	int64_t z = d + 719468, era, doe, yoe, doy, mp;

	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*md = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 1 = Sunday .. 7 = Saturday, as libical counts */
static int
weekday_of(int64_t d)
{
	return (int)(((d % 7) + 7 + 4) % 7) + 1;
}

static int
in_weekdays(const struct icalrecurrencetype *r, int64_t d)
{
	int wd = weekday_of(d);

	for (int i = 0; r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
		if ((int)icalrecurrencetype_day_day_of_week(r->by_day[i]) == wd)
			return 1;
	return 0;
}

static int
in_list(const short *a, int v, int size_for_negative)
{
	for (int i = 0; a[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
		if (a[i] == v || (a[i] < 0 &&
		    size_for_negative + a[i] + 1 == v))
			return 1;
	return 0;
}

/*
 * A DAILY rule filtered by month, month day, year day or weekday is
 * stepped one day at a time by libical, up to the year 2582 when nothing
 * matches. Look for a matching day in the next 28 years (the calendar
 * repeats) ourselves first.
 */
static int
daily_satisfiable(const struct icalrecurrencetype *r,
    struct icaltimetype start)
{
	int64_t d0 = ical_days_from_civil(start.year, start.month, start.day);

	for (int i = 0; r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX; i++)
		if (icalrecurrencetype_day_position(r->by_day[i]) != 0)
			return 0;
	for (int64_t d = d0; d < d0 + 28 * 366; d++) {
		int y, m, md, dim, diy, wd;

		civil_from_days(d, &y, &m, &md);
		dim = icaltime_days_in_month(m, y);
		diy = icaltime_days_in_year(y);
		wd = weekday_of(d);
		if (has_by(r->by_month) && !in_list(r->by_month, m, 12))
			continue;
		if (has_by(r->by_month_day) &&
		    !in_list(r->by_month_day, md, dim))
			continue;
		if (has_by(r->by_year_day) && !in_list(r->by_year_day,
		    (int)(d - ical_days_from_civil(y, 1, 1) + 1), diy))
			continue;
		if (has_by(r->by_day)) {
			int ok = 0;

			for (int i = 0; r->by_day[i] !=
			    ICAL_RECURRENCE_ARRAY_MAX; i++)
				if ((int)icalrecurrencetype_day_day_of_week(
				    r->by_day[i]) == wd)
					ok = 1;
			if (!ok)
				continue;
		}
		return 1;
	}
	return 0;
}

/* Rules whose iteration libical cannot bound (see the top of section). */
static int
rule_expandable(const struct icalrecurrencetype *r, struct icaltimetype s)
{
	int days = has_by(r->by_day) || has_by(r->by_month_day) ||
	    has_by(r->by_year_day) || has_by(r->by_week_no) ||
	    has_by(r->by_month);
	int times = has_by(r->by_hour) || has_by(r->by_minute) ||
	    has_by(r->by_second);

	if (r->interval < 1)
		return 0;
	switch (r->freq) {
	case ICAL_SECONDLY_RECURRENCE:
	case ICAL_MINUTELY_RECURRENCE:
		return !days && !times;
	case ICAL_HOURLY_RECURRENCE:
		return !days;
	case ICAL_DAILY_RECURRENCE:
		return !days || daily_satisfiable(r, s);
	case ICAL_WEEKLY_RECURRENCE:
	case ICAL_MONTHLY_RECURRENCE:
	case ICAL_YEARLY_RECURRENCE:
		return 1;
	default:
		return 0;
	}
}

/* DTSTART and the end rule of one component, as in RFC 4791 9.9. */
static void
read_times(struct expand *x, icalcomponent *c)
{
	icalproperty *ps, *pe;
	icalcomponent_kind k = icalcomponent_isa(c);

	x->kind = k;
	x->end_kind = ICAL_END_NONE;
	x->len = 0;
	ps = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);
	if (ps == NULL)	/* an override without DTSTART starts at its RID */
		ps = icalcomponent_get_first_property(c,
		    ICAL_RECURRENCEID_PROPERTY);
	if (ps) {
		x->dtstart = icalvalue_get_datetime(icalproperty_get_value(ps));
		x->zone = prop_zone(x->root, ps, x->dtstart);
		x->dtstart_utc = tt_utc(x->dtstart, x->zone);
	} else
		x->dtstart = icaltime_null_time();
	pe = icalcomponent_get_first_property(c, k == ICAL_VTODO_COMPONENT ?
	    ICAL_DUE_PROPERTY : ICAL_DTEND_PROPERTY);
	if (k == ICAL_VJOURNAL_COMPONENT)
		pe = NULL;
	if (pe) {
		x->end_kind = ICAL_END_DTEND;
		x->len = ical_prop_utc(x->root, pe, NULL) - x->dtstart_utc;
	} else if ((pe = icalcomponent_get_first_property(c,
	    ICAL_DURATION_PROPERTY)) != NULL && ps &&
	    (k == ICAL_VEVENT_COMPONENT || k == ICAL_VTODO_COMPONENT)) {
		x->end_kind = ICAL_END_DURATION;
		x->len = icaldurationtype_as_int(
		    icalproperty_get_duration(pe));
	} else if (x->dtstart.is_date && ps && k != ICAL_VTODO_COMPONENT) {
		/* RFC 4791 9.9: an all-day event lasts until DTSTART+P1D */
		x->end_kind = ICAL_END_DTEND;
		x->len = ICAL_DAY;
	}
	if (ps == NULL && x->end_kind == ICAL_END_DTEND)
		x->len += x->dtstart_utc;	/* DUE only: len is absolute */
}

static void
make_instance(const struct expand *x, const struct occ *o,
    struct ical_instance *in)
{
	memset(in, 0, sizeof *in);
	in->comp = x->comp;
	in->is_date = x->dtstart.is_date;
	in->end_kind = x->end_kind;
	if (icaltime_is_null_time(x->dtstart)) {
		in->end = x->len;	/* VTODO with DUE only, or nothing */
		return;
	}
	in->has_start = 1;
	in->start = o->utc;
	in->end = o->has_end ? o->end : sat_add(o->utc, x->len);
	if (o->has_end && in->end_kind == ICAL_END_NONE)
		in->end_kind = ICAL_END_DTEND;
}

/* The closed interval outside which the instance can match no range. */
static void
instance_hull(const struct ical_instance *in, int64_t *lo, int64_t *hi)
{
	icalcomponent *c = in->comp;
	icalproperty *cr, *cp;

	if (in->has_start) {
		*lo = *hi = in->start;
		if (in->end_kind != ICAL_END_NONE) {
			if (in->end < *lo)
				*lo = in->end;
			if (in->end > *hi)
				*hi = in->end;
		}
		return;
	}
	if (in->end_kind != ICAL_END_NONE) {
		*lo = *hi = in->end;
		return;
	}
	/* VTODO with neither DTSTART nor DUE: COMPLETED and CREATED */
	*lo = INT64_MIN;
	*hi = INT64_MAX;
	cr = icalcomponent_get_first_property(c, ICAL_CREATED_PROPERTY);
	cp = icalcomponent_get_first_property(c, ICAL_COMPLETED_PROPERTY);
	if (icalcomponent_isa(c) != ICAL_VTODO_COMPONENT || (!cr && !cp))
		return;
	if (cp) {
		*lo = *hi = ical_prop_utc(NULL, cp, NULL);
		if (cr && ical_prop_utc(NULL, cr, NULL) < *lo)
			*lo = ical_prop_utc(NULL, cr, NULL);
		if (cr && ical_prop_utc(NULL, cr, NULL) > *hi)
			*hi = ical_prop_utc(NULL, cr, NULL);
	} else
		*lo = ical_prop_utc(NULL, cr, NULL);
}

static int
todo_overlaps(const struct ical_instance *in, int64_t s, int64_t e)
{
	int64_t ds = in->start, de = in->end, cr = 0, cp = 0;
	icalproperty *pcr, *pcp;

	if (in->has_start && in->end_kind == ICAL_END_DURATION)
		return s <= de && (e > ds || e >= de);
	if (in->has_start && in->end_kind == ICAL_END_DTEND)
		return (s < de || s <= ds) && (e > ds || e >= de);
	if (in->has_start)
		return s <= ds && e > ds;
	if (in->end_kind == ICAL_END_DTEND)
		return s < de && e >= de;
	pcr = icalcomponent_get_first_property(in->comp,
	    ICAL_CREATED_PROPERTY);
	pcp = icalcomponent_get_first_property(in->comp,
	    ICAL_COMPLETED_PROPERTY);
	if (pcr)
		cr = ical_prop_utc(NULL, pcr, NULL);
	if (pcp)
		cp = ical_prop_utc(NULL, pcp, NULL);
	if (pcr && pcp)
		return (s <= cr || s <= cp) && (e >= cr || e >= cp);
	if (pcp)
		return s <= cp && e >= cp;
	if (pcr)
		return e > cr;
	return 1;
}

int
ical_instance_overlaps(const struct ical_instance *in, int64_t s, int64_t e)
{
	if (icalcomponent_isa(in->comp) == ICAL_VTODO_COMPONENT)
		return todo_overlaps(in, s, e);
	if (!in->has_start)
		return 0;	/* a VEVENT or VJOURNAL without DTSTART */
	if (in->end_kind == ICAL_END_NONE || in->end <= in->start)
		return s <= in->start && e > in->start;
	return s < in->end && e > in->start;
}

static int
add_exdate(struct expand *x, icalproperty *p)
{
	struct icaltimetype t = icalproperty_get_exdate(p);

	if (x->nex + x->nexday >= ICAL_MAX_DATES)
		return -1;
	if (t.is_date && !x->dtstart.is_date) {
		x->exday[x->nexday++] = t.year * 10000 + t.month * 100 + t.day;
		return 0;
	}
	x->ex[x->nex++] = tt_utc(t, prop_zone(x->root, p, t));
	return 0;
}

/* EXDATEs of the master and RECURRENCE-IDs of its overrides. */
static int
read_exclusions(struct expand *x)
{
	const char *uid = icalcomponent_get_uid(x->comp);
	size_t nexd = 0, nov = 0;
	icalproperty *p;
	icalcomponent *o;

	for (p = icalcomponent_get_first_property(x->comp,
	    ICAL_EXDATE_PROPERTY); p; p = icalcomponent_get_next_property(
	    x->comp, ICAL_EXDATE_PROPERTY))
		nexd++;
	FOREACH_COMP(o, x->root, x->kind)
		nov++;
	if (nexd > ICAL_MAX_DATES)
		return -1;
	x->ex = calloc(nexd + 1, sizeof *x->ex);
	x->exday = calloc(nexd + 1, sizeof *x->exday);
	x->rids = calloc(nov + 1, sizeof *x->rids);
	if (x->ex == NULL || x->exday == NULL || x->rids == NULL)
		return -1;
	for (p = icalcomponent_get_first_property(x->comp,
	    ICAL_EXDATE_PROPERTY); p; p = icalcomponent_get_next_property(
	    x->comp, ICAL_EXDATE_PROPERTY))
		if (add_exdate(x, p))
			return -1;
	FOREACH_COMP(o, x->root, x->kind) {
		const char *ou = icalcomponent_get_uid(o);

		p = icalcomponent_get_first_property(o,
		    ICAL_RECURRENCEID_PROPERTY);
		if (p == NULL || o == x->comp || ou == NULL || uid == NULL ||
		    strcmp(ou, uid) != 0)
			continue;
		x->rids[x->nrids++] = ical_prop_utc(x->root, p, NULL);
	}
	qsort(x->ex, x->nex, sizeof *x->ex, cmp_i64);
	qsort(x->rids, x->nrids, sizeof *x->rids, cmp_i64);
	return 0;
}

static int
excluded(const struct expand *x, const struct occ *o)
{
	int day = o->local.year * 10000 + o->local.month * 100 +
	    o->local.day;

	if (bsearch(&o->utc, x->ex, x->nex, sizeof *x->ex, cmp_i64) ||
	    bsearch(&o->utc, x->rids, x->nrids, sizeof *x->rids, cmp_i64))
		return 1;
	for (size_t i = 0; i < x->nexday; i++)
		if (x->exday[i] == day)
			return 1;
	return 0;
}

/* Keeps an occurrence if its hull can meet the window. */
static int
consider(struct expand *x, struct icaltimetype local, int64_t utc,
    int has_end, int64_t end)
{
	int64_t lo = utc - x->lead, hi = sat_add(utc, x->tail);

	if (has_end && end > hi)
		hi = end;
	if (hi < x->qs || lo > x->qe)
		return 0;
	return push_occ(x, local, utc, has_end, end);
}

static void
read_rdates(struct expand *x)
{
	icalproperty *p;
	size_t n = 0;

	for (p = icalcomponent_get_first_property(x->comp,
	    ICAL_RDATE_PROPERTY); p; p = icalcomponent_get_next_property(
	    x->comp, ICAL_RDATE_PROPERTY)) {
		struct icaldatetimeperiodtype r = icalproperty_get_rdate(p);
		struct icaltimetype t = r.time;
		int has_end = 0;
		int64_t end = 0;

		if (++n > ICAL_MAX_DATES) {
			give_up(x, INT64_MIN);
			return;
		}
		if (icaltime_is_null_time(t)) {
			t = r.period.start;
			has_end = 1;
			if (!icaltime_is_null_time(r.period.end))
				end = tt_utc(r.period.end,
				    prop_zone(x->root, p, r.period.end));
			else
				end = tt_utc(t, prop_zone(x->root, p, t)) +
				    icaldurationtype_as_int(r.period.duration);
		}
		if (icaltime_is_null_time(t))
			continue;
		if (consider(x, t, tt_utc(t, prop_zone(x->root, p, t)),
		    has_end, end)) {
			give_up(x, INT64_MIN);
			return;
		}
	}
}

/*
 * The rules clients write most (DAILY, WEEKLY with or without weekdays,
 * MONTHLY and YEARLY on DTSTART's day, any INTERVAL, COUNT, UNTIL) are
 * stepped here with plain date arithmetic: libical's iterator goes
 * through ICU calendars and costs tens of microseconds per instance,
 * which dominated calendar-query. Anything else goes to libical.
 * test_query compares both on a table of rules.
 */
static int ical_fast_recur = 1;

void
ical_set_fast_recur(int on)
{
	ical_fast_recur = on;
}

static int
simple_rule(const struct icalrecurrencetype *r)
{
	if (r->interval < 1 || r->rscale != NULL || has_by(r->by_second) ||
	    has_by(r->by_minute) || has_by(r->by_hour) ||
	    has_by(r->by_month_day) || has_by(r->by_year_day) ||
	    has_by(r->by_week_no) || has_by(r->by_month) ||
	    has_by(r->by_set_pos))
		return 0;
	switch (r->freq) {
	case ICAL_DAILY_RECURRENCE:
	case ICAL_MONTHLY_RECURRENCE:
	case ICAL_YEARLY_RECURRENCE:
		return !has_by(r->by_day);
	case ICAL_WEEKLY_RECURRENCE:
		for (int i = 0; r->by_day[i] != ICAL_RECURRENCE_ARRAY_MAX;
		    i++)
			if (icalrecurrencetype_day_position(r->by_day[i]) != 0)
				return 0;
		return 1;
	default:
		return 0;
	}
}

struct fast {
	struct expand *x;
	int64_t until;
	long count, n;		/* COUNT (0: none) and instances so far */
	int stop;
};

/* One candidate day at DTSTART's wall-clock time; sets f->stop at the end. */
static void
fast_day(struct fast *f, int64_t day)
{
	struct expand *x = f->x;
	struct icaltimetype t = x->dtstart;
	int64_t u;
	int y, m, md;

	if (f->count && f->n >= f->count) {
		f->stop = 1;
		return;
	}
	civil_from_days(day, &y, &m, &md);
	if (y > 9999) {
		f->stop = 1;
		return;
	}
	t.year = y;
	t.month = m;
	t.day = md;
	u = tt_utc(t, x->zone);
	if (u > f->until || u - x->lead > x->qe) {
		f->stop = 1;
		return;
	}
	f->n++;
	if (budget_spent(x) || consider(x, t, u, 0, 0)) {
		give_up(x, u - x->lead);
		f->stop = 1;
	}
}

/* The first period index worth generating for the window. */
static int64_t
fast_skip(const struct expand *x, int64_t first_day, int64_t period_days)
{
	int64_t w, k;

	if (x->qs == INT64_MIN)
		return 0;
	w = (x->qs - x->tail) / ICAL_DAY - 3;	/* zones, rounding */
	k = (w - first_day) / period_days;
	return k > 0 ? k : 0;
}

static void
fast_rule(struct expand *x, const struct icalrecurrencetype *r,
    int64_t until)
{
	struct fast f = { x, until, r->count > 0 ? r->count : 0, 0, 0 };
	struct icaltimetype s = x->dtstart;
	int64_t d0 = ical_days_from_civil(s.year, s.month, s.day), k, per;
	int iv = r->interval;

	switch (r->freq) {
	case ICAL_DAILY_RECURRENCE:
	case ICAL_WEEKLY_RECURRENCE:
		per = (r->freq == ICAL_DAILY_RECURRENCE ? 1 : 7) * (int64_t)iv;
		if (r->freq == ICAL_DAILY_RECURRENCE || !has_by(r->by_day)) {
			/* one instance per period: COUNT allows the jump */
			k = fast_skip(x, d0, per);
			f.n = k;
			for (; !f.stop; k++)
				fast_day(&f, d0 + k * per);
			return;
		}
		/* weeks start on WKST; DTSTART's week is period 0 */
		{
			int wkst = r->week_start ? (int)r->week_start : 2;
			int64_t ws = d0 - ((weekday_of(d0) - wkst + 7) % 7);

			k = f.count ? 0 : fast_skip(x, ws, per);
			for (; !f.stop; k++)
				for (int i = 0; i < 7 && !f.stop; i++) {
					int64_t d = ws + k * per + i;

					if (d < d0 || !in_weekdays(r, d))
						continue;
					fast_day(&f, d);
				}
		}
		return;
	case ICAL_MONTHLY_RECURRENCE:
		k = f.count ? 0 : fast_skip(x, d0, 31 * (int64_t)iv);
		for (; !f.stop; k++) {
			int64_t mi = (int64_t)s.year * 12 + s.month - 1 +
			    k * iv;
			int y = (int)(mi / 12), m = (int)(mi % 12) + 1;

			if (y > 9999)
				return;
			if (s.day <= icaltime_days_in_month(m, y))
				fast_day(&f, ical_days_from_civil(y, m, s.day));
		}
		return;
	case ICAL_YEARLY_RECURRENCE:
		k = f.count ? 0 : fast_skip(x, d0, 366 * (int64_t)iv);
		for (; !f.stop; k++) {
			int y = s.year + (int)(k * iv);

			if (k * iv > 9999 - s.year)
				return;
			if (s.day <= icaltime_days_in_month(s.month, y))
				fast_day(&f, ical_days_from_civil(y, s.month,
				    s.day));
		}
		return;
	default:
		return;
	}
}

static void
read_rule(struct expand *x, icalproperty *p)
{
	struct icalrecurrencetype r = icalproperty_get_rrule(p);
	icalrecur_iterator *it;
	int64_t until = INT64_MAX, u;
	struct icaltimetype t;

	if (r.freq == ICAL_NO_RECURRENCE)
		return;
	if (!rule_expandable(&r, x->dtstart)) {
		give_up(x, x->dtstart_utc - x->lead);
		return;
	}
	/* UNTIL is compared in UTC here: libical compares wall times. */
	if (!icaltime_is_null_time(r.until)) {
		until = tt_utc(r.until, icaltime_is_utc(r.until) ?
		    icaltimezone_get_utc_timezone() : x->zone);
		if (r.until.is_date && !x->dtstart.is_date)
			until += ICAL_DAY - 1;
		r.until = icaltime_null_time();
	}
	if (ical_fast_recur && simple_rule(&r)) {
		if (r.count == 0 && until == INT64_MAX &&
		    x->qe == INT64_MAX) {
			give_up(x, x->dtstart_utc - x->lead);
			return;
		}
		fast_rule(x, &r, until);
		return;
	}
	/* An endless rule over an endless window: nothing to count. */
	if (r.count == 0 && until == INT64_MAX && x->qe == INT64_MAX) {
		give_up(x, x->dtstart_utc - x->lead);
		return;
	}
	it = icalrecur_iterator_new(r, x->dtstart);
	if (it == NULL) {
		give_up(x, x->dtstart_utc - x->lead);
		return;
	}
	/*
	 * Jump close to the window; COUNT needs every earlier instance, and
	 * libical re-anchors a sub-daily INTERVAL > 1 on the wrong grid.
	 */
	if (r.count == 0 && x->qs != INT64_MIN && (r.interval == 1 ||
	    r.freq >= ICAL_DAILY_RECURRENCE) &&
	    x->qs - x->tail - 2 * ICAL_DAY > x->dtstart_utc + 2 * ICAL_DAY) {
		struct icaltimetype j = icaltime_from_timet_with_zone(
		    (time_t)(x->qs - x->tail - 2 * ICAL_DAY),
		    x->dtstart.is_date, x->zone);

		j.zone = x->dtstart.zone;
		if (j.year < 9000)
			icalrecur_iterator_set_start(it, j);
	}
	while (!icaltime_is_null_time(t = icalrecur_iterator_next(it))) {
		u = tt_utc(t, x->zone);
		if (u > until || u - x->lead > x->qe)
			break;
		if (budget_spent(x) || consider(x, t, u, 0, 0)) {
			give_up(x, u - x->lead);
			break;
		}
	}
	icalrecur_iterator_free(it);
}

static int
emit(struct expand *x, ical_instance_fn fn, void *arg)
{
	struct ical_instance in;
	int64_t lo, hi;

	if (x->n > 1)
		qsort(x->v, x->n, sizeof *x->v, cmp_occ);
	for (size_t i = 0; i < x->n; i++) {
		if (i > 0 && x->v[i].utc == x->v[i - 1].utc)
			continue;
		if (excluded(x, &x->v[i]))
			continue;
		make_instance(x, &x->v[i], &in);
		in.recurring = 1;
		in.rid = x->v[i].utc;
		instance_hull(&in, &lo, &hi);
		if (hi < x->qs || lo > x->qe)
			continue;
		if (fn(arg, &in))
			return ICAL_EXP_STOPPED;
	}
	return x->unbounded ? ICAL_EXP_UNBOUNDED : ICAL_EXP_DONE;
}

int
ical_instances(icalcomponent *root, icalcomponent *comp, int64_t start,
    int64_t end, ical_instance_fn fn, void *arg, int64_t *lower)
{
	struct expand x;
	struct ical_instance in;
	icalproperty *p, *rid;
	int ret;

	memset(&x, 0, sizeof x);
	x.root = root;
	x.comp = comp;
	x.qs = start;
	x.qe = end;
	x.lower = INT64_MAX;
	clock_gettime(CLOCK_MONOTONIC, &x.t0);
	read_times(&x, comp);
	rid = icalcomponent_get_first_property(comp,
	    ICAL_RECURRENCEID_PROPERTY);
	if (rid || icaltime_is_null_time(x.dtstart) ||
	    (!icalcomponent_get_first_property(comp, ICAL_RRULE_PROPERTY) &&
	    !icalcomponent_get_first_property(comp, ICAL_RDATE_PROPERTY))) {
		struct occ o = { x.dtstart_utc, x.dtstart, 0, 0 };
		int64_t lo, hi;

		make_instance(&x, &o, &in);
		if (rid) {
			in.recurring = 1;
			in.rid = ical_prop_utc(root, rid, NULL);
		}
		instance_hull(&in, &lo, &hi);
		if (hi < start || lo > end)
			return ICAL_EXP_DONE;
		return fn(arg, &in) ? ICAL_EXP_STOPPED : ICAL_EXP_DONE;
	}
	x.lead = x.len < 0 ? -x.len : 0;
	x.tail = x.len > 0 ? x.len : 0;
	if (read_exclusions(&x)) {
		give_up(&x, INT64_MIN);
		ret = ICAL_EXP_UNBOUNDED;
		goto out;
	}
	/* RFC 5545 3.8.5.3: DTSTART is always the first instance. */
	consider(&x, x.dtstart, x.dtstart_utc, 0, 0);
	read_rdates(&x);
	for (p = icalcomponent_get_first_property(comp, ICAL_RRULE_PROPERTY);
	    p; p = icalcomponent_get_next_property(comp, ICAL_RRULE_PROPERTY))
		read_rule(&x, p);
	ret = emit(&x, fn, arg);
out:
	if (lower)
		*lower = x.lower;
	free(x.v);
	free(x.ex);
	free(x.exday);
	free(x.rids);
	return ret;
}
