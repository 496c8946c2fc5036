/*
 * tests/unit/test_store.c: opening, migrating, reopening and refusing a
 * newer schema; objects, UIDs, changes and transactions.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/calgate-test-store-XXXXXX";

static int
sql_int(const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;
	int v = -1;

	snprintf(path, sizeof path, "%s/calgate.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static void
sql_exec(const char *sql)
{
	char path[512];
	sqlite3 *db;

	snprintf(path, sizeof path, "%s/calgate.db", dir);
	if (sqlite3_open(path, &db) == SQLITE_OK)
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
}

static void
test_open_migrate(void)
{
	char err[256] = "";
	struct store *st = store_open(dir, err, sizeof err);
	int64_t id1 = 0, id2 = 0;

	check(st != NULL, "fresh store opens: %s", err);
	if (st == NULL)
		return;
	check(store_schema_version(st) == STORE_SCHEMA_VERSION,
	    "migrated to the current schema");
	check(store_user_ensure(st, "alice", &id1) == 0 && id1 > 0,
	    "user created");
	store_close(st);
	check(sql_int("PRAGMA journal_mode") == -1 ||
	    sql_int("SELECT count(*) FROM users") == 1, "data persisted");

	st = store_open(dir, err, sizeof err);
	check(st != NULL, "reopens");
	if (st) {
		check(store_user_ensure(st, "alice", &id2) == 0 && id2 == id1,
		    "same user id after reopen");
		check(store_user_id(st, "nobody", &id2) == STORE_NOTFOUND,
		    "unknown user");
		store_close(st);
	}

	sql_exec("PRAGMA user_version = 999");
	err[0] = '\0';
	st = store_open(dir, err, sizeof err);
	check(st == NULL, "a newer schema is refused");
	check(strstr(err, "newer") && strstr(err, "999"),
	    "clear error: %s", err);
	store_close(st);
	/* back to what the file really is, for the tests below */
	{
		char sql[64];

		snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
		    STORE_SCHEMA_VERSION);
		sql_exec(sql);
	}
}

static void
test_partial_migration(void)
{
	char d2[] = "/tmp/calgate-test-store2-XXXXXX", path[512], err[256];
	sqlite3 *db;
	struct store *st;

	/* A database at version 0 holding a conflicting table: the
	 * migration must fail whole, leaving version 0. */
	if (mkdtemp(d2) == NULL)
		return;
	snprintf(path, sizeof path, "%s/calgate.db", d2);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE objects (x)", NULL, NULL, NULL);
	sqlite3_close(db);
	st = store_open(d2, err, sizeof err);
	check(st == NULL && strstr(err, "migration"),
	    "failed migration reported: %s", st ? "opened" : err);
	store_close(st);
	sqlite3_open(path, &db);
	{
		sqlite3_stmt *s;
		int v = -1;

		sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		check(v == 0, "failed migration rolled back (version %d)", v);
	}
	sqlite3_close(db);
	snprintf(path, sizeof path, "rm -rf %s", d2);
	if (system(path) != 0)
		fprintf(stderr, "cleanup failed\n");
}

struct seen {
	int n, deleted;
	char last[64];
};

static int
on_change(void *arg, const char *name, int deleted, int64_t seq)
{
	struct seen *s = arg;

	(void)seq;
	s->n++;
	s->deleted += deleted;
	snprintf(s->last, sizeof s->last, "%s", name);
	return 0;
}

static void
test_objects(void)
{
	char err[256];
	struct store *st = store_open(dir, err, sizeof err);
	struct store_object_meta m = { "uid-1", "VEVENT", 100, 200, NULL, 0 };
	struct store_collection col;
	struct store_object o;
	int64_t uid, cal, e1, e2, e3, t0, t1;
	struct seen s;

	check(st != NULL, "store opens: %s", err);
	if (st == NULL)
		return;
	store_user_ensure(st, "bob", &uid);
	check(store_collection_create(st, uid, "work", 1, NULL, &cal) == 0,
	    "calendar created");
	check(store_collection_create(st, uid, "work", 1, NULL, NULL) ==
	    STORE_CONFLICT, "same path twice: conflict");
	check(store_collection_create(st, uid, "nope/sub", 0, NULL, NULL) ==
	    STORE_NOTFOUND, "missing parent");
	store_collection_get(st, uid, "work", &col);
	t0 = col.synctoken;
	store_collection_clear(&col);

	check(store_object_put(st, cal, "a.ics", "DATA1", 5, "text/calendar",
	    &m, &e1) == 0, "put");
	check(store_object_put(st, cal, "a.ics", "DATA1", 5, "text/calendar",
	    &m, &e2) == 0 && e2 == e1, "identical put keeps the ETag");
	check(store_object_put(st, cal, "b.ics", "DATA2", 5, "text/calendar",
	    &m, NULL) == STORE_CONFLICT, "same UID, other name: conflict");
	check(store_object_put(st, cal, "a.ics", "DATA3", 5, "text/calendar",
	    &m, &e3) == 0 && e3 > e1, "changed put: new ETag");
	check(store_object_get(st, cal, "a.ics", 1, &o) == 0 &&
	    o.len == 5 && !memcmp(o.data, "DATA3", 5) && o.etag == e3,
	    "get returns the bytes");
	store_object_clear(&o);
	check(store_object_find_uid(st, uid, "uid-1", &o, 0) == 0 &&
	    !strcmp(o.name, "a.ics") && o.data == NULL, "find by UID");
	store_object_clear(&o);

	memset(&s, 0, sizeof s);
	check(store_changes_since(st, cal, t0, on_change, &s) == 0 &&
	    s.n == 1 && !strcmp(s.last, "a.ics"), "one change since t0");
	store_collection_get(st, uid, "work", &col);
	t1 = col.synctoken;
	check(t1 == e3, "ctag is the last change");
	store_collection_clear(&col);
	check(store_object_delete(st, cal, "a.ics") == 0, "delete");
	check(store_object_delete(st, cal, "a.ics") == STORE_NOTFOUND,
	    "delete twice");
	memset(&s, 0, sizeof s);
	store_changes_since(st, cal, t1, on_change, &s);
	check(s.n == 1 && s.deleted == 1, "deletion reported");
	memset(&s, 0, sizeof s);
	store_changes_since(st, cal, 0, on_change, &s);
	check(s.n == 0, "initial sync lists no tombstones");
	check(store_changes_since(st, cal, t1 + 1000, on_change, &s) ==
	    STORE_NOTFOUND, "a token from the future is invalid");

	/* A rolled back transaction leaves nothing. */
	store_begin(st);
	store_object_put(st, cal, "c.ics", "X", 1, "text/calendar", NULL,
	    NULL);
	store_begin(st);
	store_rollback(st);
	check(store_commit(st) != 0, "inner rollback aborts the outer");
	check(store_object_get(st, cal, "c.ics", 0, &o) == STORE_NOTFOUND,
	    "nothing written");
	store_close(st);
}

struct thr {
	struct store *st;
	int64_t cal;
	int ok;
};

static void *
writer(void *arg)
{
	struct thr *t = arg;
	char name[32];

	t->ok = 1;
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "t%p-%d.ics", (void *)t, i);
		if (store_object_put(t->st, t->cal, name, "X", 1, "text/plain",
		    NULL, NULL) != 0)
			t->ok = 0;
	}
	return NULL;
}

static void
test_threads(void)
{
	char err[256];
	struct store *st = store_open(dir, err, sizeof err);
	pthread_t th[4];
	struct thr t[4];
	int64_t uid, cal;
	int count = 0;

	check(st != NULL, "store opens: %s", err);
	if (st == NULL)
		return;
	store_user_ensure(st, "carol", &uid);
	store_collection_create(st, uid, "plain", 0, NULL, &cal);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ st, cal, 0 };
		pthread_create(&th[i], NULL, writer, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		check(t[i].ok, "thread %d wrote everything", i);
	}
	store_close(st);
	count = sql_int("SELECT count(*) FROM objects WHERE collection_id IN "
	    "(SELECT id FROM collections WHERE path = 'plain')");
	check(count == 200, "200 objects from 4 threads (%d)", count);
}

/* HTTP threads: a few pooled connections, leased per request. */
static void *
leaser(void *arg)
{
	struct thr *t = arg;
	struct store_object o;
	char name[32];

	t->ok = 1;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "l%p-%d.ics", (void *)t, i);
		store_lease_begin(t->st);
		if (store_object_put(t->st, t->cal, name, "X", 1, "text/plain",
		    NULL, NULL) != 0 || store_object_get(t->st, t->cal, name,
		    1, &o) != 0 || o.len != 1)
			t->ok = 0;
		store_object_clear(&o);
		store_lease_end(t->st);
	}
	return NULL;
}

/* A request that ends inside a transaction: the next lease of that
 * connection must start clean, without its writes. */
static void *
abandoner(void *arg)
{
	struct thr *t = arg;

	store_lease_begin(t->st);
	t->ok = store_begin(t->st) == 0 && store_object_put(t->st, t->cal,
	    "abandoned.ics", "X", 1, "text/plain", NULL, NULL) == 0;
	store_lease_end(t->st);
	return NULL;
}

static void
test_leases(void)
{
	char err[256];
	struct store *st = store_open(dir, err, sizeof err);
	pthread_t th[8];
	struct thr t[8];
	struct store_object o;
	int64_t uid, cal;
	int count, rc;

	check(st != NULL, "store opens: %s", err);
	if (st == NULL)
		return;
	store_user_ensure(st, "dave", &uid);
	store_collection_create(st, uid, "leased", 0, NULL, &cal);
	for (int i = 0; i < 8; i++) {
		t[i] = (struct thr){ st, cal, 0 };
		pthread_create(&th[i], NULL, leaser, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		check(t[i].ok, "leasing thread %d wrote and read back", i);
	}
	for (int i = 0; i < 8; i++) {
		t[i] = (struct thr){ st, cal, 0 };
		pthread_create(&th[i], NULL, abandoner, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		check(t[i].ok, "abandoning thread %d began and wrote", i);
	}
	/* every pooled connection had a transaction abandoned on it */
	for (int i = 0; i < 8; i++) {
		t[i] = (struct thr){ st, cal, 0 };
		pthread_create(&th[i], NULL, leaser, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		check(t[i].ok, "after abandoned transactions, thread %d", i);
	}
	rc = store_object_get(st, cal, "abandoned.ics", 0, &o);
	check(rc == STORE_NOTFOUND, "abandoned writes rolled back (%d)", rc);
	store_object_clear(&o);
	store_close(st);
	count = sql_int("SELECT count(*) FROM objects WHERE collection_id IN "
	    "(SELECT id FROM collections WHERE path = 'leased')");
	/* the second round rewrote the first one's names */
	check(count == 320, "320 objects from the leasing threads (%d)",
	    count);
}

static int
listed(void *arg, const struct store_object *o)
{
	char *names = arg;

	/* "name:digest-length " for each object, in the order given */
	snprintf(names + strlen(names), 512 - strlen(names), "%s:%zu ",
	    o->name, o->instances ? o->instances_len : 0);
	return 0;
}

/* The listing's names, sorted, into out (512 bytes). */
static void
list_range(struct store *st, int64_t cal, int64_t a, int64_t b, char *out)
{
	char tmp[512] = "", *w[16], *save = NULL;
	int n = 0;

	store_object_list(st, cal, 1, a, b, listed, tmp);
	for (char *t = strtok_r(tmp, " ", &save); t && n < 16;
	    t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(w[j - 1], w[j]) > 0; j--) {
			char *x = w[j];

			w[j] = w[j - 1];
			w[j - 1] = x;
		}
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), 512 - strlen(out), "%s%s",
		    i ? " " : "", w[i]);
}

/*
 * Schema 3 kept digests in object_instances and indexed spans by start
 * only; 4 keeps them in the row and indexes short spans apart. A store
 * written by schema 3 (made here by undoing 4 by hand) must come back
 * with every digest and the same time-range answers.
 */
static void
test_migrate_v3(void)
{
	char d[] = "/tmp/calgate-test-store3-XXXXXX", path[600], err[256];
	char got[512];
	const int64_t S = 1772323200;		/* 2026-03-01 */
	static const struct {
		const char *name;
		int64_t start, end;
		const char *digest;		/* NULL: none */
	} objs[] = {
		{ "short.ics", S + 3600, S + 7200, "dig-short" },
		{ "long.ics", S - 400 * 86400LL, S + 400 * 86400LL, "dig-long" },
		{ "none.ics", S, S + 60, NULL },
		{ "far.ics", S + 90 * 86400LL, S + 91 * 86400LL, "dig-far" },
		/* exactly SPAN_SHORT long, ending just inside the window */
		{ "edge.ics", S + 1 - 691200, S + 1, "dig-edge" },
		/* one second longer: a long span */
		{ "edge2.ics", S - 691200, S + 1, "e2" },
		{ "unbounded.ics", INT64_MIN, INT64_MAX, NULL },
	};
	struct store *st;
	sqlite3 *db;
	int64_t uid, cal;

	if (mkdtemp(d) == NULL)
		return;
	st = store_open(d, err, sizeof err);
	check(st != NULL, "v4 store opens: %s", err);
	if (st == NULL)
		return;
	store_user_ensure(st, "erin", &uid);
	store_collection_create(st, uid, "cal", 1, NULL, &cal);
	for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
		struct store_object_meta m = { NULL, "VEVENT", objs[i].start,
		    objs[i].end, NULL, 0 };
		const char *dg = objs[i].digest;

		check(store_object_put_indexed(st, cal, objs[i].name, "X", 1,
		    "text/calendar", &m, dg, dg ? strlen(dg) : 0, NULL) == 0,
		    "put %s", objs[i].name);
	}
	list_range(st, cal, S, S + 86400, got);
	check(!strcmp(got, "edge.ics:8 edge2.ics:2 long.ics:8 none.ics:0 "
	    "short.ics:9 unbounded.ics:0"), "v4 range listing: %s", got);
	store_close(st);

	/* back to schema 3, as its migrations left it */
	snprintf(path, sizeof path, "%s/calgate.db", d);
	check(sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db,
	    "CREATE TABLE object_instances ("
	    "  object_id INTEGER PRIMARY KEY"
	    "    REFERENCES objects(id) ON DELETE CASCADE,"
	    "  digest BLOB NOT NULL);"
	    "INSERT INTO object_instances SELECT id, digest FROM objects"
	    "  WHERE digest IS NOT NULL;"
	    "DROP INDEX objects_when;"
	    "ALTER TABLE objects DROP COLUMN digest;"
	    "CREATE INDEX objects_span ON objects(collection_id, dtstart,"
	    "  dtend);"
	    "PRAGMA user_version = 3;", NULL, NULL, NULL) == SQLITE_OK,
	    "undone to schema 3: %s", sqlite3_errmsg(db));
	sqlite3_close(db);

	st = store_open(d, err, sizeof err);
	check(st != NULL, "schema 3 store opens: %s", err);
	if (st != NULL) {
		check(store_schema_version(st) == STORE_SCHEMA_VERSION,
		    "migrated to %d", store_schema_version(st));
		list_range(st, cal, S, S + 86400, got);
		check(!strcmp(got, "edge.ics:8 edge2.ics:2 long.ics:8 "
		    "none.ics:0 short.ics:9 unbounded.ics:0"),
		    "migrated range listing: %s", got);
		list_range(st, cal, S + 90 * 86400LL, S + 90 * 86400LL + 1,
		    got);
		check(!strcmp(got, "far.ics:7 long.ics:8 unbounded.ics:0"),
		    "another window: %s", got);
		list_range(st, cal, INT64_MIN, S - 700 * 86400LL, got);
		check(!strcmp(got, "unbounded.ics:0"), "open start: %s", got);
		store_close(st);
	}
	check(sqlite3_open(path, &db) == SQLITE_OK, "reopened");
	{
		sqlite3_stmt *s;
		int n = -1;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master"
		    " WHERE name IN ('object_instances', 'objects_span')", -1,
		    &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		check(n == 0, "old table and index gone (%d left)", n);
	}
	sqlite3_close(db);
	snprintf(path, sizeof path, "rm -rf %s", d);
	if (system(path) != 0)
		fprintf(stderr, "cleanup failed\n");
}

/* The plan SQLite picks for sql: 1 when it searches index idx. */
static int
plan_uses(sqlite3 *db, const char *sql, const char *idx)
{
	sqlite3_stmt *s;
	char q[1024];
	int found = 0;

	snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		if (d && strstr(d, idx))
			found = 1;
	}
	sqlite3_finalize(s);
	return found;
}

/* Schema 4 -> 5: the imip_log indexes, and the queries they serve. */
static void
test_migrate_v4(void)
{
	char d[] = "/tmp/calgate-test-store4-XXXXXX", path[600], err[256];
	struct store *st;
	sqlite3 *db = NULL;

	if (mkdtemp(d) == NULL)
		return;
	st = store_open(d, err, sizeof err);
	check(st != NULL, "store opens: %s", err);
	store_close(st);
	snprintf(path, sizeof path, "%s/calgate.db", d);
	check(sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db,
	    "DROP INDEX imip_log_user_id; DROP INDEX imip_log_defer;"
	    "PRAGMA user_version = 4;", NULL, NULL, NULL) == SQLITE_OK,
	    "undone to schema 4: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	st = store_open(d, err, sizeof err);
	check(st != NULL && store_schema_version(st) == STORE_SCHEMA_VERSION,
	    "schema 4 store migrated: %s", err);
	store_close(st);
	check(sqlite3_open(path, &db) == SQLITE_OK, "reopened");
	/* the shapes of store.c's queries */
	check(plan_uses(db, "SELECT min(next_retry) FROM imip_log WHERE "
	    "user_id = 1 AND decision = 'defer' AND raw IS NOT NULL",
	    "imip_log_defer"), "next retry: the defer index");
	check(plan_uses(db, "SELECT id FROM imip_log WHERE user_id = 1 AND "
	    "decision = 'defer' AND raw IS NOT NULL AND next_retry <= 5 "
	    "ORDER BY next_retry, id LIMIT 8", "imip_log_defer"),
	    "due retries: the defer index");
	check(plan_uses(db, "SELECT l.id FROM imip_log l JOIN users u ON "
	    "u.id = l.user_id WHERE l.user_id = 1 AND (NULL IS NULL OR "
	    "l.decision = NULL) AND (0 = 0 OR l.id < 0) ORDER BY l.id DESC "
	    "LIMIT 50", "imip_log_user_id"), "a user's page: (user_id, id)");
	sqlite3_close(db);
	snprintf(path, sizeof path, "rm -rf %s", d);
	if (system(path) != 0)
		fprintf(stderr, "cleanup failed\n");
}

int
main(void)
{
	char cmd[600];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_open_migrate();
	test_partial_migration();
	test_objects();
	test_threads();
	test_leases();
	test_migrate_v3();
	test_migrate_v4();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return check_done();
}
