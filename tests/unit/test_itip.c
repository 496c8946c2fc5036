/*
 * tests/unit/test_itip.c: the iTIP merge engine, table-driven. Each
 * scenario starts a fresh store in a temp dir and applies a list of
 * messages (fixtures in tests/data/itip/, modelled on real Google,
 * Outlook/Exchange, Apple and Zoom invitations). After every step it
 * checks the outcome, that sync-collection from the previous token
 * reports exactly the changed object (or nothing for a no-op), and the
 * stored object against an expected one, compared after normalising
 * DTSTAMP and the order of properties, parameters and components.
 *
 * ITIP_WRITE_EXPECTED=1 rewrites the expected files from what the engine
 * stores (then review them with git diff).
 */
#include <libical/ical.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/file.h"
#include "server/config.h"
#include "server/ical.h"
#include "server/itip.h"
#include "server/log.h"
#include "server/store.h"
#include "tests/unit/check.h"

#define DATA	"tests/data/itip/"

static char tmpdir[] = "/tmp/calgate-itip-XXXXXX";
static int ndirs;
static struct store *st;
static char dbpath[700];

static char addr0[] = "alice@example.net", addr1[] = "a.smith@example.net";
static char *alice_addrs[] = { addr0, addr1 };
static char known0[] = "@contoso.example";
static char *known[] = { known0 };
static char uname[] = "alice", ucal[] = "default";
static struct user_conf alice;

/* ---- helpers ------------------------------------------------------------- */

/* A fixture, whole (server/file.c's reader, bounded at 64 MiB). */
static char *
slurp(const char *path, size_t *len)
{
	char err[300];

	return file_read(path, 64u << 20, len, err, sizeof err);
}

struct sb {
	char *s;
	size_t len, cap;
};

static void
sb_add(struct sb *b, const char *t)
{
	size_t n = strlen(t);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
	memcpy(b->s + b->len, t, n + 1);
	b->len += n;
}

static int
by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
join_sorted(char **v, size_t n, const char *sep)
{
	struct sb b = { 0 };

	if (n)
		qsort(v, n, sizeof *v, by_str);
	sb_add(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_add(&b, sep);
		sb_add(&b, v[i]);
		free(v[i]);
	}
	free(v);
	return b.s;
}

static char *
canon_prop(icalproperty *p)
{
	char **v = NULL, *name, *val, *params, *out;
	size_t n = 0;

	for (icalparameter *q = icalproperty_get_first_parameter(p,
	    ICAL_ANY_PARAMETER); q; q = icalproperty_get_next_parameter(p,
	    ICAL_ANY_PARAMETER)) {
		v = realloc(v, (n + 1) * sizeof *v);
		v[n++] = icalparameter_as_ical_string_r(q);
	}
	params = join_sorted(v, n, ";");
	name = icalproperty_get_property_name_r(p);
	val = icalproperty_get_value_as_string_r(p);
	if (asprintf(&out, "%s%s%s:%s", name, n ? ";" : "", params,
	    val ? val : "") < 0)
		abort();
	free(name);
	free(val);
	free(params);
	return out;
}

/* A component as sorted lines: DTSTAMP and METHOD left out. */
static char *
canon_comp(icalcomponent *c)
{
	char **v = NULL, *body, *out;
	size_t n = 0;

	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_ANY_PROPERTY); p; p = icalcomponent_get_next_property(c,
	    ICAL_ANY_PROPERTY)) {
		if (icalproperty_isa(p) == ICAL_DTSTAMP_PROPERTY ||
		    icalproperty_isa(p) == ICAL_METHOD_PROPERTY ||
		    icalproperty_isa(p) == ICAL_XLICERROR_PROPERTY)
			continue;
		v = realloc(v, (n + 1) * sizeof *v);
		v[n++] = canon_prop(p);
	}
	for (icalcomponent *k = icalcomponent_get_first_component(c,
	    ICAL_ANY_COMPONENT); k; k = icalcomponent_get_next_component(c,
	    ICAL_ANY_COMPONENT)) {
		v = realloc(v, (n + 1) * sizeof *v);
		v[n++] = canon_comp(k);
	}
	body = join_sorted(v, n, "\n");
	if (asprintf(&out, "BEGIN:%s\n%s\nEND:%s", icalcomponent_kind_to_string(
	    icalcomponent_isa(c)), body, icalcomponent_kind_to_string(
	    icalcomponent_isa(c))) < 0)
		abort();
	free(body);
	return out;
}

static char *
canon(const char *text)
{
	icalcomponent *c = icalparser_parse_string(text);
	char *s;

	if (c == NULL)
		return strdup("(unparseable)");
	s = canon_comp(c);
	icalcomponent_free(c);
	return s;
}

static void
show_diff(const char *want, const char *got)
{
	char a[600], b[600], cmd[1300];
	FILE *f;

	snprintf(a, sizeof a, "%s/want.txt", tmpdir);
	snprintf(b, sizeof b, "%s/got.txt", tmpdir);
	if ((f = fopen(a, "w"))) {
		fputs(want, f);
		fclose(f);
	}
	if ((f = fopen(b, "w"))) {
		fputs(got, f);
		fclose(f);
	}
	snprintf(cmd, sizeof cmd, "diff -u %s %s >&2", a, b);
	if (system(cmd) < 0)
		perror("diff");
}

/* Everything in the database, as text, for before/after comparisons. */
static char *
dump_db(void)
{
	static const char *const tables[] = { "meta", "users", "collections",
		"objects", "changes", "props", "itip_replies",
		"itip_proposals", "imip_log", "accounts" };
	struct sb b = { 0 };
	sqlite3 *db;

	sb_add(&b, "");
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL))
		return b.s;
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		char sql[128];
		sqlite3_stmt *s;

		snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1, 2",
		    tables[i]);
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL))
			continue;
		sb_add(&b, tables[i]);
		sb_add(&b, ":\n");
		while (sqlite3_step(s) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(s); c++) {
				const char *t = (const char *)
				    sqlite3_column_text(s, c);

				sb_add(&b, t ? t : "NULL");
				sb_add(&b, "|");
			}
			sb_add(&b, "\n");
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return b.s;
}

static void
fresh_store(int with_user)
{
	char dir[600], err[256];

	store_close(st);
	snprintf(dir, sizeof dir, "%s/s%d", tmpdir, ndirs++);
	st = store_open(dir, err, sizeof err);
	if (st == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(2);
	}
	snprintf(dbpath, sizeof dbpath, "%s/calgate.db", dir);
	memset(&alice, 0, sizeof alice);
	alice.name = uname;
	alice.addresses = alice_addrs;
	alice.naddresses = 2;
	alice.calendar = ucal;
	alice.cancel = CONF_CANCEL_MARK;
	alice.store_id = 0;
	if (with_user && store_user_ensure(st, "alice", &alice.store_id))
		exit(2);
}

static int64_t
user_id(void)
{
	int64_t id = 0;

	if (alice.store_id)
		return alice.store_id;
	return store_user_id(st, "alice", &id) ? 0 : id;
}

/* The default calendar's id and sync token (0, 0 when missing). */
static void
calendar(int64_t *id, int64_t *token)
{
	struct store_collection c;

	*id = *token = 0;
	if (user_id() && store_collection_get(st, user_id(), "default", &c)
	    == 0) {
		*id = c.id;
		*token = c.synctoken;
		store_collection_clear(&c);
	}
}

struct changes {
	int n;
	char name[256];
	int deleted;
};

static int
on_change(void *arg, const char *name, int deleted, int64_t seq)
{
	struct changes *c = arg;

	(void)seq;
	c->n++;
	snprintf(c->name, sizeof c->name, "%s", name);
	c->deleted = deleted;
	return 0;
}

/* Stores file as the user's CalDAV client would (a PUT). */
static void
put_file(const char *file, const char *name)
{
	char path[256], err[200];
	size_t len;
	char *data;
	struct ical_object o;
	struct store_object_meta m;
	int64_t coll, tok;

	snprintf(path, sizeof path, DATA "%s", file);
	data = slurp(path, &len);
	check(data != NULL, "read %s", path);
	if (data == NULL)
		return;
	if (user_id() == 0)
		store_user_ensure(st, "alice", &alice.store_id);
	calendar(&coll, &tok);
	if (coll == 0)
		store_collection_create(st, user_id(), "default", 1, NULL,
		    &coll);
	check(ical_object_check(data, len, &o, err, sizeof err) == 0,
	    "%s is a valid object: %s", file, err);
	ical_object_meta(&o, &m);
	check(store_object_put(st, coll, name, data, len,
	    "text/calendar; charset=utf-8", &m, NULL) == 0, "put %s", file);
	ical_object_clear(&o);
	free(data);
}

/* ---- looking into stored objects ----------------------------------------- */

static char *
stored(const char *name)
{
	struct store_object o;
	int64_t coll, tok;
	char *d;

	calendar(&coll, &tok);
	if (store_object_get(st, coll, name, 1, &o))
		return NULL;
	d = o.data;
	o.data = NULL;
	store_object_clear(&o);
	return d;
}

/* The VEVENT with this RECURRENCE-ID value ("" = master). */
static icalcomponent *
instance(icalcomponent *root, const char *rid)
{
	for (icalcomponent *c = icalcomponent_get_first_component(root,
	    ICAL_ANY_COMPONENT); c; c = icalcomponent_get_next_component(root,
	    ICAL_ANY_COMPONENT)) {
		icalproperty *p = icalcomponent_get_first_property(c,
		    ICAL_RECURRENCEID_PROPERTY);

		if (icalcomponent_isa(c) == ICAL_VTIMEZONE_COMPONENT)
			continue;
		if (p == NULL ? rid[0] == '\0' : strcmp(icaltime_as_ical_string(
		    icalproperty_get_recurrenceid(p)), rid) == 0)
			return c;
	}
	return NULL;
}

static const char *
partstat(icalcomponent *c, const char *addr)
{
	if (c == NULL)
		return "(no component)";
	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_ATTENDEE_PROPERTY); p; p = icalcomponent_get_next_property(c,
	    ICAL_ATTENDEE_PROPERTY)) {
		icalparameter *q;

		if (strcasecmp(icalproperty_get_attendee(p) + 7, addr))
			continue;
		q = icalproperty_get_first_parameter(p,
		    ICAL_PARTSTAT_PARAMETER);
		return q ? icalparameter_enum_to_string(
		    (int)icalparameter_get_partstat(q)) : "NEEDS-ACTION";
	}
	return "(not attendee)";
}

static const char *
prop_value(icalcomponent *c, const char *name)
{
	if (c == NULL)
		return "";
	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_ANY_PROPERTY); p; p = icalcomponent_get_next_property(c,
	    ICAL_ANY_PROPERTY))
		if (strcmp(icalproperty_get_property_name(p), name) == 0)
			return icalproperty_get_value_as_string(p);
	return "";
}

/* Every CATEGORIES value, each followed by a comma. */
static const char *
categories(icalcomponent *c)
{
	static char buf[256];

	buf[0] = '\0';
	for (icalproperty *p = icalcomponent_get_first_property(c,
	    ICAL_CATEGORIES_PROPERTY); p; p = icalcomponent_get_next_property(
	    c, ICAL_CATEGORIES_PROPERTY))
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s,",
		    icalproperty_get_categories(p));
	return buf;
}

static int
count_kids(icalcomponent *c, icalcomponent_kind k)
{
	int n = 0;

	if (c == NULL)
		return -1;
	for (icalcomponent *x = icalcomponent_get_first_component(c, k); x;
	    x = icalcomponent_get_next_component(c, k))
		n++;
	return n;
}

static const char *
alarm_trigger(icalcomponent *c)
{
	icalcomponent *a = c ? icalcomponent_get_first_component(c,
	    ICAL_VALARM_COMPONENT) : NULL;

	return a ? prop_value(a, "TRIGGER") : "(none)";
}

/* ---- per-step checks ----------------------------------------------------- */

typedef void (*after_fn)(icalcomponent *root);

static void
chk_kept_local(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(strcmp(partstat(m, "alice@example.net"), "ACCEPTED") == 0,
	    "description-only update keeps alice's ACCEPTED (got %s)",
	    partstat(m, "alice@example.net"));
	check(count_kids(m, ICAL_VALARM_COMPONENT) == 1 &&
	    strcmp(alarm_trigger(m), "-PT10M") == 0,
	    "alice's own 10-minute alarm kept (got %s)", alarm_trigger(m));
	check(strcmp(categories(m), "Work,Berlin,") == 0,
	    "categories kept (got %s)", categories(m));
	check(strcmp(prop_value(m, "X-MOZ-LASTACK"), "20261201T091500Z")
	    == 0, "client X- property kept");
	check(strstr(prop_value(m, "DESCRIPTION"), "budget review") != NULL,
	    "organizer's new description applied");
	check(strcmp(prop_value(m, "SEQUENCE"), "1") == 0, "SEQUENCE 1");
}

static void
chk_moved(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(strcmp(partstat(m, "alice@example.net"), "NEEDS-ACTION") == 0,
	    "moved meeting resets alice's PARTSTAT (got %s)",
	    partstat(m, "alice@example.net"));
	check(strcmp(alarm_trigger(m), "-PT10M") == 0,
	    "alarm still alice's own after the move");
	check(strcmp(prop_value(m, "DTSTART"), "20261207T110000") == 0,
	    "the meeting moved to 11:00 (got %s)", prop_value(m, "DTSTART"));
}

static void
chk_instance_moved(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");
	icalcomponent *o = instance(root, "20261214T110000");

	check(count_kids(root, ICAL_VEVENT_COMPONENT) == 2,
	    "master plus one override");
	check(m && strcmp(prop_value(m, "DTSTART"), "20261207T110000") == 0 &&
	    strcmp(prop_value(m, "RRULE"), "FREQ=WEEKLY;BYDAY=MO") == 0 &&
	    strcmp(prop_value(m, "SEQUENCE"), "2") == 0,
	    "master untouched by the instance update");
	check(o && strcmp(prop_value(o, "DTSTART"), "20261214T140000") == 0,
	    "override moved to 14:00");
	check(strcmp(alarm_trigger(o), "-PT10M") == 0,
	    "new override inherits alice's alarm from the master");
	check(strcmp(partstat(o, "alice@example.net"), "NEEDS-ACTION") == 0,
	    "moved instance asks alice again");
}

static void
chk_instance_cancelled(icalcomponent *root)
{
	icalcomponent *o = instance(root, "20261221T110000");

	check(count_kids(root, ICAL_VEVENT_COMPONENT) == 3,
	    "master plus two overrides");
	check(o && strcmp(prop_value(o, "STATUS"), "CANCELLED") == 0,
	    "cancelled instance marked STATUS:CANCELLED");
	check(strcmp(prop_value(instance(root, ""), "STATUS"), "CONFIRMED")
	    == 0, "series itself still confirmed");
}

static void
chk_added(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");
	icalcomponent *o = instance(root, "20261216T110000");

	check(strcmp(prop_value(m, "RDATE"), "20261216T110000") == 0,
	    "ADD puts the new instance in RDATE (got %s)",
	    prop_value(m, "RDATE"));
	check(o && strcmp(prop_value(o, "SUMMARY"), "Weekly sync (extra)")
	    == 0, "ADD keeps the instance's own properties");
}

static void
chk_all_cancelled(icalcomponent *root)
{
	int n = 0, c = 0;

	for (icalcomponent *x = icalcomponent_get_first_component(root,
	    ICAL_VEVENT_COMPONENT); x; x = icalcomponent_get_next_component(
	    root, ICAL_VEVENT_COMPONENT)) {
		n++;
		c += strcmp(prop_value(x, "STATUS"), "CANCELLED") == 0;
	}
	check(n > 0 && n == c, "every component cancelled (%d of %d)", c, n);
}

static void
chk_exdate(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(count_kids(root, ICAL_VEVENT_COMPONENT) == 1,
	    "cancel=delete leaves no override");
	check(strcmp(prop_value(m, "EXDATE"), "20261221T110000") == 0,
	    "cancel=delete adds an EXDATE (got %s)", prop_value(m, "EXDATE"));
}

static void
chk_readded(icalcomponent *root)
{
	icalcomponent *o = instance(root, "20261221T110000");

	check(strcmp(prop_value(instance(root, ""), "EXDATE"), "") == 0,
	    "re-invited instance loses its EXDATE");
	check(o && strcmp(prop_value(o, "DTSTART"), "20261221T150000") == 0,
	    "re-invited instance stored as an override");
}

static void
chk_bob_declined(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(strcmp(partstat(m, "bob@example.org"), "DECLINED") == 0,
	    "bob's later DECLINED applied");
	check(strcmp(partstat(m, "carol@example.com"), "NEEDS-ACTION") == 0,
	    "carol untouched");
}

static void
chk_carol(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(strcmp(partstat(m, "carol@example.com"), "TENTATIVE") == 0,
	    "Outlook reply without ORGANIZER applied for carol");
	check(strcmp(partstat(m, "bob@example.org"), "DECLINED") == 0,
	    "bob still DECLINED (his older ACCEPTED was ignored)");
}

static void
chk_bob_instance(icalcomponent *root)
{
	icalcomponent *o = instance(root, "20261215T150000Z");

	check(o != NULL, "instance reply created an override");
	check(strcmp(partstat(o, "bob@example.org"), "DECLINED") == 0,
	    "bob declined one instance");
	check(strcmp(partstat(o, "carol@example.com"), "TENTATIVE") == 0,
	    "the override keeps carol's answer");
	check(strcmp(prop_value(o, "DTSTART"), "20261215T150000Z") == 0 &&
	    strcmp(prop_value(o, "DTEND"), "20261215T160000Z") == 0,
	    "override placed at its instance (got %s - %s)",
	    prop_value(o, "DTSTART"), prop_value(o, "DTEND"));
	check(strcmp(prop_value(o, "RRULE"), "") == 0, "override has no RRULE");
}

static void
chk_no_mallory(icalcomponent *root)
{
	check(strcmp(partstat(instance(root, ""), "mallory@evil.example"),
	    "(not attendee)") == 0, "stranger not added");
}

static void
chk_delegated(icalcomponent *root)
{
	icalcomponent *m = instance(root, "");

	check(strcmp(partstat(m, "bob@example.org"), "DELEGATED") == 0,
	    "bob delegated");
	check(strcmp(partstat(m, "dave@example.org"), "NEEDS-ACTION") == 0,
	    "the delegate joins as NEEDS-ACTION");
}

static void
chk_dave(icalcomponent *root)
{
	check(strcmp(partstat(instance(root, ""), "dave@example.org"),
	    "ACCEPTED") == 0, "the delegate's reply applied");
}

/* ---- scenarios ----------------------------------------------------------- */

#define CHANGED		1
#define DELETED		(-1)
#define NOTHING		0

struct step {
	const char *file;	/* "put:FILE": the user's client stores FILE */
	enum itip_outcome outcome;
	const char *reason;
	int change;		/* CHANGED, DELETED or NOTHING */
	const char *expect;	/* expected/NAME, "=" the message, or NULL */
	after_fn after;
};

struct scenario {
	const char *name;
	int with_user;		/* user row exists before the first step */
	enum conf_cancel cancel;
	int known;		/* new_events_from = known */
	struct step steps[16];
};

static const struct scenario scenarios[] = {
	{ "google weekly series, user edits, updates, cancel (mark)", 0,
	  CONF_CANCEL_MARK, 0, {
		{ "google-request.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "google-request.ics", ITIP_NOOP, "duplicate", NOTHING,
		  "google-request.ics", NULL },
		{ "put:google-local.ics", 0, NULL, CHANGED, NULL, NULL },
		{ "google-request-desc.ics", ITIP_APPLIED, "updated", CHANGED,
		  "google-2-desc.ics", chk_kept_local },
		{ "google-request-desc.ics", ITIP_NOOP, "duplicate", NOTHING,
		  NULL, NULL },
		{ "google-request.ics", ITIP_NOOP, "stale-sequence", NOTHING,
		  NULL, NULL },
		{ "google-request-moved.ics", ITIP_APPLIED, "updated", CHANGED,
		  "google-3-moved.ics", chk_moved },
		{ "google-instance-moved.ics", ITIP_APPLIED, "updated",
		  CHANGED, "google-4-instance.ics", chk_instance_moved },
		{ "google-request-moved.ics", ITIP_NOOP, "duplicate", NOTHING,
		  NULL, NULL },
		{ "google-instance-moved.ics", ITIP_NOOP, "duplicate", NOTHING,
		  NULL, NULL },
		{ "google-instance-cancel.ics", ITIP_APPLIED,
		  "cancelled-instance", CHANGED, "google-5-instcancel.ics",
		  chk_instance_cancelled },
		{ "google-add.ics", ITIP_APPLIED, "updated", CHANGED, NULL,
		  chk_added },
		{ "google-add.ics", ITIP_NOOP, "duplicate", NOTHING, NULL,
		  NULL },
		{ "google-cancel.ics", ITIP_APPLIED, "cancelled", CHANGED,
		  "google-6-cancel.ics", chk_all_cancelled },
		{ "google-cancel.ics", ITIP_NOOP, "unchanged", NOTHING, NULL,
		  NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
	{ "google series with cancel = delete", 1, CONF_CANCEL_DELETE, 0, {
		{ "google-request-moved.ics", ITIP_APPLIED, "created", CHANGED,
		  "=", NULL },
		{ "google-instance-cancel.ics", ITIP_APPLIED,
		  "cancelled-instance", CHANGED, NULL, chk_exdate },
		{ "google-instance-cancel.ics", ITIP_NOOP, "unchanged",
		  NOTHING, NULL, NULL },
		{ "google-request.ics", ITIP_NOOP, "stale-sequence", NOTHING,
		  NULL, NULL },
		{ "google-instance-readd.ics", ITIP_APPLIED, "updated",
		  CHANGED, NULL, chk_readded },
		{ "google-cancel.ics", ITIP_APPLIED, "deleted", DELETED, NULL,
		  NULL },
		{ "google-cancel.ics", ITIP_NOOP, "unknown-uid", NOTHING, NULL,
		  NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
	{ "Outlook with Windows time zone, hijack refused, cancel", 1,
	  CONF_CANCEL_MARK, 0, {
		{ "outlook-request.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "outlook-hijack.ics", ITIP_REFUSED, "organizer-changed",
		  NOTHING, "outlook-request.ics", NULL },
		{ "outlook-cancel.ics", ITIP_APPLIED, "cancelled", CHANGED,
		  NULL, chk_all_cancelled },
		{ "outlook-request.ics", ITIP_NOOP, "stale-sequence", NOTHING,
		  NULL, NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
	{ "real-world invitations round-trip", 1, CONF_CANCEL_MARK, 0, {
		{ "outlook-allday.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "apple-request.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "zoom-request.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "publish.ics", ITIP_APPLIED, "created", CHANGED, "=", NULL },
		{ "publish.ics", ITIP_NOOP, "duplicate", NOTHING, NULL, NULL },
		{ "rrule-huge.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "rrule-endless.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
	{ "alice organizes: replies, stranger, counter, delegation", 1,
	  CONF_CANCEL_MARK, 0, {
		{ "put:alice-own-event.ics", 0, NULL, CHANGED, NULL, NULL },
		{ "reply-bob-declined.ics", ITIP_APPLIED, "reply-applied",
		  CHANGED, NULL, chk_bob_declined },
		{ "reply-bob-accepted.ics", ITIP_NOOP, "stale-reply", NOTHING,
		  NULL, NULL },
		{ "reply-carol-outlook.ics", ITIP_APPLIED, "reply-applied",
		  CHANGED, NULL, chk_carol },
		{ "reply-carol-outlook.ics", ITIP_NOOP, "unchanged", NOTHING,
		  NULL, NULL },
		{ "reply-stranger.ics", ITIP_REFUSED, "attendee-unknown",
		  NOTHING, NULL, chk_no_mallory },
		{ "reply-bob-instance.ics", ITIP_APPLIED, "reply-applied",
		  CHANGED, "alice-replies.ics", chk_bob_instance },
		{ "counter-bob.ics", ITIP_APPLIED, "proposal-pending", NOTHING,
		  NULL, NULL },
		{ "counter-bob.ics", ITIP_NOOP, "duplicate", NOTHING, NULL,
		  NULL },
		{ "reply-bob-delegated.ics", ITIP_APPLIED, "reply-applied",
		  CHANGED, NULL, chk_delegated },
		{ "reply-dave-delegate.ics", ITIP_APPLIED, "reply-applied",
		  CHANGED, NULL, chk_dave },
		{ "google-request.ics", ITIP_APPLIED, "created", CHANGED, NULL,
		  NULL },
		{ "reply-bob-declined.ics", ITIP_NOOP, "stale-reply", NOTHING,
		  NULL, NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
	{ "new_events_from = known", 1, CONF_CANCEL_MARK, 1, {
		{ "apple-request.ics", ITIP_REFUSED, "unknown-organizer",
		  NOTHING, NULL, NULL },
		{ "outlook-request.ics", ITIP_APPLIED, "created", CHANGED,
		  NULL, NULL },
		{ "outlook-cancel.ics", ITIP_APPLIED, "cancelled", CHANGED,
		  NULL, NULL },
		{ "put:apple-older.ics", 0, NULL, CHANGED, NULL, NULL },
		{ "apple-request.ics", ITIP_APPLIED, "created", CHANGED, "=",
		  NULL },
		{ "zoom-request.ics", ITIP_REFUSED, "unknown-organizer",
		  NOTHING, NULL, NULL },
		{ NULL, 0, NULL, 0, NULL, NULL } } },
};

static void
after_step(const struct scenario *sc, const struct step *s,
    const struct itip_result *r, const char *msg, int64_t tok_before)
{
	int64_t coll, tok;
	struct changes ch = { 0 };
	char *data = NULL, path[300];

	calendar(&coll, &tok);
	if (s->change == NOTHING) {
		check(tok == tok_before, "%s: %s: no-op keeps the sync token",
		    sc->name, s->file);
		return;
	}
	check(tok > tok_before, "%s: %s: sync token moved", sc->name,
	    s->file);
	check(store_changes_since(st, coll, tok_before, on_change, &ch) == 0,
	    "%s: changes since", sc->name);
	check(ch.n == 1 && strcmp(ch.name, r->href_name) == 0 &&
	    ch.deleted == (s->change == DELETED),
	    "%s: %s: sync-collection reports exactly %s (n=%d name=%s)",
	    sc->name, s->file, r->href_name, ch.n, ch.name);
	if (s->change == DELETED)
		return;
	data = stored(r->href_name);
	check(data != NULL, "%s: %s: GET finds %s", sc->name, s->file,
	    r->href_name);
	if (data == NULL)
		return;
	check(strstr(data, "METHOD:") == NULL, "%s: METHOD stripped",
	    sc->name);
	if (s->expect) {
		char *want_text, *a, *b;

		if (strcmp(s->expect, "=") == 0)
			want_text = strdup(msg);
		else {
			snprintf(path, sizeof path, DATA "%s%s",
			    strstr(s->expect, "google-request") == s->expect ||
			    strstr(s->expect, "outlook-request") == s->expect
			    ? "" : "expected/", s->expect);
			if (getenv("ITIP_WRITE_EXPECTED") &&
			    strncmp(path, DATA "expected/", 25) == 0) {
				FILE *f = fopen(path, "wb");

				if (f) {
					fputs(data, f);
					fclose(f);
				}
			}
			want_text = slurp(path, NULL);
		}
		a = canon(want_text ? want_text : "");
		b = canon(data);
		check(strcmp(a, b) == 0, "%s: %s: stored object as expected "
		    "(%s)", sc->name, s->file, s->expect);
		if (strcmp(a, b) != 0)
			show_diff(a, b);
		free(a);
		free(b);
		free(want_text);
	}
	if (s->after) {
		icalcomponent *root = icalparser_parse_string(data);

		check(root != NULL, "stored object parses");
		if (root) {
			s->after(root);
			icalcomponent_free(root);
		}
	}
	free(data);
}

/* Also runs each step dry first: same decision, database unchanged. */
static void
run_scenario(const struct scenario *sc)
{
	char href[256] = "";

	fresh_store(sc->with_user);
	alice.cancel = sc->cancel;
	if (sc->known) {
		alice.policy.new_events_from = GATE_NEW_KNOWN;
		alice.known_senders = known;
		alice.nknown_senders = 1;
	}
	for (const struct step *s = sc->steps; s->file; s++) {
		struct itip_result dry, r;
		char path[300], *msg, *before, *after;
		int64_t coll, tok;
		size_t len;

		calendar(&coll, &tok);
		if (strncmp(s->file, "put:", 4) == 0) {
			struct itip_result fake = { 0 };

			snprintf(fake.href_name, sizeof fake.href_name, "%s",
			    href[0] ? href : "seed.ics");
			if (strcmp(s->file + 4, "apple-older.ics") == 0)
				snprintf(fake.href_name,
				    sizeof fake.href_name, "older.ics");
			put_file(s->file + 4, fake.href_name);
			after_step(sc, s, &fake, "", tok);
			continue;
		}
		snprintf(path, sizeof path, DATA "%s", s->file);
		msg = slurp(path, &len);
		check(msg != NULL, "read %s", path);
		if (msg == NULL)
			continue;
		before = dump_db();
		check(itip_apply(st, &alice, "x@example.invalid", msg, len, 1,
		    &dry) == 0, "%s: %s: dry run", sc->name, s->file);
		after = dump_db();
		check(strcmp(before, after) == 0, "%s: %s: dry run wrote "
		    "nothing", sc->name, s->file);
		free(before);
		free(after);
		check(itip_apply(st, &alice, "x@example.invalid", msg, len, 0,
		    &r) == 0, "%s: %s: apply", sc->name, s->file);
		check(r.outcome == s->outcome && strcmp(r.reason, s->reason)
		    == 0, "%s: %s: want %s/%s, got %s/%s (%s)", sc->name,
		    s->file, itip_outcome_name(s->outcome), s->reason,
		    itip_outcome_name(r.outcome), r.reason, r.detail);
		check(dry.outcome == r.outcome && strcmp(dry.reason, r.reason)
		    == 0 && strcmp(dry.href_name, r.href_name) == 0,
		    "%s: %s: dry run decided the same (%s/%s %s)", sc->name,
		    s->file, itip_outcome_name(dry.outcome), dry.reason,
		    dry.href_name);
		if (r.outcome == ITIP_APPLIED && s->change != NOTHING)
			snprintf(href, sizeof href, "%s", r.href_name);
		after_step(sc, s, &r, msg, tok);
		free(msg);
	}
}

/* ---- hostile input ------------------------------------------------------- */

static char *
many_overrides(int n)
{
	struct sb b = { 0 };
	char line[512];

	sb_add(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\n"
	    "METHOD:REQUEST\r\n");
	sb_add(&b, "BEGIN:VEVENT\r\nUID:flood@x.example\r\nDTSTAMP:"
	    "20261202T100000Z\r\nDTSTART:20270101T000000Z\r\n"
	    "RRULE:FREQ=MINUTELY\r\n"
	    "ORGANIZER:mailto:dana@corp.example.com\r\nEND:VEVENT\r\n");
	/* Small overrides, so that 50,000 stay under the size limit. */
	for (int i = 1; i < n; i++) {
		snprintf(line, sizeof line, "BEGIN:VEVENT\r\nUID:flood@x.e"
		    "xample\r\nRECURRENCE-ID:%04d%02d%02dT%02d%02d00Z\r\n"
		    "END:VEVENT\r\n", 2027 + i / 44640, 1 + i / 1440 % 31 /
		    31, 1 + i / 1440 % 31, i / 60 % 24, i % 60);
		sb_add(&b, line);
	}
	sb_add(&b, "END:VCALENDAR\r\n");
	return b.s;
}

static char *
deep_nesting(int depth)
{
	struct sb b = { 0 };

	sb_add(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\n"
	    "METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:deep@x.example\r\n"
	    "DTSTAMP:20261202T100000Z\r\nDTSTART:20270101T000000Z\r\n"
	    "ORGANIZER:mailto:dana@corp.example.com\r\n");
	for (int i = 0; i < depth; i++)
		sb_add(&b, "BEGIN:VALARM\r\n");
	for (int i = 0; i < depth; i++)
		sb_add(&b, "END:VALARM\r\n");
	sb_add(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n");
	return b.s;
}

static void
hostile_one(const char *what, const char *msg, size_t len,
    enum itip_outcome want, const char *reason)
{
	struct itip_result r;
	char *before = dump_db(), *after;
	clock_t t0 = clock();
	double secs;

	check(itip_apply(st, &alice, "dana@corp.example.com", msg, len, 0,
	    &r) == 0, "%s: apply returns 0", what);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	check(r.outcome == want && strcmp(r.reason, reason) == 0,
	    "%s: want %s/%s, got %s/%s (%s)", what, itip_outcome_name(want),
	    reason, itip_outcome_name(r.outcome), r.reason, r.detail);
	check(r.detail[0] != '\0', "%s: a human reason", what);
	check(secs < 10, "%s: bounded time (%.1fs)", what, secs);
	after = dump_db();
	if (want == ITIP_REFUSED)
		check(strcmp(before, after) == 0, "%s: store unchanged", what);
	free(before);
	free(after);
}

static void
hostile_file(const char *file, enum itip_outcome want, const char *reason)
{
	char path[300], *msg;
	size_t len;

	snprintf(path, sizeof path, DATA "%s", file);
	msg = slurp(path, &len);
	check(msg != NULL, "read %s", path);
	if (msg)
		hostile_one(file, msg, len, want, reason);
	free(msg);
}

static void
run_hostile(void)
{
	char *m;
	static const char garbage[] = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n"
	    "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:notadate\r\nEND:VEVENT\r\n"
	    "END:VCALENDAR\r\n";
	static const char nomethod[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "PRODID:-//x//x//EN\r\nBEGIN:VEVENT\r\nUID:nomethod@x\r\n"
	    "DTSTAMP:20261202T100000Z\r\nDTSTART:20270101T000000Z\r\n"
	    "ORGANIZER:mailto:dana@corp.example.com\r\nEND:VEVENT\r\n"
	    "END:VCALENDAR\r\n";
	static const char nul[] = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\0x";
	static const char fb[] = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "PRODID:-//x//x//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\n"
	    "UID:fb@x\r\nDTSTAMP:20261202T100000Z\r\nORGANIZER:mailto:"
	    "dana@corp.example.com\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n";

	fresh_store(1);
	hostile_file("no-uid.ics", ITIP_REFUSED, "no-uid");
	hostile_file("several-uids.ics", ITIP_REFUSED, "several-uids");
	m = many_overrides(50000);
	hostile_one("50,000 overrides", m, strlen(m), ITIP_REFUSED,
	    "too-many-overrides");
	{
		char *w = m;

		/* The same with bare LF line ends. */
		for (char *r = m; *r; r++)
			if (*r != '\r')
				*w++ = *r;
		*w = '\0';
	}
	hostile_one("50,000 overrides, LF", m, strlen(m), ITIP_REFUSED,
	    "too-many-overrides");
	free(m);
	m = deep_nesting(100000);
	hostile_one("100,000 nested VALARMs", m, strlen(m), ITIP_REFUSED,
	    "too-deep");
	free(m);
	hostile_one("bad DTSTART", garbage, sizeof garbage - 1, ITIP_REFUSED,
	    "ical-invalid");
	hostile_one("no METHOD", nomethod, sizeof nomethod - 1, ITIP_REFUSED,
	    "no-method");
	hostile_one("NUL byte", nul, sizeof nul - 1, ITIP_REFUSED,
	    "ical-invalid");
	hostile_one("VFREEBUSY", fb, sizeof fb - 1, ITIP_REFUSED,
	    "unsupported-component");
	hostile_one("empty", "", 0, ITIP_REFUSED, "ical-invalid");
	/* At the cap: accepted, and still fast (no quadratic blow-up). */
	m = many_overrides(ITIP_MAX_COMPONENTS);
	hostile_one("1,000 overrides", m, strlen(m), ITIP_APPLIED, "created");
	hostile_one("1,000 overrides again", m, strlen(m), ITIP_NOOP,
	    "duplicate");
	free(m);
}

/* The fixture with every `from` replaced by `to`; caller frees. */
static char *
edit(const char *file, const char *from, const char *to)
{
	char path[300], *orig, *t, *p;
	struct sb b = { 0 };

	snprintf(path, sizeof path, DATA "%s", file);
	orig = t = slurp(path, NULL);
	if (t == NULL) {
		check(0, "read %s", path);
		return strdup("");
	}
	sb_add(&b, "");
	while (from && (p = strstr(t, from)) != NULL) {
		*p = '\0';
		sb_add(&b, t);
		sb_add(&b, to);
		t = p + strlen(from);
	}
	sb_add(&b, t);
	free(orig);
	return b.s;
}

static int
apply_str(const char *text, struct itip_result *r)
{
	return itip_apply(st, &alice, "x@example.invalid", text,
	    strlen(text), 0, r);
}

static int
want(const struct itip_result *r, enum itip_outcome o, const char *reason)
{
	return r->outcome == o && strcmp(r->reason, reason) == 0;
}

struct props_count {
	int pending, strangers;
};

static int
count_props(void *arg, const struct store_itip_proposal *p)
{
	struct props_count *c = arg;

	if (!strcmp(p->state, "pending") && !strcmp(p->method, "COUNTER") &&
	    strstr(p->data, "two hours"))
		c->pending++;
	if (!strcmp(p->state, "unknown-attendee") &&
	    strstr(p->data, "mallory"))
		c->strangers++;
	return 0;
}

static int
sql_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == 0 &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == 0) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

/* Proposals, refusals that need the stored state, and where things go. */
static void
run_misc(void)
{
	struct itip_result r;
	struct props_count pc = { 0, 0 };
	char *m;

	fresh_store(1);
	put_file("alice-own-event.ics", "retro.ics");
	m = edit("counter-bob.ics", "METHOD:COUNTER", "METHOD:REFRESH");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_NOOP,
	    "refresh-unsupported"), "REFRESH recorded as a no-op (%s)",
	    r.reason);
	free(m);
	m = edit("counter-bob.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED,
	    "proposal-pending"), "COUNTER kept pending");
	free(m);
	for (int i = 0; i < 2; i++) {
		m = edit("reply-stranger.ics", NULL, NULL);
		check(apply_str(m, &r) == 0 && want(&r, ITIP_REFUSED,
		    "attendee-unknown"), "stranger's reply refused");
		free(m);
	}
	check(store_itip_proposal_list(st, alice.store_id, count_props, &pc)
	    == 0 && pc.pending == 1 && pc.strangers == 1,
	    "proposals: %d pending COUNTER, %d stranger reply (once each)",
	    pc.pending, pc.strangers);

	m = edit("reply-bob-declined.ics", "ORGANIZER;CN=Alice Example:mailto:"
	    "alice@example.net", "ORGANIZER:mailto:mallory@evil.example");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_REFUSED,
	    "organizer-changed"), "REPLY naming another organizer refused "
	    "(%s)", r.reason);
	free(m);

	m = edit("google-request.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "google invitation created");
	free(m);
	m = edit("reply-bob-declined.ics", "C0FFEE00-1111-2222-3333-"
	    "444455556666", "7kq2l3m4n5b6v7c8x9z0a1s2d3@google.com");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_REFUSED,
	    "not-organizer"), "REPLY for someone else's event refused "
	    "(%s)", r.reason);
	free(m);
	m = edit("counter-bob.ics", "C0FFEE00-1111-2222-3333-444455556666",
	    "nope@x");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_REFUSED, "unknown-uid"),
	    "COUNTER for an unknown UID refused (%s)", r.reason);
	free(m);

	m = edit("publish.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "PUBLISH stored");
	free(m);
	check(sql_int("SELECT scheduling FROM objects WHERE uid = "
	    "'match-2026-12-12@fixtures.example'") == 0,
	    "PUBLISH stored as a non-scheduling object");
	check(sql_int("SELECT scheduling FROM objects WHERE uid = "
	    "'7kq2l3m4n5b6v7c8x9z0a1s2d3@google.com'") == 1,
	    "REQUEST stored as a scheduling object");

	/* A booking mail: PUBLISH without ORGANIZER may create, not change. */
	m = edit("publish.ics", "ORGANIZER;CN=Fixtures:mailto:"
	    "noreply@fixtures.example\r\n", "");
	m[strstr(m, "match-2026") - m] = 'M';
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "PUBLISH without ORGANIZER creates (%s)", r.reason);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_REFUSED, "no-organizer"),
	    "but cannot change a stored event (%s)", r.reason);
	free(m);

	/* Object names: hostile UIDs and taken names get a hash. */
	m = edit("zoom-request.ics", "ZOOM82345678901@zoom.example",
	    "../../etc/passwd x");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created") &&
	    strlen(r.href_name) == 36 && strchr(r.href_name, '/') == NULL,
	    "unsafe UID stored under a hashed name (%s)", r.href_name);
	free(m);
	put_file("apple-older.ics", "ZOOM82345678901@zoom.example.ics");
	m = edit("zoom-request.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created") &&
	    strcmp(r.href_name, "ZOOM82345678901@zoom.example.ics") != 0,
	    "taken name not overwritten (%s)", r.href_name);
	free(m);

	/* An invitation the user keeps in another calendar stays there. */
	{
		int64_t work = 0;
		struct ical_object o;
		struct store_object_meta meta;
		char err[200];

		m = edit("outlook-request.ics", "METHOD:REQUEST\r\n", "");
		check(store_collection_create(st, alice.store_id, "work", 1,
		    NULL, &work) == 0, "work calendar");
		check(ical_object_check(m, strlen(m), &o, err, sizeof err) == 0,
		    "outlook object valid: %s", err);
		ical_object_meta(&o, &meta);
		check(store_object_put(st, work, "q1.ics", m, strlen(m),
		    "text/calendar", &meta, NULL) == 0, "put into work");
		ical_object_clear(&o);
		free(m);
		m = edit("outlook-cancel.ics", NULL, NULL);
		check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED,
		    "cancelled") && r.collection_id == work &&
		    strcmp(r.href_name, "q1.ics") == 0,
		    "cancel lands where the user keeps the event (%lld %s)",
		    (long long)r.collection_id, r.href_name);
		free(m);
	}

	/* Invited to one instance only: the object is just that override. */
	m = edit("google-instance-moved.ics", "7kq2l3m4n5b6v7c8x9z0a1s2d3",
	    "single-instance");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "single-instance invitation created (%s)", r.reason);
	free(m);

	/* The caller's transaction: its rollback undoes the merge. */
	m = edit("apple-request.ics", NULL, NULL);
	store_begin(st);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "apple invitation inside the caller's transaction");
	store_rollback(st);
	check(sql_int("SELECT count(*) FROM objects WHERE uid = "
	    "'5F3E8D2C-1A4B-4C6D-9E8F-0A1B2C3D4E5F'") == 0,
	    "caller's rollback leaves no half merge");
	store_begin(st);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "again, committed");
	check(store_commit(st) == 0, "commit");
	check(sql_int("SELECT count(*) FROM objects WHERE uid = "
	    "'5F3E8D2C-1A4B-4C6D-9E8F-0A1B2C3D4E5F'") == 1,
	    "caller's commit keeps the merge");
	free(m);

	/* Instances match by time, however the RECURRENCE-ID is written. */
	fresh_store(1);
	m = edit("google-request-moved.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "created"),
	    "series created");
	free(m);
	m = edit("google-instance-moved.ics", NULL, NULL);
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED, "updated"),
	    "instance moved");
	free(m);
	m = edit("google-instance-cancel.ics", "RECURRENCE-ID;TZID=Europe/"
	    "Berlin:20261221T110000", "RECURRENCE-ID:20261214T100000Z");
	check(apply_str(m, &r) == 0 && want(&r, ITIP_APPLIED,
	    "cancelled-instance"), "cancel with a UTC RECURRENCE-ID");
	free(m);
	m = stored(r.href_name);
	{
		icalcomponent *root = m ? icalparser_parse_string(m) : NULL;
		icalcomponent *o = root ? instance(root, "20261214T110000") :
		    NULL;

		check(root && count_kids(root, ICAL_VEVENT_COMPONENT) == 2 &&
		    o && strcmp(prop_value(o, "STATUS"), "CANCELLED") == 0,
		    "the existing override was cancelled, none added");
		if (root)
			icalcomponent_free(root);
	}
	free(m);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		run_scenario(&scenarios[i]);
	run_hostile();
	run_misc();
	store_close(st);
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	icaltimezone_free_builtin_timezones();
	return check_done();
}
