/*
 * server/itip.c: the iTIP merge engine. One accepted iTIP message for one
 * user becomes at most one change of one calendar object (or one pending
 * proposal). The engine first decides, reading only, and builds the new
 * object in memory; then, unless this is a dry run, it writes. So a dry
 * run (`calgate explain --user`) decides exactly like the real thing.
 *
 * What it keeps of the user's own state across organizer updates: VALARMs,
 * X- properties the message does not carry, CATEGORIES, and the user's
 * PARTSTAT when time, place and recurrence did not change (RFC 6638 3.2).
 * It never expands recurrences, so a hostile RRULE costs nothing.
 *
 * Sender authentication and ORGANIZER == From are the gate's (policy/);
 * this module checks what needs the stored calendars: the stored
 * ORGANIZER, and new_events_from = known.
 */
#include "server/itip.h"

#include <ctype.h>
#include <gnutls/crypto.h>
#include <libical/ical.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/ical.h"
#include "server/log.h"

#define ADDR_MAX	320
#define RID_MAX		48
#define STAMP_MAX	20
#define NAME_MAX_UID	200	/* longest UID used verbatim as a name */

/* The last version applied for one (attendee, instance). */
struct itip_rec {
	char attendee[ADDR_MAX];	/* "" for the organizer */
	char rid[RID_MAX];		/* "" for the master */
	int64_t seq;
	char stamp[STAMP_MAX];
};

/* One itip_apply call. */
struct itip {
	struct store *st;
	const struct user_conf *u;
	const char *from;
	int dry_run;
	struct itip_result *res;
	int64_t user_id;		/* 0: the user has no store row yet */

	icalcomponent *msg;		/* owned: the message */
	icalproperty_method method;
	icalcomponent_kind kind;
	const char *uid;		/* borrowed from msg */
	icalcomponent **mcomps;		/* owned array, borrowed items */
	size_t nmcomps;
	icalcomponent *mmaster;		/* message master or NULL */
	char morg[ADDR_MAX];		/* message ORGANIZER or "" */

	struct store_object old;	/* old.id == 0: UID not stored */
	icalcomponent *old_root;	/* owned */
	icalcomponent *omaster;		/* borrowed from old_root */
	char oorg[ADDR_MAX];

	icalcomponent *out;		/* owned: the object to store */
	char *out_text;			/* owned: its text, checked */
	struct ical_object out_meta;
	int delete_old;
	int scheduling;			/* 0 for PUBLISH */
	int64_t coll_id;		/* where a new object goes; 0: create */
	char name[256];

	struct itip_rec *recs;		/* owned */
	size_t nrecs;
};

/* ---- results ------------------------------------------------------------- */

const char *
itip_outcome_name(enum itip_outcome o)
{
	switch (o) {
	case ITIP_APPLIED:
		return "applied";
	case ITIP_NOOP:
		return "noop";
	default:
		return "refused";
	}
}

static int
result(struct itip *it, enum itip_outcome o, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets the outcome; returns 0 so callers can `return result(...)`. */
static int
result(struct itip *it, enum itip_outcome o, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	it->res->outcome = o;
	snprintf(it->res->reason, sizeof it->res->reason, "%s", reason);
	va_start(ap, fmt);
	vsnprintf(it->res->detail, sizeof it->res->detail, fmt, ap);
	va_end(ap);
	return 0;
}

/* ---- small iCalendar helpers --------------------------------------------- */

static int
is_sched(icalcomponent *c)
{
	icalcomponent_kind k = icalcomponent_isa(c);

	return k == ICAL_VEVENT_COMPONENT || k == ICAL_VTODO_COMPONENT ||
	    k == ICAL_VJOURNAL_COMPONENT;
}

/*
 * The children of c of kind k (ICAL_ANY_COMPONENT: the scheduling ones)
 * as a malloc'd array. Arrays instead of libical's per-component iterator
 * because the merge walks one component while looking into another.
 */
static icalcomponent **
kids(icalcomponent *c, icalcomponent_kind k, size_t *n)
{
	icalcomponent **v = NULL, **nv, *x;
	size_t cap = 0;

	*n = 0;
	for (x = icalcomponent_get_first_component(c, k); x;
	    x = icalcomponent_get_next_component(c, k)) {
		if (k == ICAL_ANY_COMPONENT && !is_sched(x))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof *v);
			if (nv == NULL) {
				free(v);
				*n = 0;
				return NULL;
			}
			v = nv;
		}
		v[(*n)++] = x;
	}
	return v;
}

static icalproperty **
props(icalcomponent *c, icalproperty_kind k, size_t *n)
{
	icalproperty **v = NULL, **nv, *p;
	size_t cap = 0;

	*n = 0;
	for (p = icalcomponent_get_first_property(c, k); p;
	    p = icalcomponent_get_next_property(c, k)) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof *v);
			if (nv == NULL) {
				free(v);
				*n = 0;
				return NULL;
			}
			v = nv;
		}
		v[(*n)++] = p;
	}
	return v;
}

static void
remove_props(icalcomponent *c, icalproperty_kind k)
{
	size_t n;
	icalproperty **v = props(c, k, &n);

	for (size_t i = 0; i < n; i++) {
		icalcomponent_remove_property(c, v[i]);
		icalproperty_free(v[i]);
	}
	free(v);
}

static void
remove_kids(icalcomponent *c, icalcomponent_kind k)
{
	size_t n;
	icalcomponent **v = kids(c, k, &n);

	for (size_t i = 0; i < n; i++) {
		icalcomponent_remove_component(c, v[i]);
		icalcomponent_free(v[i]);
	}
	free(v);
}

/* A calendar address without "mailto:", lower case; -1 if unusable. */
static int
addr_norm(const char *v, char *buf, size_t n)
{
	size_t len;

	if (v == NULL)
		return -1;
	while (*v == ' ')
		v++;
	if (strncasecmp(v, "mailto:", 7) == 0)
		v += 7;
	len = strlen(v);
	while (len > 0 && v[len - 1] == ' ')
		len--;
	if (len == 0 || len >= n)
		return -1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)v[i]);
	buf[len] = '\0';
	return 0;
}

static void
organizer_of(icalcomponent *c, char *buf, size_t n)
{
	icalproperty *p = c ? icalcomponent_get_first_property(c,
	    ICAL_ORGANIZER_PROPERTY) : NULL;

	if (p == NULL || addr_norm(icalproperty_get_organizer(p), buf, n))
		buf[0] = '\0';
}

static int
user_has(const struct user_conf *u, const char *addr)
{
	for (size_t i = 0; i < u->naddresses; i++)
		if (strcasecmp(u->addresses[i], addr) == 0)
			return 1;
	return 0;
}

/* The ATTENDEE of c whose address is addr, or NULL. */
static icalproperty *
find_attendee(icalcomponent *c, const char *addr)
{
	char a[ADDR_MAX];
	size_t n;
	icalproperty **v = props(c, ICAL_ATTENDEE_PROPERTY, &n), *hit = NULL;

	for (size_t i = 0; i < n && hit == NULL; i++)
		if (addr_norm(icalproperty_get_attendee(v[i]), a, sizeof a)
		    == 0 && strcmp(a, addr) == 0)
			hit = v[i];
	free(v);
	return hit;
}

/*
 * A point in time as UTC seconds, resolving TZID against the VTIMEZONEs
 * of root (how Outlook's "W. Europe Standard Time" gets a meaning).
 * Unknown zones count as floating: both sides of a comparison agree.
 */
static int64_t
when(icalcomponent *root, icalproperty *p, struct icaltimetype t)
{
	icaltimezone *z = NULL;
	icalparameter *tz;

	if (icaltime_is_null_time(t))
		return INT64_MIN;
	if (icaltime_is_utc(t))
		z = icaltimezone_get_utc_timezone();
	else if (!t.is_date && (tz = icalproperty_get_first_parameter(p,
	    ICAL_TZID_PARAMETER)) != NULL && icalparameter_get_tzid(tz))
		z = icalcomponent_get_timezone(root,
		    icalparameter_get_tzid(tz));
	return (int64_t)icaltime_as_timet_with_zone(t, z);
}

static int64_t
start_of(icalcomponent *root, icalcomponent *c)
{
	icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_DTSTART_PROPERTY);

	return p ? when(root, p, icalproperty_get_dtstart(p)) : INT64_MIN;
}

/* How long one instance lasts, in seconds (DTEND, DURATION or DUE). */
static int64_t
length_of(icalcomponent *root, icalcomponent *c)
{
	icalproperty *p;
	int64_t s = start_of(root, c);

	if ((p = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY)))
		return when(root, p, icalproperty_get_dtend(p)) - s;
	if ((p = icalcomponent_get_first_property(c, ICAL_DUE_PROPERTY)))
		return when(root, p, icalproperty_get_due(p)) - s;
	if ((p = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY)))
		return icaldurationtype_as_int(icalproperty_get_duration(p));
	return 0;
}

/* The instance key of c: "" for a master, else its RECURRENCE-ID. */
static void
rid_key(icalcomponent *root, icalcomponent *c, char *buf, size_t n)
{
	icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_RECURRENCEID_PROPERTY);
	struct icaltimetype t;

	buf[0] = '\0';
	if (p == NULL)
		return;
	t = icalproperty_get_recurrenceid(p);
	if (t.is_date)
		snprintf(buf, n, "%04d%02d%02d", t.year, t.month, t.day);
	else
		snprintf(buf, n, "%lld", (long long)when(root, p, t));
}

/* The component of root for instance key rid ("" = master), or NULL. */
static icalcomponent *
find_instance(icalcomponent *root, const char *rid)
{
	char k[RID_MAX];
	size_t n;
	icalcomponent **v = kids(root, ICAL_ANY_COMPONENT, &n), *hit = NULL;

	for (size_t i = 0; i < n && hit == NULL; i++) {
		rid_key(root, v[i], k, sizeof k);
		if (strcmp(k, rid) == 0)
			hit = v[i];
	}
	free(v);
	return hit;
}

/* The EXDATE of master that removes instance rid, or NULL. */
static icalproperty *
find_exdate(icalcomponent *root, icalcomponent *master, const char *rid)
{
	size_t n;
	icalproperty **v = props(master, ICAL_EXDATE_PROPERTY, &n), *hit = NULL;
	char k[RID_MAX];

	for (size_t i = 0; i < n && hit == NULL; i++) {
		struct icaltimetype t = icalproperty_get_exdate(v[i]);

		if (t.is_date)
			snprintf(k, sizeof k, "%04d%02d%02d", t.year, t.month,
			    t.day);
		else
			snprintf(k, sizeof k, "%lld",
			    (long long)when(root, v[i], t));
		if (strcmp(k, rid) == 0)
			hit = v[i];
	}
	free(v);
	return hit;
}

/* DTSTAMP as "YYYYMMDDTHHMMSSZ", "" when missing. */
static void
stamp_of(icalcomponent *c, char *buf, size_t n)
{
	struct icaltimetype t = icalcomponent_get_dtstamp(c);

	if (icaltime_is_null_time(t))
		buf[0] = '\0';
	else
		snprintf(buf, n, "%04d%02d%02dT%02d%02d%02dZ", t.year,
		    t.month, t.day, t.hour, t.minute, t.second);
}

/* RFC 5546 2.1.5: SEQUENCE first, then DTSTAMP. */
static int
version_cmp(int64_t sa, const char *da, int64_t sb, const char *db)
{
	int c;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	c = strcmp(da, db);
	return c < 0 ? -1 : c > 0;
}

static const char *
stale_reason(int64_t sa, int64_t sb, int c)
{
	if (c == 0)
		return "duplicate";
	return sa < sb ? "stale-sequence" : "stale-dtstamp";
}

/* A copy of src renamed to name, parameters and value kept. */
static icalproperty *
prop_retype(icalproperty *src, const char *name)
{
	char *s = icalproperty_as_ical_string_r(src), *line = NULL;
	icalproperty *p = NULL;
	size_t len;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (asprintf(&line, "%s%s", name, s + strcspn(s, ";:")) >= 0)
		p = icalproperty_new_from_string(line);
	free(line);
	free(s);
	return p;
}

static void
replace_prop(icalcomponent *c, icalproperty_kind k, icalproperty *p)
{
	remove_props(c, k);
	if (p)
		icalcomponent_add_property(c, p);
}

/*
 * A new override for the instance named by ridp (a RECURRENCE-ID from the
 * message), cloned from master: same length, no recurrence of its own.
 * The caller owns the result.
 */
static icalcomponent *
make_instance(icalcomponent *root, icalcomponent *master, icalproperty *ridp)
{
	icalcomponent *c = icalcomponent_new_clone(master);
	icalproperty *p;
	int64_t len = length_of(root, master);
	struct icaltimetype t = icalproperty_get_recurrenceid(ridp);

	remove_props(c, ICAL_RRULE_PROPERTY);
	remove_props(c, ICAL_RDATE_PROPERTY);
	remove_props(c, ICAL_EXDATE_PROPERTY);
	remove_props(c, ICAL_EXRULE_PROPERTY);
	replace_prop(c, ICAL_RECURRENCEID_PROPERTY,
	    icalproperty_new_clone(ridp));
	replace_prop(c, ICAL_DTSTART_PROPERTY, prop_retype(ridp, "DTSTART"));
	if (icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY) ||
	    icalcomponent_get_first_property(c, ICAL_DUE_PROPERTY)) {
		int due = icalcomponent_get_first_property(c,
		    ICAL_DTEND_PROPERTY) == NULL;
		icalproperty *q = icalproperty_new_clone(ridp);

		/* Same TZID and value type as the RECURRENCE-ID. */
		t = icaltime_add(t, icaldurationtype_from_int((int)len));
		icalproperty_set_recurrenceid(q, t);
		p = prop_retype(q, due ? "DUE" : "DTEND");
		icalproperty_free(q);
		replace_prop(c, due ? ICAL_DUE_PROPERTY : ICAL_DTEND_PROPERTY,
		    p);
	}
	return c;
}

/* ---- parsing the message ------------------------------------------------- */

static int
is_sched_name(const char *s, size_t n)
{
	return (n == 6 && strncasecmp(s, "VEVENT", 6) == 0) ||
	    (n == 5 && strncasecmp(s, "VTODO", 5) == 0) ||
	    (n == 8 && strncasecmp(s, "VJOURNAL", 8) == 0);
}

/*
 * Looks at the raw text before libical does: libical frees components
 * recursively, so nesting depth must be bounded, and 50,000 overrides
 * should cost a scan, not a parse.
 */
static int
prescan(struct itip *it, const char *s, size_t len)
{
	size_t depth = 0, ncomp = 0, i = 0;

	while (i < len) {
		const char *l = s + i;
		const char *nl = memchr(l, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - l) : len - i;

		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		if (ll >= 6 && strncasecmp(l, "BEGIN:", 6) == 0) {
			if (++depth > ITIP_MAX_DEPTH)
				return result(it, ITIP_REFUSED, "too-deep",
				    "components nested more than %d deep",
				    ITIP_MAX_DEPTH), -1;
			if (is_sched_name(l + 6, ll - 6) &&
			    ++ncomp > ITIP_MAX_COMPONENTS)
				return result(it, ITIP_REFUSED,
				    "too-many-overrides", "more than %d "
				    "instances in one message",
				    ITIP_MAX_COMPONENTS), -1;
		} else if (ll >= 4 && strncasecmp(l, "END:", 4) == 0 &&
		    depth > 0)
			depth--;
		i += (nl ? (size_t)(nl - l) : len - i) + 1;
	}
	return 0;
}


/* Checks what every method needs; -1 with the result set on refusal. */
static int
check_components(struct itip *it)
{
	icalcomponent *k;
	char *keys;

	for (k = icalcomponent_get_first_component(it->msg,
	    ICAL_ANY_COMPONENT); k; k = icalcomponent_get_next_component(
	    it->msg, ICAL_ANY_COMPONENT))
		if (!is_sched(k) &&
		    icalcomponent_isa(k) != ICAL_VTIMEZONE_COMPONENT)
			return result(it, ITIP_REFUSED,
			    "unsupported-component", "the message carries a "
			    "%s", icalcomponent_kind_to_string(
			    icalcomponent_isa(k))), -1;
	it->mcomps = kids(it->msg, ICAL_ANY_COMPONENT, &it->nmcomps);
	if (it->nmcomps == 0)
		return result(it, ITIP_REFUSED, "no-component", "no VEVENT, "
		    "VTODO or VJOURNAL in the message"), -1;
	it->kind = icalcomponent_isa(it->mcomps[0]);
	keys = calloc(it->nmcomps, RID_MAX);
	if (keys == NULL)
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "out of memory"), -1;
	for (size_t i = 0; i < it->nmcomps; i++) {
		icalcomponent *c = it->mcomps[i];
		const char *uid = icalcomponent_get_uid(c);
		char *rk = keys + i * RID_MAX;

		if (icalcomponent_isa(c) != it->kind) {
			result(it, ITIP_REFUSED, "ical-invalid",
			    "components of more than one type");
			goto fail;
		}
		if (uid == NULL || *uid == '\0') {
			result(it, ITIP_REFUSED, "no-uid",
			    "a component without UID");
			goto fail;
		}
		if (it->uid == NULL)
			it->uid = uid;
		else if (strcmp(uid, it->uid) != 0) {
			result(it, ITIP_REFUSED, "several-uids",
			    "one message carries several UIDs");
			goto fail;
		}
		rid_key(it->msg, c, rk, RID_MAX);
		if (rk[0] == '\0' && it->mmaster) {
			result(it, ITIP_REFUSED, "ical-invalid",
			    "two components without RECURRENCE-ID");
			goto fail;
		}
		if (rk[0] == '\0')
			it->mmaster = c;
		for (size_t j = 0; j < i; j++)
			if (strcmp(rk, keys + j * RID_MAX) == 0) {
				result(it, ITIP_REFUSED, "ical-invalid",
				    "one instance twice in the message");
				goto fail;
			}
	}
	free(keys);
	snprintf(it->res->uid, sizeof it->res->uid, "%s", it->uid);
	organizer_of(it->mmaster ? it->mmaster : it->mcomps[0], it->morg,
	    sizeof it->morg);
	return 0;
fail:
	free(keys);
	return -1;
}

static int
parse(struct itip *it, const char *ical, size_t len)
{
	char *text, why[160];
	const char *e;

	if (len > ICAL_MAX_OBJECT)
		return result(it, ITIP_REFUSED, "too-large", "the calendar "
		    "part has %zu bytes; at most %u are accepted", len,
		    ICAL_MAX_OBJECT), -1;
	if (memchr(ical, '\0', len))
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "NUL byte in the calendar data"), -1;
	if (prescan(it, ical, len))
		return -1;
	if (ical_prescan(ical, len, ITIP_MAX_DEPTH, why, sizeof why) != 0)
		return result(it, ITIP_REFUSED, "ical-invalid", "%s", why), -1;
	text = strndup(ical, len);
	if (text == NULL)
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "out of memory"), -1;
	it->msg = icalparser_parse_string(text);
	free(text);
	if (it->msg == NULL ||
	    icalcomponent_isa(it->msg) != ICAL_VCALENDAR_COMPONENT)
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "not an iCalendar object (RFC 5545)"), -1;
	if ((e = ical_parse_error(it->msg)) != NULL)
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "not valid iCalendar: %s", e), -1;
	it->method = icalcomponent_get_method(it->msg);
	if (it->method == ICAL_METHOD_NONE)
		return result(it, ITIP_REFUSED, "no-method",
		    "no METHOD: not an iTIP message"), -1;
	snprintf(it->res->method, sizeof it->res->method, "%s",
	    icalproperty_method_to_string(it->method));
	return check_components(it);
}

/* ---- the stored side ----------------------------------------------------- */

/* Finds the stored object with the message's UID; -1 on store error. */
static int
load_old(struct itip *it)
{
	int rc;

	if (it->user_id == 0)
		return 0;
	rc = store_object_find_uid(it->st, it->user_id, it->uid, &it->old, 1);
	if (rc == STORE_NOTFOUND) {
		memset(&it->old, 0, sizeof it->old);
		return 0;
	}
	if (rc)
		return -1;
	it->old_root = icalparser_parse_string(it->old.data);
	if (it->old_root == NULL) {
		log_error("itip stored object unreadable collection=%lld "
		    "name=%s", (long long)it->old.collection_id,
		    it->old.name);
		return -1;
	}
	it->omaster = find_instance(it->old_root, "");
	{
		size_t n;
		icalcomponent **v = kids(it->old_root, ICAL_ANY_COMPONENT,
		    &n);

		organizer_of(it->omaster ? it->omaster : n ? v[0] : NULL,
		    it->oorg, sizeof it->oorg);
		free(v);
	}
	it->res->collection_id = it->old.collection_id;
	snprintf(it->res->href_name, sizeof it->res->href_name, "%s",
	    it->old.name);
	return 0;
}

/* RFC 5546 3.2: only the stored organizer may change a known event. */
static int
organizer_ok(struct itip *it)
{
	if (it->morg[0] == '\0')
		return result(it, ITIP_REFUSED, "no-organizer", "%s without "
		    "ORGANIZER", it->res->method), 0;
	if (it->old.id == 0 || strcmp(it->oorg, it->morg) == 0)
		return 1;
	if (it->oorg[0] == '\0')
		return result(it, ITIP_REFUSED, "organizer-changed", "UID is "
		    "already in the calendar as the user's own event, not an "
		    "invitation from %s", it->morg), 0;
	return result(it, ITIP_REFUSED, "organizer-changed", "the stored "
	    "event's organizer is %s, the message's %s", it->oorg,
	    it->morg), 0;
}

/* DESIGN.md step 8: new_events_from = known. 1 yes, 0 no, -1 error. */
static int
organizer_known(struct itip *it)
{
	const struct user_conf *u = it->u;
	const char *at = strrchr(it->morg, '@');

	if (u->policy.new_events_from != GATE_NEW_KNOWN ||
	    user_has(u, it->morg))
		return 1;
	for (size_t i = 0; i < u->nknown_senders; i++) {
		const char *k = u->known_senders[i];

		if (k[0] == '@' ? at && strcasecmp(at + 1, k + 1) == 0 :
		    strcasecmp(k, it->morg) == 0)
			return 1;
	}
	if (it->user_id == 0 || it->morg[0] == '\0')
		return 0;
	return store_itip_organizer_known(it->st, it->user_id, it->morg);
}

/* The last version applied for (attendee, rid), else that of comp. */
static int
last_version(struct itip *it, const char *attendee, const char *rid,
    icalcomponent *comp, int64_t *seq, char *stamp, size_t n)
{
	int rc = STORE_NOTFOUND;

	*seq = -1;
	stamp[0] = '\0';
	if (it->old.id) {
		rc = store_itip_last(it->st, it->old.id, attendee, rid, seq,
		    stamp, n);
		/* A new instance is as old as the series it comes from. */
		if (rc == STORE_NOTFOUND && rid[0] && attendee[0] == '\0' &&
		    comp == it->omaster)
			rc = store_itip_last(it->st, it->old.id, "", "", seq,
			    stamp, n);
		if (rc < 0)
			return -1;
	}
	if (rc == STORE_NOTFOUND && comp) {
		*seq = icalcomponent_get_sequence(comp);
		stamp_of(comp, stamp, n);
	}
	return 0;
}

static int
add_rec(struct itip *it, const char *attendee, const char *rid,
    icalcomponent *c)
{
	struct itip_rec *r, *nv;

	nv = realloc(it->recs, (it->nrecs + 1) * sizeof *nv);
	if (nv == NULL)
		return -1;
	it->recs = nv;
	r = &it->recs[it->nrecs++];
	snprintf(r->attendee, sizeof r->attendee, "%s", attendee);
	snprintf(r->rid, sizeof r->rid, "%s", rid);
	r->seq = icalcomponent_get_sequence(c);
	stamp_of(c, r->stamp, sizeof r->stamp);
	return 0;
}

/* ---- keeping the user's state -------------------------------------------- */

static char *
props_text(icalcomponent *c, icalproperty_kind k)
{
	size_t n, len = 1;
	icalproperty **v = props(c, k, &n);
	char *s = calloc(1, 1), *ns;

	for (size_t i = 0; i < n && s; i++) {
		char *t = icalproperty_get_value_as_string_r(v[i]);

		ns = t ? realloc(s, len + strlen(t) + 1) : NULL;
		if (ns == NULL) {
			free(s);
			s = NULL;
		} else {
			s = ns;
			memcpy(s + len - 1, t, strlen(t));
			len += strlen(t) + 1;
			s[len - 2] = '\n';
			s[len - 1] = '\0';
		}
		free(t);
	}
	free(v);
	return s;
}

static int
same_props(icalcomponent *a, icalcomponent *b, icalproperty_kind k)
{
	char *x = props_text(a, k), *y = props_text(b, k);
	int same = x && y && strcmp(x, y) == 0;

	free(x);
	free(y);
	return same;
}

/*
 * RFC 6638 3.2.8 in spirit: did the organizer change when, where or how
 * often? new (in new_root) against old (in the stored object); for an
 * instance that has no override yet, old is the master and the time to
 * compare with is the instance's own RECURRENCE-ID.
 */
static int
significant(struct itip *it, icalcomponent *nc, icalcomponent *new_root,
    icalcomponent *oc, int from_master)
{
	int64_t ns = start_of(new_root, nc), os;
	icalproperty *rp = icalcomponent_get_first_property(nc,
	    ICAL_RECURRENCEID_PROPERTY);

	if (from_master && rp)
		os = when(new_root, rp, icalproperty_get_recurrenceid(rp));
	else
		os = start_of(it->old_root, oc);
	if (ns != os || length_of(new_root, nc) !=
	    length_of(it->old_root, oc))
		return 1;
	if (!same_props(nc, oc, ICAL_LOCATION_PROPERTY))
		return 1;
	if (from_master)
		return 0;
	return !same_props(nc, oc, ICAL_RRULE_PROPERTY) ||
	    !same_props(nc, oc, ICAL_RDATE_PROPERTY) ||
	    !same_props(nc, oc, ICAL_EXDATE_PROPERTY);
}

static int
is_user_x(icalproperty *p)
{
	const char *n = icalproperty_get_property_name(p);

	return n && strncasecmp(n, "X-", 2) == 0 &&
	    strncasecmp(n, "X-LIC-", 6) != 0;
}

static int
has_x_named(icalproperty **v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(icalproperty_get_property_name(v[i]), name)
		    == 0)
			return 1;
	return 0;
}

/* Keeps the user's X- properties that the organizer's copy lacks. */
static void
keep_x(icalcomponent *dst, icalcomponent *src, icalcomponent *oc)
{
	size_t nd, no;
	icalproperty **d = props(src, ICAL_X_PROPERTY, &nd);
	icalproperty **o = props(oc, ICAL_X_PROPERTY, &no);

	for (size_t i = 0; i < no; i++)
		if (is_user_x(o[i]) && !has_x_named(d, nd,
		    icalproperty_get_property_name(o[i])))
			icalcomponent_add_property(dst,
			    icalproperty_new_clone(o[i]));
	free(d);
	free(o);
}

static void
keep_partstat(struct itip *it, icalcomponent *dst, int sig,
    icalcomponent *oc)
{
	size_t n;
	icalproperty **v = props(dst, ICAL_ATTENDEE_PROPERTY, &n);
	char a[ADDR_MAX];

	for (size_t i = 0; i < n; i++) {
		icalproperty *oa;
		icalparameter *ps;

		if (addr_norm(icalproperty_get_attendee(v[i]), a, sizeof a) ||
		    !user_has(it->u, a) || (oa = find_attendee(oc, a)) == NULL)
			continue;
		ps = icalproperty_get_first_parameter(oa,
		    ICAL_PARTSTAT_PARAMETER);
		icalproperty_remove_parameter_by_kind(v[i],
		    ICAL_PARTSTAT_PARAMETER);
		if (sig)
			icalproperty_add_parameter(v[i],
			    icalparameter_new_partstat(
			    ICAL_PARTSTAT_NEEDSACTION));
		else if (ps)
			icalproperty_add_parameter(v[i],
			    icalparameter_new_clone(ps));
	}
	free(v);
}

/*
 * Carries the user's own state from oc (stored) into dst (the organizer's
 * new version). src is the message component dst was cloned from, in
 * src_root, for the comparisons.
 */
static void
keep_user_state(struct itip *it, icalcomponent *dst, icalcomponent *src,
    icalcomponent *src_root, icalcomponent *oc, int from_master)
{
	size_t n;
	icalcomponent **al;
	int sig;

	if (oc == NULL)
		return;
	sig = significant(it, src, src_root, oc, from_master);
	keep_x(dst, src, oc);
	remove_kids(dst, ICAL_VALARM_COMPONENT);
	al = kids(oc, ICAL_VALARM_COMPONENT, &n);
	for (size_t i = 0; i < n; i++)
		icalcomponent_add_component(dst,
		    icalcomponent_new_clone(al[i]));
	free(al);
	if (icalcomponent_get_first_property(oc, ICAL_CATEGORIES_PROPERTY)) {
		icalproperty **c;

		remove_props(dst, ICAL_CATEGORIES_PROPERTY);
		c = props(oc, ICAL_CATEGORIES_PROPERTY, &n);
		for (size_t i = 0; i < n; i++)
			icalcomponent_add_property(dst,
			    icalproperty_new_clone(c[i]));
		free(c);
	}
	keep_partstat(it, dst, sig, oc);
}

/* Adds the message's VTIMEZONEs that out does not have yet. */
static void
merge_timezones(icalcomponent *out, icalcomponent *msg)
{
	size_t n;
	icalcomponent **v = kids(msg, ICAL_VTIMEZONE_COMPONENT, &n);

	for (size_t i = 0; i < n; i++) {
		icalproperty *p = icalcomponent_get_first_property(v[i],
		    ICAL_TZID_PROPERTY);
		const char *id = p ? icalproperty_get_tzid(p) : NULL;

		if (id && icalcomponent_get_timezone(out, id) == NULL)
			icalcomponent_add_component(out,
			    icalcomponent_new_clone(v[i]));
	}
	free(v);
}

/* ---- building the result ------------------------------------------------- */

static icalcomponent *
clone_message(struct itip *it)
{
	icalcomponent *c = icalcomponent_new_clone(it->msg);

	/* RFC 4791 4.1: a stored calendar object carries no METHOD. */
	remove_props(c, ICAL_METHOD_PROPERTY);
	return c;
}

/* Compares two serialisations, ignoring DTSTAMP lines. */
static int
same_but_dtstamp(const char *a, const char *b)
{
	for (;;) {
		while (strncmp(a, "DTSTAMP", 7) == 0 && strchr(a, '\n'))
			a = strchr(a, '\n') + 1;
		while (strncmp(b, "DTSTAMP", 7) == 0 && strchr(b, '\n'))
			b = strchr(b, '\n') + 1;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		{
			const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
			size_t la = ea ? (size_t)(ea - a) + 1 : strlen(a);
			size_t lb = eb ? (size_t)(eb - b) + 1 : strlen(b);

			if (la != lb || memcmp(a, b, la) != 0)
				return 0;
			a += la;
			b += lb;
		}
	}
}

/* A safe object name for uid: the UID itself when harmless, else a hash. */
static void
object_name(const char *uid, int attempt, char *buf, size_t n)
{
	size_t len = strlen(uid);
	int safe = len > 0 && len <= NAME_MAX_UID && uid[0] != '.';
	unsigned char h[32];

	for (size_t i = 0; safe && i < len; i++)
		safe = isalnum((unsigned char)uid[i]) ||
		    strchr("@._-+", uid[i]) != NULL;
	if (safe && attempt == 0) {
		snprintf(buf, n, "%s.ics", uid);
		return;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, uid, len, h) != 0)
		memset(h, 0, sizeof h);
	snprintf(buf, n, "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x"
	    "%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4], h[5], h[6],
	    h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
	if (attempt > 1)
		snprintf(buf + strlen(buf), n - strlen(buf), "-%d", attempt);
	snprintf(buf + strlen(buf), n - strlen(buf), ".ics");
}

/* Chooses the collection and a free name for a new object. */
static int
place_new(struct itip *it)
{
	const char *cal = it->u->calendar ? it->u->calendar : "default";
	struct store_collection col;
	struct store_object o;
	int rc;

	it->coll_id = 0;
	object_name(it->uid, 0, it->name, sizeof it->name);
	if (it->user_id) {
		rc = store_collection_get(it->st, it->user_id, cal, &col);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			it->coll_id = col.id;
			rc = col.is_calendar;
			store_collection_clear(&col);
			if (!rc)
				return result(it, ITIP_REFUSED,
				    "calendar-missing", "\"%s\" is not a "
				    "calendar collection", cal), 1;
		}
	}
	for (int i = 1; it->coll_id && i < 10; i++) {
		rc = store_object_get(it->st, it->coll_id, it->name, 0, &o);
		store_object_clear(&o);
		if (rc == STORE_NOTFOUND)
			break;
		if (rc)
			return -1;
		object_name(it->uid, i, it->name, sizeof it->name);
	}
	it->res->collection_id = it->coll_id;
	snprintf(it->res->href_name, sizeof it->res->href_name, "%s",
	    it->name);
	return 0;
}

/*
 * Serialises it->out, compares it with the stored object and checks it
 * like a PUT. Sets the result: APPLIED with reason, or NOOP "unchanged".
 * Returns -1 on a store error.
 */
static int
finish(struct itip *it, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
finish(struct itip *it, const char *reason, const char *fmt, ...)
{
	char err[200], *old_text;
	va_list ap;
	int same;

	it->out_text = icalcomponent_as_ical_string_r(it->out);
	if (it->out_text == NULL)
		return result(it, ITIP_REFUSED, "ical-invalid",
		    "cannot serialise the merged object");
	if (it->old_root) {
		old_text = icalcomponent_as_ical_string_r(it->old_root);
		same = old_text && same_but_dtstamp(old_text, it->out_text);
		free(old_text);
		if (same) {
			free(it->out_text);
			it->out_text = NULL;
			return result(it, ITIP_NOOP, "unchanged", "the stored "
			    "event already says what the %s says",
			    it->res->method);
		}
	}
	if (ical_object_check(it->out_text, strlen(it->out_text),
	    &it->out_meta, err, sizeof err)) {
		free(it->out_text);
		it->out_text = NULL;
		return result(it, ITIP_REFUSED, "ical-invalid", "the merged "
		    "object is not valid: %s", err);
	}
	if (it->old.id == 0 && place_new(it))
		return it->res->outcome == ITIP_REFUSED ? 0 : -1;
	it->res->outcome = ITIP_APPLIED;
	snprintf(it->res->reason, sizeof it->res->reason, "%s", reason);
	va_start(ap, fmt);
	vsnprintf(it->res->detail, sizeof it->res->detail, fmt, ap);
	va_end(ap);
	return 0;
}

/* ---- REQUEST, PUBLISH, ADD ----------------------------------------------- */

/* A new UID: the whole message becomes the object. */
static int
create(struct itip *it)
{
	char rid[RID_MAX];
	int rc;

	if (it->method == ICAL_METHOD_ADD)
		return result(it, ITIP_REFUSED, "unknown-uid", "ADD for an "
		    "event that is not in the calendar");
	rc = organizer_known(it);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return result(it, ITIP_REFUSED, "unknown-organizer", "%s is "
		    "not in known_senders and organizes no event in the "
		    "user's calendars (new_events_from = known)",
		    it->morg[0] ? it->morg : "a message without ORGANIZER");
	it->out = clone_message(it);
	for (size_t i = 0; i < it->nmcomps; i++) {
		rid_key(it->msg, it->mcomps[i], rid, sizeof rid);
		if (add_rec(it, "", rid, it->mcomps[i]))
			return -1;
	}
	return finish(it, "created", "new %s from %s",
	    it->method == ICAL_METHOD_PUBLISH ? "published event" :
	    "invitation", it->morg);
}

/* The organizer's full new version replaces the stored one. */
static int
replace_all(struct itip *it)
{
	size_t n;
	icalcomponent **v;
	char rid[RID_MAX];

	it->out = clone_message(it);
	v = kids(it->out, ICAL_ANY_COMPONENT, &n);
	for (size_t i = 0; i < n; i++) {
		icalcomponent *oc;
		int from_master = 0;

		rid_key(it->out, v[i], rid, sizeof rid);
		oc = find_instance(it->old_root, rid);
		if (oc == NULL && rid[0]) {
			oc = it->omaster;
			from_master = 1;
		}
		keep_user_state(it, v[i], v[i], it->out, oc, from_master);
		if (add_rec(it, "", rid, v[i])) {
			free(v);
			return -1;
		}
	}
	free(v);
	return finish(it, "updated", "%s updated the event", it->morg);
}

/* RFC 5546 3.2.4 ADD: a new instance, as RDATE plus its own override. */
static int
add_instance(struct itip *it, icalcomponent *mc)
{
	icalcomponent *master = find_instance(it->out, ""), *c;
	icalproperty *ds = icalcomponent_get_first_property(mc,
	    ICAL_DTSTART_PROPERTY), *rp;
	char rid[RID_MAX];

	if (master == NULL || ds == NULL)
		return 0;
	rp = prop_retype(ds, "RECURRENCE-ID");
	if (rp == NULL)
		return 0;
	c = icalcomponent_new_clone(mc);
	icalcomponent_add_property(c, rp);
	rid_key(it->msg, c, rid, sizeof rid);
	if (find_instance(it->out, rid) ||
	    (rp = prop_retype(ds, "RDATE")) == NULL) {
		icalcomponent_free(c);
		return 0;
	}
	icalcomponent_add_property(master, rp);
	keep_user_state(it, c, mc, it->msg, it->omaster, 1);
	icalcomponent_add_component(it->out, c);
	return add_rec(it, "", rid, mc) ? -1 : 1;
}

/*
 * Applies those message instances that are newer than what is stored,
 * leaving the rest of the object alone (RFC 5546 3.2.2.4). first_skip
 * receives the reason the first skipped instance was not applied.
 */
static int
update_instances(struct itip *it, const char **first_skip)
{
	int applied = 0;
	char rid[RID_MAX], stamp[STAMP_MAX], mstamp[STAMP_MAX];

	it->out = icalcomponent_new_clone(it->old_root);
	merge_timezones(it->out, it->msg);
	for (size_t i = 0; i < it->nmcomps; i++) {
		icalcomponent *mc = it->mcomps[i], *oc, *dst, *cur;
		icalproperty *xp;
		int64_t seq, mseq = icalcomponent_get_sequence(mc);
		int c, from_master = 0, rc;

		rid_key(it->msg, mc, rid, sizeof rid);
		if (rid[0] == '\0') {
			if (it->method == ICAL_METHOD_ADD &&
			    (rc = add_instance(it, mc)) != 0) {
				if (rc < 0)
					return -1;
				applied++;
			}
			continue;
		}
		oc = find_instance(it->old_root, rid);
		if (oc == NULL) {
			oc = it->omaster;
			from_master = 1;
		}
		if (last_version(it, "", rid, oc, &seq, stamp, sizeof stamp))
			return -1;
		stamp_of(mc, mstamp, sizeof mstamp);
		c = version_cmp(mseq, mstamp, seq, stamp);
		if (c <= 0) {
			if (*first_skip == NULL)
				*first_skip = stale_reason(mseq, seq, c);
			continue;
		}
		dst = icalcomponent_new_clone(mc);
		keep_user_state(it, dst, mc, it->msg, oc, from_master);
		if ((cur = find_instance(it->out, rid)) != NULL) {
			icalcomponent_remove_component(it->out, cur);
			icalcomponent_free(cur);
		}
		/* An instance cancelled with cancel = delete comes back. */
		if ((cur = find_instance(it->out, "")) != NULL &&
		    (xp = find_exdate(it->out, cur, rid)) != NULL) {
			icalcomponent_remove_property(cur, xp);
			icalproperty_free(xp);
		}
		icalcomponent_add_component(it->out, dst);
		if (add_rec(it, "", rid, mc))
			return -1;
		applied++;
	}
	return applied;
}

static int
update(struct itip *it)
{
	const char *skip = NULL;
	char stamp[STAMP_MAX], mstamp[STAMP_MAX];
	int64_t seq, mseq;
	int c, n;

	if (it->mmaster && it->method != ICAL_METHOD_ADD) {
		if (it->omaster == NULL)
			return replace_all(it);
		if (last_version(it, "", "", it->omaster, &seq, stamp,
		    sizeof stamp))
			return -1;
		mseq = icalcomponent_get_sequence(it->mmaster);
		stamp_of(it->mmaster, mstamp, sizeof mstamp);
		c = version_cmp(mseq, mstamp, seq, stamp);
		if (c > 0)
			return replace_all(it);
		if (c < 0)
			return result(it, ITIP_NOOP, stale_reason(mseq, seq, c),
			    "the stored event is newer (SEQUENCE %lld, "
			    "DTSTAMP %s) than the message (SEQUENCE %lld, "
			    "DTSTAMP %s)", (long long)seq, stamp,
			    (long long)mseq, mstamp);
		skip = "duplicate";
	}
	/* Same master: the organizer may still have changed instances. */
	n = update_instances(it, &skip);
	if (n < 0)
		return -1;
	if (n == 0)
		return result(it, ITIP_NOOP, skip ? skip : "duplicate",
		    "%s: the stored event is as new as the message",
		    skip ? skip : "duplicate");
	return finish(it, "updated", "%s updated %d instance%s", it->morg, n,
	    n == 1 ? "" : "s");
}

static int
do_request(struct itip *it)
{
	if (it->method == ICAL_METHOD_PUBLISH) {
		it->scheduling = 0;
		/*
		 * Booking mails often PUBLISH without ORGANIZER: fine for a
		 * new event, but then nobody may change it by mail.
		 */
		if (it->morg[0] == '\0' && it->old.id == 0)
			return create(it);
		if (it->morg[0] == '\0')
			return result(it, ITIP_REFUSED, "no-organizer",
			    "a PUBLISH without ORGANIZER cannot change a "
			    "stored event");
	}
	if (!organizer_ok(it))
		return 0;
	if (it->old.id == 0)
		return create(it);
	return update(it);
}

/* ---- CANCEL -------------------------------------------------------------- */

static void
mark_cancelled(icalcomponent *c, int64_t seq)
{
	icalcomponent_set_status(c, ICAL_STATUS_CANCELLED);
	if (seq > icalcomponent_get_sequence(c))
		icalcomponent_set_sequence(c, (int)seq);
}

/* Cancels one instance in it->out; 1 when something changed. */
static int
cancel_instance(struct itip *it, icalcomponent *mc, const char *rid)
{
	icalcomponent *cur = find_instance(it->out, rid);
	icalcomponent *master = find_instance(it->out, "");
	int64_t seq = icalcomponent_get_sequence(mc);
	icalproperty *rp = icalcomponent_get_first_property(mc,
	    ICAL_RECURRENCEID_PROPERTY);

	if (it->u->cancel == CONF_CANCEL_DELETE) {
		if (cur) {
			icalcomponent_remove_component(it->out, cur);
			icalcomponent_free(cur);
		}
		/* RFC 5545 3.8.5.1: the instance leaves the set. */
		if (master && !find_exdate(it->out, master, rid))
			icalcomponent_add_property(master,
			    prop_retype(rp, "EXDATE"));
		return 1;
	}
	if (cur == NULL && master == NULL)
		return 0;
	if (cur == NULL) {
		cur = make_instance(it->out, master, rp);
		remove_kids(cur, ICAL_VALARM_COMPONENT);
		icalcomponent_set_dtstamp(cur, icalcomponent_get_dtstamp(mc));
		icalcomponent_add_component(it->out, cur);
	}
	mark_cancelled(cur, seq);
	return 1;
}

static int
do_cancel(struct itip *it)
{
	char rid[RID_MAX], stamp[STAMP_MAX], mstamp[STAMP_MAX];
	int64_t seq, mseq;
	size_t n, applied = 0;
	icalcomponent **v;
	const char *skip = NULL;

	if (!organizer_ok(it))
		return 0;
	if (it->old.id == 0)
		return result(it, ITIP_NOOP, "unknown-uid", "CANCEL for an "
		    "event that is not in the calendar");
	it->out = icalcomponent_new_clone(it->old_root);
	/* New overrides and EXDATEs may name the message's TZIDs. */
	merge_timezones(it->out, it->msg);
	for (size_t i = 0; i < it->nmcomps; i++) {
		icalcomponent *mc = it->mcomps[i], *oc;

		rid_key(it->msg, mc, rid, sizeof rid);
		oc = find_instance(it->old_root, rid);
		if (oc == NULL)
			oc = it->omaster;
		if (last_version(it, "", rid, oc, &seq, stamp, sizeof stamp))
			return -1;
		mseq = icalcomponent_get_sequence(mc);
		stamp_of(mc, mstamp, sizeof mstamp);
		/* An equal version may cancel: CANCEL need not bump it. */
		if (version_cmp(mseq, mstamp, seq, stamp) < 0) {
			if (skip == NULL)
				skip = stale_reason(mseq, seq, -1);
			continue;
		}
		if (rid[0] == '\0') {
			if (it->u->cancel == CONF_CANCEL_DELETE) {
				it->delete_old = 1;
				return result(it, ITIP_APPLIED, "deleted",
				    "%s cancelled the event; deleted (cancel "
				    "= delete)", it->morg);
			}
			v = kids(it->out, ICAL_ANY_COMPONENT, &n);
			for (size_t j = 0; j < n; j++)
				mark_cancelled(v[j], mseq);
			free(v);
		} else if (!cancel_instance(it, mc, rid))
			continue;
		if (add_rec(it, "", rid, mc))
			return -1;
		applied++;
	}
	if (applied == 0)
		return result(it, ITIP_NOOP, skip ? skip : "unknown-instance",
		    "nothing to cancel");
	v = kids(it->out, ICAL_ANY_COMPONENT, &n);
	free(v);
	if (n == 0) {
		it->delete_old = 1;
		return result(it, ITIP_APPLIED, "deleted", "%s cancelled the "
		    "only instance the user had", it->morg);
	}
	return finish(it, it->mmaster ? "cancelled" : "cancelled-instance",
	    "%s cancelled %s", it->morg, it->mmaster ? "the event" :
	    "an instance");
}

/* ---- REPLY --------------------------------------------------------------- */

static void
copy_params(icalproperty *dst, icalproperty *src, icalparameter_kind k)
{
	icalparameter *p;

	icalproperty_remove_parameter_by_kind(dst, k);
	for (p = icalproperty_get_first_parameter(src, k); p;
	    p = icalproperty_get_next_parameter(src, k))
		icalproperty_add_parameter(dst, icalparameter_new_clone(p));
}

/* Does a DELEGATED-TO of some attendee of c name addr? */
static int
delegated_to(icalcomponent *c, const char *addr)
{
	size_t n;
	icalproperty **v = props(c, ICAL_ATTENDEE_PROPERTY, &n);
	icalparameter *p;
	int hit = 0;

	for (size_t i = 0; i < n && !hit; i++)
		for (p = icalproperty_get_first_parameter(v[i],
		    ICAL_DELEGATEDTO_PARAMETER); p && !hit;
		    p = icalproperty_get_next_parameter(v[i],
		    ICAL_DELEGATEDTO_PARAMETER)) {
			const char *d = icalparameter_get_delegatedto(p);
			char a[ADDR_MAX];

			hit = addr_norm(d, a, sizeof a) == 0 &&
			    strcmp(a, addr) == 0;
		}
	free(v);
	return hit;
}

/* RFC 5546 4.2.5: the delegate joins with DELEGATED-FROM the delegator. */
static void
add_delegates(icalcomponent *target, icalproperty *a, const char *from)
{
	icalparameter *p;
	char d[ADDR_MAX], m[ADDR_MAX + 8];

	for (p = icalproperty_get_first_parameter(a,
	    ICAL_DELEGATEDTO_PARAMETER); p; p = icalproperty_get_next_parameter(
	    a, ICAL_DELEGATEDTO_PARAMETER)) {
		icalproperty *na;

		if (addr_norm(icalparameter_get_delegatedto(p), d, sizeof d) ||
		    find_attendee(target, d))
			continue;
		snprintf(m, sizeof m, "mailto:%s", d);
		na = icalproperty_new_attendee(m);
		icalproperty_add_parameter(na, icalparameter_new_partstat(
		    ICAL_PARTSTAT_NEEDSACTION));
		snprintf(m, sizeof m, "mailto:%s", from);
		icalproperty_add_parameter(na,
		    icalparameter_new_delegatedfrom(m));
		icalcomponent_add_property(target, na);
	}
}

/* Applies one reply component; 1 applied, 0 skipped, -1 error. */
static int
reply_one(struct itip *it, icalcomponent *mc, const char **skip,
    int *strangers)
{
	icalproperty *a = icalcomponent_get_first_property(mc,
	    ICAL_ATTENDEE_PROPERTY), *ta;
	icalcomponent *target, *made = NULL;
	char addr[ADDR_MAX], rid[RID_MAX], stamp[STAMP_MAX], mstamp[STAMP_MAX];
	int64_t seq, mseq = icalcomponent_get_sequence(mc);
	int rc;

	if (a == NULL || addr_norm(icalproperty_get_attendee(a), addr,
	    sizeof addr)) {
		*skip = *skip ? *skip : "no-attendee";
		return 0;
	}
	rid_key(it->msg, mc, rid, sizeof rid);
	rc = store_itip_last(it->st, it->old.id, addr, rid, &seq, stamp,
	    sizeof stamp);
	if (rc < 0)
		return -1;
	stamp_of(mc, mstamp, sizeof mstamp);
	/* Replies may arrive out of order: never let an older one win. */
	if (rc == 0 && version_cmp(mseq, mstamp, seq, stamp) < 0) {
		*skip = *skip ? *skip : "stale-reply";
		return 0;
	}
	target = find_instance(it->out, rid);
	if (target == NULL && rid[0] && (target = find_instance(it->out, ""))) {
		made = make_instance(it->out, target,
		    icalcomponent_get_first_property(mc,
		    ICAL_RECURRENCEID_PROPERTY));
		target = made;
	}
	if (target == NULL) {
		*skip = *skip ? *skip : "unknown-instance";
		return 0;
	}
	ta = find_attendee(target, addr);
	if (ta == NULL && delegated_to(target, addr)) {
		ta = icalproperty_new_clone(a);
		icalcomponent_add_property(target, ta);
	}
	if (ta == NULL) {
		/* RFC 5546 2.1.5 party crasher: recorded, never added. */
		if (made)
			icalcomponent_free(made);
		(*strangers)++;
		*skip = *skip ? *skip : "attendee-unknown";
		return 0;
	}
	if (made)
		icalcomponent_add_component(it->out, made);
	copy_params(ta, a, ICAL_PARTSTAT_PARAMETER);
	copy_params(ta, a, ICAL_DELEGATEDTO_PARAMETER);
	copy_params(ta, a, ICAL_DELEGATEDFROM_PARAMETER);
	icalproperty_remove_parameter_by_kind(ta, ICAL_RSVP_PARAMETER);
	add_delegates(target, a, addr);
	return add_rec(it, addr, rid, mc) ? -1 : 1;
}

static int
do_reply(struct itip *it)
{
	const char *skip = NULL;
	int strangers = 0, applied = 0, rc, added;

	if (it->old.id == 0)
		return result(it, ITIP_REFUSED, "unknown-uid", "REPLY for an "
		    "event that is not in the calendar");
	if (!user_has(it->u, it->oorg))
		return result(it, ITIP_REFUSED, "not-organizer", "REPLY for "
		    "an event the user does not organize");
	/* Outlook omits ORGANIZER in replies: the stored one decides. */
	if (it->morg[0] && strcmp(it->morg, it->oorg) != 0)
		return result(it, ITIP_REFUSED, "organizer-changed", "the "
		    "reply names organizer %s, the stored event %s",
		    it->morg, it->oorg);
	it->out = icalcomponent_new_clone(it->old_root);
	merge_timezones(it->out, it->msg);
	for (size_t i = 0; i < it->nmcomps; i++) {
		rc = reply_one(it, it->mcomps[i], &skip, &strangers);
		if (rc < 0)
			return -1;
		applied += rc;
	}
	if (applied)
		return finish(it, "reply-applied", "%s replied",
		    it->from ? it->from : "an attendee");
	if (strangers) {
		char *text = icalcomponent_as_ical_string_r(it->msg);

		rc = text ? store_itip_proposal_add(it->st, it->user_id,
		    it->uid, "REPLY", it->from, text, "unknown-attendee",
		    it->dry_run, &added) : -1;
		free(text);
		if (rc)
			return -1;
		return result(it, ITIP_REFUSED, "attendee-unknown", "the "
		    "replying attendee is not invited; recorded, not added");
	}
	return result(it, ITIP_NOOP, skip ? skip : "duplicate",
	    "an as new or newer reply from this attendee was applied before");
}

/* ---- COUNTER, DECLINECOUNTER, REFRESH ------------------------------------ */

static int
do_proposal(struct itip *it)
{
	char *text;
	int rc, added;

	if (it->old.id == 0)
		return result(it, ITIP_REFUSED, "unknown-uid", "%s for an "
		    "event that is not in the calendar", it->res->method);
	if (it->method == ICAL_METHOD_COUNTER) {
		if (!user_has(it->u, it->oorg))
			return result(it, ITIP_REFUSED, "not-organizer",
			    "COUNTER for an event the user does not "
			    "organize");
	} else if (!organizer_ok(it))
		return 0;
	text = icalcomponent_as_ical_string_r(it->msg);
	if (text == NULL)
		return -1;
	rc = store_itip_proposal_add(it->st, it->user_id, it->uid,
	    it->res->method, it->from, text, "pending", it->dry_run, &added);
	free(text);
	if (rc)
		return -1;
	if (!added)
		return result(it, ITIP_NOOP, "duplicate", "this %s is already "
		    "pending", it->res->method);
	return result(it, ITIP_APPLIED, "proposal-pending", "%s from %s kept "
	    "as a pending proposal; the event is unchanged", it->res->method,
	    it->from ? it->from : "-");
}

/* ---- writing ------------------------------------------------------------- */

static int
write_recs(struct itip *it, int64_t object_id)
{
	for (size_t i = 0; i < it->nrecs; i++)
		if (store_itip_last_set(it->st, object_id,
		    it->recs[i].attendee, it->recs[i].rid, it->recs[i].seq,
		    it->recs[i].stamp))
			return -1;
	return 0;
}

static int
write_out(struct itip *it)
{
	const char *cal = it->u->calendar ? it->u->calendar : "default";
	struct store_object_meta meta;
	struct store_object o;
	int64_t coll = it->old.collection_id;
	const char *name = it->old.name;
	int rc;

	if (it->delete_old)
		return store_object_delete(it->st, it->old.collection_id,
		    it->old.name) ? -1 : 0;
	if (it->out_text == NULL)	/* no-op: only the bookkeeping */
		return it->old.id && it->res->outcome == ITIP_NOOP ?
		    write_recs(it, it->old.id) : 0;
	if (it->old.id == 0) {
		if (it->user_id == 0 && store_user_ensure(it->st,
		    it->u->name, &it->user_id))
			return -1;
		if (it->coll_id == 0 && store_collection_create(it->st,
		    it->user_id, cal, 1, NULL, &it->coll_id))
			return -1;
		coll = it->coll_id;
		name = it->name;
		it->res->collection_id = coll;
	}
	ical_object_meta(&it->out_meta, &meta);
	meta.scheduling = meta.scheduling && it->scheduling;
	/* With the instance digest, as a PUT stores it: calendar-query
	 * answers merged events without parsing them. */
	if (store_object_put_indexed(it->st, coll, name, it->out_text,
	    strlen(it->out_text), "text/calendar; charset=utf-8", &meta,
	    it->out_meta.instances, it->out_meta.instances_len, NULL))
		return -1;
	rc = store_object_get(it->st, coll, name, 0, &o);
	if (rc == 0)
		rc = write_recs(it, o.id);
	store_object_clear(&o);
	return rc ? -1 : 0;
}

/* ---- entry point --------------------------------------------------------- */

static int
decide(struct itip *it)
{
	if (load_old(it))
		return -1;
	if (it->old_root) {
		size_t n;
		icalcomponent **v = kids(it->old_root, ICAL_ANY_COMPONENT, &n);
		int same = n > 0 && icalcomponent_isa(v[0]) == it->kind;

		free(v);
		if (!same)
			return result(it, ITIP_REFUSED, "component-mismatch",
			    "the UID is stored as another component type");
	}
	switch (it->method) {
	case ICAL_METHOD_REQUEST:
	case ICAL_METHOD_PUBLISH:
	case ICAL_METHOD_ADD:
		return do_request(it);
	case ICAL_METHOD_CANCEL:
		return do_cancel(it);
	case ICAL_METHOD_REPLY:
		return do_reply(it);
	case ICAL_METHOD_COUNTER:
	case ICAL_METHOD_DECLINECOUNTER:
		return do_proposal(it);
	case ICAL_METHOD_REFRESH:
		return result(it, ITIP_NOOP, "refresh-unsupported", "REFRESH "
		    "recorded; answering it needs outbound scheduling");
	default:
		return result(it, ITIP_REFUSED, "method-unsupported",
		    "METHOD:%s is not an iTIP method calgate applies",
		    it->res->method);
	}
}

static void
log_result(const struct itip *it)
{
	char u[80], m[40], uid[120], r[80];
	enum log_level lv = it->dry_run ? LOG_DEBUG : LOG_INFO;

	log_msg(lv, "itip apply user=%s method=%s uid=%s outcome=%s "
	    "reason=%s%s", log_q(u, sizeof u, it->u->name),
	    log_q(m, sizeof m, it->res->method),
	    log_q(uid, sizeof uid, it->res->uid),
	    itip_outcome_name(it->res->outcome),
	    log_q(r, sizeof r, it->res->reason),
	    it->dry_run ? " dry_run=1" : "");
}

int
itip_apply(struct store *st, const struct user_conf *u, const char *from,
    const char *ical, size_t len, int dry_run, struct itip_result *res)
{
	struct itip it;
	int ret = 0, rc;

	memset(res, 0, sizeof *res);
	memset(&it, 0, sizeof it);
	it.st = st;
	it.u = u;
	it.from = from;
	it.dry_run = dry_run;
	it.res = res;
	it.scheduling = 1;
	if (parse(&it, ical, len))
		goto out;
	if (store_begin(st)) {
		ret = -1;
		goto out;
	}
	if (u->store_id > 0)
		it.user_id = u->store_id;
	else if ((rc = store_user_id(st, u->name, &it.user_id)) != 0 &&
	    rc != STORE_NOTFOUND)
		ret = -1;
	if (ret == 0)
		ret = decide(&it);
	if (ret == 0 && !dry_run && res->outcome != ITIP_REFUSED)
		ret = write_out(&it);
	if (ret == 0)
		ret = store_commit(st);
	else
		store_rollback(st);
out:
	if (ret == 0)
		log_result(&it);
	else
		log_error("itip apply user=%s store error", u->name);
	store_object_clear(&it.old);
	ical_object_clear(&it.out_meta);
	if (it.old_root)
		icalcomponent_free(it.old_root);
	if (it.out)
		icalcomponent_free(it.out);
	if (it.msg)
		icalcomponent_free(it.msg);
	free(it.out_text);
	free(it.mcomps);
	free(it.recs);
	return ret;
}
