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
	sql_exec("PRAGMA user_version = 1");
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
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return check_done();
}
