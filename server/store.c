/*
 * server/store.c: all SQL lives here. See store.h for the model.
 * Connections are per thread (pthread key) so readers never wait for one
 * another; SQLite's WAL lets them read while one writer writes. HTTP
 * threads instead lease one of a few pooled connections per request
 * (store_lease_begin): eight private 2 MB page caches each held a
 * different quarter of a 10,000-event store and read the rest from the
 * file again and again; three large ones hold it. Prepared statements
 * are cached per connection, keyed by the address of their (static) SQL
 * text.
 */
#include "server/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server/log.h"

#define STMT_CACHE	128
#define BUSY_MS		10000
#define POOL_CONNS	3		/* leased connections (HTTP threads) */
#define POOL_CACHE_KB	8192		/* page cache of each */

struct stmt_slot {
	const char *sql;
	sqlite3_stmt *st;
};

struct conn {
	sqlite3 *db;
	struct store *store;
	int depth;			/* transaction nesting */
	int failed;			/* an inner level rolled back */
	int pooled;			/* leased, not the thread's own */
	struct conn *prev, *next;
	struct stmt_slot cache[STMT_CACHE];
};

struct store {
	char *path;
	pthread_key_t key;		/* the thread's connection, if any */
	pthread_key_t lease;		/* non-NULL: the thread leases */
	pthread_mutex_t mu;
	pthread_cond_t returned;	/* a pooled connection came back */
	struct conn *conns;		/* every open one */
	struct conn *idle[POOL_CONNS];	/* pooled, not leased */
	int nidle, npooled;
};

/* ---- schema --------------------------------------------------------- */

/*
 * Forward migrations: entry i takes user_version i to i + 1. Append only;
 * never edit an entry that has shipped.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('seq', 0);"
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE collections ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  parent_id INTEGER REFERENCES collections(id) ON DELETE CASCADE,"
	"  is_calendar INTEGER NOT NULL DEFAULT 0,"
	"  displayname TEXT, description TEXT, color TEXT, sort_order TEXT,"
	"  timezone TEXT,"
	"  components TEXT NOT NULL DEFAULT 'VEVENT,VTODO,VJOURNAL',"
	"  synctoken INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL, modified INTEGER NOT NULL,"
	"  UNIQUE (user_id, path));"
	"CREATE INDEX collections_parent ON collections(parent_id);"
	"CREATE TABLE objects ("
	"  id INTEGER PRIMARY KEY,"
	"  collection_id INTEGER NOT NULL"
	"    REFERENCES collections(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  uid TEXT, component TEXT, organizer TEXT,"
	"  scheduling INTEGER NOT NULL DEFAULT 0,"
	"  dtstart INTEGER NOT NULL, dtend INTEGER NOT NULL,"
	"  etag INTEGER NOT NULL,"
	"  content_type TEXT NOT NULL,"
	"  data BLOB NOT NULL,"
	"  modified INTEGER NOT NULL,"
	"  UNIQUE (collection_id, name));"
	"CREATE UNIQUE INDEX objects_coll_uid ON objects(collection_id, uid)"
	"  WHERE uid IS NOT NULL;"
	"CREATE INDEX objects_uid ON objects(uid) WHERE uid IS NOT NULL;"
	"CREATE INDEX objects_span ON objects(collection_id, dtstart, dtend);"
	"CREATE TABLE props ("
	"  collection_id INTEGER NOT NULL"
	"    REFERENCES collections(id) ON DELETE CASCADE,"
	"  object TEXT NOT NULL DEFAULT '',"
	"  ns TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
	"  PRIMARY KEY (collection_id, object, ns, name));"
	"CREATE TABLE changes ("
	"  collection_id INTEGER NOT NULL"
	"    REFERENCES collections(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  deleted INTEGER NOT NULL,"
	"  PRIMARY KEY (collection_id, name));"
	"CREATE INDEX changes_seq ON changes(collection_id, seq);"
	"CREATE TABLE accounts ("
	"  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	"  uidvalidity INTEGER, last_uid INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL DEFAULT 'new', detail TEXT,"
	"  last_ok INTEGER, next_try INTEGER);"
	"CREATE TABLE imip_log ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  ts INTEGER NOT NULL,"
	"  uidvalidity INTEGER, imap_uid INTEGER,"
	"  message_id TEXT, cal_hash TEXT,"
	"  from_addr TEXT, subject TEXT,"
	"  method TEXT, ical_uid TEXT, summary TEXT, dtstart TEXT,"
	"  decision TEXT NOT NULL, reason TEXT NOT NULL, hint TEXT,"
	"  detail TEXT,"
	"  raw BLOB,"
	"  attempts INTEGER NOT NULL DEFAULT 0, next_retry INTEGER);"
	"CREATE INDEX imip_log_user_ts ON imip_log(user_id, ts);"
	"CREATE INDEX imip_log_msg ON imip_log(user_id, message_id, cal_hash);"
	"CREATE TABLE itip_replies ("
	"  object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,"
	"  attendee TEXT NOT NULL, recurrence_id TEXT NOT NULL DEFAULT '',"
	"  sequence INTEGER NOT NULL, dtstamp TEXT NOT NULL,"
	"  PRIMARY KEY (object_id, attendee, recurrence_id));"
	"CREATE TABLE itip_proposals ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  uid TEXT NOT NULL, method TEXT NOT NULL, from_addr TEXT,"
	"  ts INTEGER NOT NULL, data TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'pending');",
	/* 1 -> 2: server/ical.c's instance digest of a VEVENT object, so
	 * that a time-range query need not parse it (none: parse) */
	"CREATE TABLE IF NOT EXISTS object_instances ("
	"  object_id INTEGER PRIMARY KEY"
	"    REFERENCES objects(id) ON DELETE CASCADE,"
	"  digest BLOB NOT NULL);",
	/* 2 -> 3: listings of names and ETags read only this index */
	"CREATE INDEX IF NOT EXISTS objects_brief ON objects(collection_id,"
	"  name, etag, content_type);",
	/* 3 -> 4: the digest (a few dozen bytes since its version 2) moves
	 * into its object's row, read with it instead of by a second
	 * lookup; and the span index puts long spans (mostly recurring
	 * objects) apart from short ones, so that a time-range scans only
	 * the short objects starting near it (see SPAN_SHORT) */
	"ALTER TABLE objects ADD COLUMN digest BLOB;"
	"UPDATE objects SET digest = (SELECT digest FROM object_instances"
	"  WHERE object_id = objects.id);"
	"DROP TABLE object_instances;"
	"DROP INDEX objects_span;"
	"CREATE INDEX objects_when ON objects(collection_id,"
	"  dtend - dtstart > 691200, dtstart, dtend);",
	/* 4 -> 5: a user's decisions newest first (the status page), and
	 * the deferred ones due for a retry (every poller pass), without
	 * scanning all of the user's history */
	"CREATE INDEX IF NOT EXISTS imip_log_user_id ON imip_log(user_id, id);"
	"CREATE INDEX IF NOT EXISTS imip_log_defer ON imip_log(user_id,"
	"  next_retry) WHERE decision = 'defer' AND raw IS NOT NULL;",
};

/*
 * Objects whose indexed span is at most this long (8 days; the span is
 * widened by a day at each end) are "short": one overlapping [s, e)
 * starts after s - SPAN_SHORT. Spelled out in migration 3 -> 4's index
 * and in store_object_list's query, which must match it.
 */
#define SPAN_SHORT	691200
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- connections ---------------------------------------------------- */

static void
conn_close(struct conn *c)
{
	for (int i = 0; i < STMT_CACHE; i++)
		if (c->cache[i].st)
			sqlite3_finalize(c->cache[i].st);
	sqlite3_close(c->db);
	free(c);
}

static void pool_return(struct conn *);

/* Thread exit: unlink and close this thread's connection. */
static void
conn_release(void *p)
{
	struct conn *c = p;
	struct store *st = c->store;

	if (c->pooled) {
		pool_return(c);
		return;
	}
	pthread_mutex_lock(&st->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		st->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&st->mu);
	conn_close(c);
}

static sqlite3 *
db_open(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, BUSY_MS);
	sqlite3_extended_result_codes(db, 1);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=NORMAL;"
	    "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot set up %s: %s", path,
		    sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* A new connection, linked into st->conns; NULL (logged) on error. */
static struct conn *
conn_new(struct store *st, int pooled)
{
	struct conn *c = calloc(1, sizeof *c);
	char err[512], sql[64];

	if (c == NULL)
		return NULL;
	c->db = db_open(st->path, err, sizeof err);
	if (c->db == NULL) {
		log_error("store open %s", err);
		free(c);
		return NULL;
	}
	if (pooled) {
		snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d",
		    POOL_CACHE_KB);
		sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	}
	c->store = st;
	c->pooled = pooled;
	pthread_mutex_lock(&st->mu);
	c->next = st->conns;
	if (st->conns)
		st->conns->prev = c;
	st->conns = c;
	pthread_mutex_unlock(&st->mu);
	return c;
}

/* An idle pooled connection, a new one while there are fewer than
 * POOL_CONNS, or (all busy) the next one returned. */
static struct conn *
pool_take(struct store *st)
{
	struct conn *c = NULL;
	int open = 0;

	pthread_mutex_lock(&st->mu);
	while (st->nidle == 0 && st->npooled == POOL_CONNS)
		pthread_cond_wait(&st->returned, &st->mu);
	if (st->nidle > 0)
		c = st->idle[--st->nidle];
	else {
		st->npooled++;		/* reserved; opened below */
		open = 1;
	}
	pthread_mutex_unlock(&st->mu);
	if (open && (c = conn_new(st, 1)) == NULL) {
		pthread_mutex_lock(&st->mu);
		st->npooled--;
		pthread_cond_signal(&st->returned);
		pthread_mutex_unlock(&st->mu);
	}
	return c;
}

static void
pool_return(struct conn *c)
{
	struct store *st = c->store;

	if (c->depth > 0) {
		/* a request ended inside a transaction: never hand that on */
		log_error("store lease ended in a transaction depth=%d",
		    c->depth);
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		c->depth = 0;
	}
	pthread_mutex_lock(&st->mu);
	st->idle[st->nidle++] = c;
	pthread_cond_signal(&st->returned);
	pthread_mutex_unlock(&st->mu);
}

static struct conn *
conn_get(struct store *st)
{
	struct conn *c = pthread_getspecific(st->key);

	if (c != NULL)
		return c;
	if (pthread_getspecific(st->lease) != NULL)
		c = pool_take(st);
	else
		c = conn_new(st, 0);
	if (c != NULL)
		pthread_setspecific(st->key, c);
	return c;
}

void
store_lease_begin(struct store *st)
{
	struct conn *c;

	if (st == NULL)
		return;
	c = pthread_getspecific(st->key);
	/* a thread with a connection of its own keeps using it */
	if (c == NULL)
		pthread_setspecific(st->lease, st);
}

void
store_lease_end(struct store *st)
{
	struct conn *c;

	if (st == NULL || pthread_getspecific(st->lease) == NULL)
		return;
	c = pthread_getspecific(st->key);
	pthread_setspecific(st->lease, NULL);
	if (c == NULL || !c->pooled)
		return;
	pthread_setspecific(st->key, NULL);
	pool_return(c);
}

/* The cached, reset statement for sql (a string literal), or NULL. */
static sqlite3_stmt *
stmt(struct conn *c, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 3) % STMT_CACHE;

	for (size_t i = 0; i < STMT_CACHE; i++) {
		struct stmt_slot *s = &c->cache[(h + i) % STMT_CACHE];

		if (s->sql == sql) {
			sqlite3_reset(s->st);
			sqlite3_clear_bindings(s->st);
			return s->st;
		}
		if (s->sql == NULL) {
			if (sqlite3_prepare_v3(c->db, sql, -1,
			    SQLITE_PREPARE_PERSISTENT, &s->st, NULL)) {
				log_error("store prepare error=%s",
				    sqlite3_errmsg(c->db));
				return NULL;
			}
			s->sql = sql;
			return s->st;
		}
	}
	log_error("store statement cache full");
	return NULL;
}

static int
db_fail(struct conn *c, const char *what)
{
	log_error("store %s error=\"%s\"", what, sqlite3_errmsg(c->db));
	return -1;
}

/* ---- open, close, transactions ---------------------------------------- */

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/*
 * SQLite's memory statistics take one process-wide mutex on every
 * allocation and free: with eight HTTP threads reading, a multiget spent
 * more time waiting on it than in SQL. calgate reads no statistics.
 * Must run before SQLite initialises; later it is refused, harmlessly.
 */
static void
sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

static int
migrate(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int version, rc;
	char sql[64];

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL))
		goto dberr;
	rc = sqlite3_step(s);
	version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (version < 0)
		goto dberr;
	if (version > NMIGRATIONS) {
		snprintf(err, errlen, "the store has schema version %d, newer "
		    "than this calgate knows (%d); use a newer calgate",
		    version, NMIGRATIONS);
		return -1;
	}
	if (version == NMIGRATIONS)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		goto dberr;
	for (int v = version; v < NMIGRATIONS; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL)) {
			snprintf(err, errlen, "migration to schema %d failed: "
			    "%s", v + 1, sqlite3_errmsg(db));
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", NMIGRATIONS);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) {
		snprintf(err, errlen, "migration failed: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (version > 0)
		log_info("store migrated from=%d to=%d", version,
		    NMIGRATIONS);
	return 0;
dberr:
	snprintf(err, errlen, "cannot read the schema version: %s",
	    sqlite3_errmsg(db));
	return -1;
}

struct store *
store_open(const char *data_dir, char *err, size_t errlen)
{
	struct store *st;
	sqlite3 *db;
	size_t n;

	pthread_once(&sqlite_once, sqlite_setup);
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", data_dir,
		    strerror(errno));
		return NULL;
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = strlen(data_dir) + sizeof "/calgate.db";
	st->path = malloc(n);
	if (st->path == NULL) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(st->path, n, "%s/calgate.db", data_dir);
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->returned, NULL);
	pthread_key_create(&st->key, conn_release);
	pthread_key_create(&st->lease, NULL);
	db = db_open(st->path, err, errlen);
	if (db == NULL || migrate(db, err, errlen) != 0) {
		sqlite3_close(db);
		store_close(st);
		return NULL;
	}
	sqlite3_close(db);
	return st;
}

void
store_close(struct store *st)
{
	struct conn *c, *next;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->mu);
	for (c = st->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	st->conns = NULL;
	st->nidle = st->npooled = 0;
	pthread_mutex_unlock(&st->mu);
	/* This thread's slot pointed at a closed connection. */
	pthread_setspecific(st->key, NULL);
	pthread_setspecific(st->lease, NULL);
	pthread_key_delete(st->key);
	pthread_key_delete(st->lease);
	pthread_cond_destroy(&st->returned);
	pthread_mutex_destroy(&st->mu);
	free(st->path);
	free(st);
}

int
store_schema_version(struct store *st)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int v = -1;

	if (c == NULL)
		return -1;
	s = stmt(c, "PRAGMA user_version");
	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	return v;
}

static int
begin_mode(struct store *st, const char *sql)
{
	struct conn *c = conn_get(st);

	if (c == NULL)
		return -1;
	if (c->depth++ > 0)
		return 0;
	c->failed = 0;
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL)) {
		c->depth = 0;
		return db_fail(c, "begin");
	}
	return 0;
}

int
store_begin(struct store *st)
{
	return begin_mode(st, "BEGIN IMMEDIATE");
}

/* A read-only snapshot; ends with store_commit like any other. */
static int
read_begin(struct store *st)
{
	return begin_mode(st, "BEGIN");
}

int
store_read_begin(struct store *st)
{
	return read_begin(st);
}

int
store_commit(struct store *st)
{
	struct conn *c = conn_get(st);

	if (c == NULL || c->depth == 0)
		return -1;
	if (--c->depth > 0)
		return 0;
	if (c->failed) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL)) {
		db_fail(c, "commit");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

void
store_rollback(struct store *st)
{
	struct conn *c = conn_get(st);

	if (c == NULL || c->depth == 0)
		return;
	if (--c->depth > 0) {
		c->failed = 1;		/* the outermost commit will roll back */
		return;
	}
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- helpers ---------------------------------------------------------- */

static char *
col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? strdup((const char *)t) : NULL;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *t)
{
	if (t)
		sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* Steps a statement that returns no rows: 0, STORE_CONFLICT or -1. */
static int
exec_stmt(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return STORE_CONFLICT;
	return db_fail(c, what);
}

/* The next global change sequence number, or -1. Inside a transaction. */
static int64_t
next_seq(struct conn *c)
{
	sqlite3_stmt *s = stmt(c, "UPDATE meta SET value = value + 1 "
	    "WHERE key = 'seq' RETURNING value");
	int64_t v;

	if (s == NULL || sqlite3_step(s) != SQLITE_ROW)
		return db_fail(c, "seq");
	v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return v;
}

/* Records a change of name (or of the collection itself, name NULL). */
static int
record_change(struct conn *c, int64_t coll_id, const char *name, int deleted,
    int64_t seq)
{
	sqlite3_stmt *s;

	if (name != NULL) {
		s = stmt(c, "INSERT INTO changes (collection_id, name, seq, "
		    "deleted) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
		    "seq = excluded.seq, deleted = excluded.deleted");
		if (s == NULL)
			return -1;
		sqlite3_bind_int64(s, 1, coll_id);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, seq);
		sqlite3_bind_int(s, 4, deleted);
		if (exec_stmt(c, s, "change"))
			return -1;
	}
	s = stmt(c, "UPDATE collections SET synctoken = ?, modified = ? "
	    "WHERE id = ?");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_int64(s, 2, (int64_t)time(NULL));
	sqlite3_bind_int64(s, 3, coll_id);
	return exec_stmt(c, s, "ctag");
}

/* ---- users ------------------------------------------------------------ */

int
store_user_id(struct store *st, const char *name, int64_t *id)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL ||
	    (s = stmt(c, "SELECT id FROM users WHERE name = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "user");
}

int
store_user_ensure(struct store *st, const char *name, int64_t *id)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc = store_user_id(st, name, id);

	if (rc != STORE_NOTFOUND)
		return rc;
	if ((s = stmt(c, "INSERT INTO users (name) VALUES (?) "
	    "ON CONFLICT DO NOTHING")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if (exec_stmt(c, s, "user insert"))
		return -1;
	return store_user_id(st, name, id);
}

/* ---- collections ------------------------------------------------------ */

void
store_collection_clear(struct store_collection *col)
{
	if (col == NULL)
		return;
	free(col->path);
	free(col->displayname);
	free(col->description);
	free(col->color);
	free(col->order);
	free(col->timezone);
	free(col->components);
	memset(col, 0, sizeof *col);
}

#define COLL_COLUMNS "id, user_id, path, is_calendar, displayname, " \
	"description, color, sort_order, timezone, components, synctoken, " \
	"created, modified"

static void
coll_row(sqlite3_stmt *s, struct store_collection *out)
{
	out->id = sqlite3_column_int64(s, 0);
	out->user_id = sqlite3_column_int64(s, 1);
	out->path = col_strdup(s, 2);
	out->is_calendar = sqlite3_column_int(s, 3);
	out->displayname = col_strdup(s, 4);
	out->description = col_strdup(s, 5);
	out->color = col_strdup(s, 6);
	out->order = col_strdup(s, 7);
	out->timezone = col_strdup(s, 8);
	out->components = col_strdup(s, 9);
	out->synctoken = sqlite3_column_int64(s, 10);
	out->created = sqlite3_column_int64(s, 11);
	out->modified = sqlite3_column_int64(s, 12);
}

int
store_collection_get(struct store *st, int64_t user_id, const char *path,
    struct store_collection *out)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT " COLL_COLUMNS " FROM "
	    "collections WHERE user_id = ? AND path = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		coll_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "collection");
}

int
store_collection_create(struct store *st, int64_t user_id, const char *path,
    int is_calendar, const char *components, int64_t *id)
{
	struct conn *c = conn_get(st);
	const char *slash = strrchr(path, '/');
	int64_t parent = 0, seq, now = (int64_t)time(NULL);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL || store_begin(st))
		return -1;
	if (slash != NULL) {
		char *pp = strndup(path, (size_t)(slash - path));
		struct store_collection pc;

		rc = pp ? store_collection_get(st, user_id, pp, &pc) : -1;
		free(pp);
		if (rc)
			goto fail;
		parent = pc.id;
		store_collection_clear(&pc);
	}
	seq = next_seq(c);
	s = stmt(c, "INSERT INTO collections (user_id, path, parent_id, "
	    "is_calendar, components, synctoken, created, modified) "
	    "VALUES (?, ?, ?, ?, coalesce(?, 'VEVENT,VTODO,VJOURNAL'), ?, ?, "
	    "?)");
	if (seq < 0 || s == NULL) {
		rc = -1;
		goto fail;
	}
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	if (parent)
		sqlite3_bind_int64(s, 3, parent);
	sqlite3_bind_int(s, 4, is_calendar);
	bind_text(s, 5, components);
	sqlite3_bind_int64(s, 6, seq);
	sqlite3_bind_int64(s, 7, now);
	sqlite3_bind_int64(s, 8, now);
	rc = exec_stmt(c, s, "collection insert");
	if (rc)
		goto fail;
	if (id)
		*id = sqlite3_last_insert_rowid(c->db);
	return store_commit(st);
fail:
	store_rollback(st);
	return rc;
}

int
store_collection_delete(struct store *st, int64_t user_id, const char *path)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	/* ON DELETE CASCADE takes children, objects, props and changes. */
	if (c == NULL || (s = stmt(c, "DELETE FROM collections "
	    "WHERE user_id = ? AND path = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	if (exec_stmt(c, s, "collection delete"))
		return -1;
	return sqlite3_changes(c->db) ? 0 : STORE_NOTFOUND;
}

int
store_collection_set(struct store *st, int64_t coll_id, const char *column,
    const char *value)
{
	static const char *const sql[][2] = {
		{ "displayname",
		  "UPDATE collections SET displayname = ? WHERE id = ?" },
		{ "description",
		  "UPDATE collections SET description = ? WHERE id = ?" },
		{ "color", "UPDATE collections SET color = ? WHERE id = ?" },
		{ "order",
		  "UPDATE collections SET sort_order = ? WHERE id = ?" },
		{ "timezone",
		  "UPDATE collections SET timezone = ? WHERE id = ?" },
	};
	struct conn *c = conn_get(st);
	sqlite3_stmt *s = NULL;
	int64_t seq;

	if (c == NULL)
		return -1;
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
		if (!strcmp(column, sql[i][0]))
			s = stmt(c, sql[i][1]);
	if (s == NULL || store_begin(st))
		return -1;
	bind_text(s, 1, value);
	sqlite3_bind_int64(s, 2, coll_id);
	if (exec_stmt(c, s, "collection set") || (seq = next_seq(c)) < 0 ||
	    record_change(c, coll_id, NULL, 0, seq)) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st);
}

int
store_collection_list(struct store *st, int64_t user_id,
    const char *parent_path, store_collection_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL)
		return -1;
	if (parent_path == NULL)
		s = stmt(c, "SELECT " COLL_COLUMNS " FROM collections WHERE "
		    "user_id = ? AND parent_id IS NULL ORDER BY path");
	else
		s = stmt(c, "SELECT " COLL_COLUMNS " FROM collections WHERE "
		    "parent_id = (SELECT id FROM collections WHERE user_id = ?"
		    " AND path = ?) ORDER BY path");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	if (parent_path != NULL)
		sqlite3_bind_text(s, 2, parent_path, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_collection col;

		coll_row(s, &col);
		ret = fn(arg, &col);
		store_collection_clear(&col);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "collection list");
	sqlite3_reset(s);
	return ret;
}

/* ---- objects ---------------------------------------------------------- */

void
store_object_clear(struct store_object *o)
{
	if (o == NULL)
		return;
	free(o->name);
	free(o->uid);
	free(o->component);
	free(o->organizer);
	free(o->content_type);
	free(o->data);
	memset(o, 0, sizeof *o);
}

#define OBJ_COLUMNS "id, collection_id, name, uid, component, organizer, " \
	"content_type, etag, dtstart, dtend, modified, " \
	"CASE WHEN ?1 THEN data END, length(data)"

static int
obj_row(sqlite3_stmt *s, struct store_object *o)
{
	o->id = sqlite3_column_int64(s, 0);
	o->collection_id = sqlite3_column_int64(s, 1);
	o->name = col_strdup(s, 2);
	o->uid = col_strdup(s, 3);
	o->component = col_strdup(s, 4);
	o->organizer = col_strdup(s, 5);
	o->content_type = col_strdup(s, 6);
	o->etag = sqlite3_column_int64(s, 7);
	o->start = sqlite3_column_int64(s, 8);
	o->end = sqlite3_column_int64(s, 9);
	o->modified = sqlite3_column_int64(s, 10);
	if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
		const void *b = sqlite3_column_blob(s, 11);

		o->len = (size_t)sqlite3_column_bytes(s, 11);
		o->data = malloc(o->len + 1);
		if (o->data == NULL)
			return -1;
		if (o->len)
			memcpy(o->data, b, o->len);
		o->data[o->len] = '\0';
	} else {
		/* length() of a blob reads the record header, not the data */
		o->len = (size_t)sqlite3_column_int64(s, 12);
	}
	return o->name == NULL ? -1 : 0;
}

static int
obj_one(struct conn *c, sqlite3_stmt *s, struct store_object *out)
{
	int rc = sqlite3_step(s), ret;

	if (rc == SQLITE_ROW) {
		ret = obj_row(s, out);
		if (ret)
			store_object_clear(out);
	} else
		ret = rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "object");
	sqlite3_reset(s);
	return ret;
}

int
store_object_get(struct store *st, int64_t coll_id, const char *name,
    int with_data, struct store_object *out)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT " OBJ_COLUMNS " FROM objects "
	    "WHERE collection_id = ?2 AND name = ?3")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, with_data);
	sqlite3_bind_int64(s, 2, coll_id);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	return obj_one(c, s, out);
}

int
store_object_find_uid(struct store *st, int64_t user_id, const char *uid,
    struct store_object *out, int with_data)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT " OBJ_COLUMNS " FROM objects "
	    "WHERE uid = ?2 AND collection_id IN (SELECT id FROM collections"
	    " WHERE user_id = ?3 AND is_calendar) ORDER BY id LIMIT 1"))
	    == NULL)
		return -1;
	sqlite3_bind_int(s, 1, with_data);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, user_id);
	return obj_one(c, s, out);
}

int
store_object_put(struct store *st, int64_t coll_id, const char *name,
    const char *data, size_t len, const char *content_type,
    const struct store_object_meta *meta, int64_t *etag)
{
	return store_object_put_indexed(st, coll_id, name, data, len,
	    content_type, meta, NULL, 0, etag);
}

int
store_object_put_indexed(struct store *st, int64_t coll_id, const char *name,
    const char *data, size_t len, const char *content_type,
    const struct store_object_meta *meta, const void *instances,
    size_t instances_len, int64_t *etag)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int64_t seq;
	int rc;

	if (c == NULL || store_begin(st))
		return -1;
	s = stmt(c, "SELECT etag FROM objects WHERE collection_id = ? AND "
	    "name = ? AND content_type = ? AND data = ?");
	if (s == NULL)
		goto dberr;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, content_type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, data, (int)len, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		/* Byte-identical: not a change; the ETag stays. */
		if (etag)
			*etag = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		return store_commit(st);
	}
	sqlite3_reset(s);
	if ((seq = next_seq(c)) < 0)
		goto dberr;
	/* the new data's digest replaces the old one; none removes it */
	s = stmt(c, "INSERT INTO objects (collection_id, name, uid, component,"
	    " organizer, scheduling, dtstart, dtend, etag, content_type, data,"
	    " modified, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, ?12, ?13) ON CONFLICT (collection_id, name) DO UPDATE "
	    "SET uid = ?3, component = ?4, organizer = ?5, scheduling = ?6, "
	    "dtstart = ?7, dtend = ?8, etag = ?9, content_type = ?10, "
	    "data = ?11, modified = ?12, digest = ?13");
	if (s == NULL)
		goto dberr;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	bind_text(s, 3, meta ? meta->uid : NULL);
	bind_text(s, 4, meta ? meta->component : NULL);
	bind_text(s, 5, meta ? meta->organizer : NULL);
	sqlite3_bind_int(s, 6, meta ? meta->scheduling : 0);
	sqlite3_bind_int64(s, 7, meta ? meta->start : INT64_MIN);
	sqlite3_bind_int64(s, 8, meta ? meta->end : INT64_MAX);
	sqlite3_bind_int64(s, 9, seq);
	sqlite3_bind_text(s, 10, content_type, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 11, data, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 12, (int64_t)time(NULL));
	if (instances)
		sqlite3_bind_blob(s, 13, instances, (int)instances_len,
		    SQLITE_STATIC);
	rc = exec_stmt(c, s, "object put");
	if (rc == STORE_CONFLICT) {
		store_rollback(st);
		return STORE_CONFLICT;
	}
	if (rc || record_change(c, coll_id, name, 0, seq))
		goto dberr;
	if (etag)
		*etag = seq;
	return store_commit(st);
dberr:
	store_rollback(st);
	return -1;
}

int
store_object_delete(struct store *st, int64_t coll_id, const char *name)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int64_t seq;

	if (c == NULL || store_begin(st))
		return -1;
	s = stmt(c, "DELETE FROM objects WHERE collection_id = ? AND "
	    "name = ?");
	if (s == NULL)
		goto dberr;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (exec_stmt(c, s, "object delete"))
		goto dberr;
	if (sqlite3_changes(c->db) == 0) {
		store_rollback(st);
		return STORE_NOTFOUND;
	}
	s = stmt(c, "DELETE FROM props WHERE collection_id = ? AND "
	    "object = ?");
	if (s == NULL)
		goto dberr;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	if (exec_stmt(c, s, "props delete") || (seq = next_seq(c)) < 0 ||
	    record_change(c, coll_id, name, 1, seq))
		goto dberr;
	return store_commit(st);
dberr:
	store_rollback(st);
	return -1;
}

/*
 * A listing row with its strings borrowed from the statement: a listing of
 * 10,000 objects is then no 50,000 small allocations. Valid until the next
 * step.
 */
static int
obj_row_borrow(sqlite3_stmt *s, struct store_object *o)
{
	o->id = sqlite3_column_int64(s, 0);
	o->collection_id = sqlite3_column_int64(s, 1);
	o->name = (char *)sqlite3_column_text(s, 2);
	o->uid = (char *)sqlite3_column_text(s, 3);
	o->component = (char *)sqlite3_column_text(s, 4);
	o->organizer = (char *)sqlite3_column_text(s, 5);
	o->content_type = (char *)sqlite3_column_text(s, 6);
	o->etag = sqlite3_column_int64(s, 7);
	o->start = sqlite3_column_int64(s, 8);
	o->end = sqlite3_column_int64(s, 9);
	o->modified = sqlite3_column_int64(s, 10);
	if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
		/* column_text of a blob is NUL-terminated */
		o->data = (char *)sqlite3_column_text(s, 11);
		o->len = (size_t)sqlite3_column_bytes(s, 11);
		if (o->data == NULL)
			return -1;	/* out of memory converting */
	} else {
		o->data = NULL;
		o->len = (size_t)sqlite3_column_int64(s, 12);
	}
	o->instances = sqlite3_column_blob(s, 13);
	o->instances_len = (size_t)sqlite3_column_bytes(s, 13);
	if (o->instances == NULL)
		o->instances_len = 0;
	return o->name == NULL ? -1 : 0;
}

int
store_object_list(struct store *st, int64_t coll_id, int with_data,
    int64_t start, int64_t end, store_object_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL)
		return -1;
	/* Unbounded: walk the (collection_id, name) index, no sorting. */
	if (start == INT64_MIN && end == INT64_MAX)
		s = stmt(c, "SELECT " OBJ_COLUMNS ", NULL FROM objects "
		    "WHERE collection_id = ?2 ORDER BY name");
	else
		/* By start time: sorting whole rows (data and all) by name
		 * cost a third of a month's calendar-query. Short objects
		 * from where they can start, long ones (few) all; both from
		 * objects_when (migration 3 -> 4). */
		s = stmt(c, "SELECT " OBJ_COLUMNS ", CASE WHEN ?1 THEN digest "
		    "END FROM objects WHERE collection_id = ?2 AND "
		    "(dtend - dtstart > 691200) = 0 AND dtstart >= ?5 AND "
		    "dtstart < ?4 AND dtend > ?3 UNION ALL "
		    "SELECT " OBJ_COLUMNS ", CASE WHEN ?1 THEN digest "
		    "END FROM objects WHERE collection_id = ?2 AND "
		    "(dtend - dtstart > 691200) = 1 AND dtstart < ?4 AND "
		    "dtend > ?3");
	if (s == NULL)
		return -1;
	sqlite3_bind_int(s, 1, with_data);
	sqlite3_bind_int64(s, 2, coll_id);
	if (start != INT64_MIN || end != INT64_MAX) {
		sqlite3_bind_int64(s, 3, start);
		sqlite3_bind_int64(s, 4, end);
		sqlite3_bind_int64(s, 5, start < INT64_MIN + SPAN_SHORT ?
		    INT64_MIN : start - SPAN_SHORT);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_object o;

		memset(&o, 0, sizeof o);
		ret = obj_row_borrow(s, &o);
		if (ret == 0)
			ret = fn(arg, &o);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "object list");
	sqlite3_reset(s);
	return ret;
}

int
store_object_visit(struct store *st, int64_t coll_id, const char *name,
    int with_data, store_object_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	struct store_object o;
	sqlite3_stmt *s;
	int rc, ret;

	if (c == NULL || (s = stmt(c, "SELECT " OBJ_COLUMNS ", NULL FROM "
	    "objects WHERE collection_id = ?2 AND name = ?3")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, with_data);
	sqlite3_bind_int64(s, 2, coll_id);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memset(&o, 0, sizeof o);
		ret = obj_row_borrow(s, &o);
		if (ret == 0)
			ret = fn(arg, &o);
	} else
		ret = rc == SQLITE_DONE ? STORE_NOTFOUND :
		    db_fail(c, "object visit");
	sqlite3_reset(s);
	return ret;
}

int
store_object_brief(struct store *st, int64_t coll_id, store_brief_fn fn,
    void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL || (s = stmt(c, "SELECT name, etag, content_type "
	    "FROM objects INDEXED BY objects_brief WHERE collection_id = ? "
	    "ORDER BY name")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const char *ctype = (const char *)sqlite3_column_text(s, 2);

		if (name == NULL || ctype == NULL) {
			ret = -1;
			break;
		}
		ret = fn(arg, name, sqlite3_column_int64(s, 1), ctype);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "object brief");
	sqlite3_reset(s);
	return ret;
}

/* ---- changes ---------------------------------------------------------- */

int
store_changes_since(struct store *st, int64_t coll_id, int64_t since,
    store_change_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;
	int64_t token;

	if (c == NULL || read_begin(st))
		return -1;
	/* One read transaction: the token and the rows agree. */
	s = stmt(c, "SELECT synctoken FROM collections WHERE id = ?");
	if (s == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, coll_id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		store_rollback(st);
		return STORE_NOTFOUND;
	}
	token = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (since < 0 || since > token) {
		store_rollback(st);
		return STORE_NOTFOUND;
	}
	s = stmt(c, "SELECT name, deleted, seq FROM changes WHERE "
	    "collection_id = ? AND seq > ? AND (deleted = 0 OR ? > 0) "
	    "ORDER BY seq");
	if (s == NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_int64(s, 2, since);
	sqlite3_bind_int64(s, 3, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (const char *)sqlite3_column_text(s, 0),
		    sqlite3_column_int(s, 1), sqlite3_column_int64(s, 2));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "changes");
	sqlite3_reset(s);
	store_commit(st);
	return ret;
fail:
	store_rollback(st);
	return -1;
}

/* ---- dead properties -------------------------------------------------- */

int
store_prop_set(struct store *st, int64_t coll_id, const char *object,
    const char *ns, const char *name, const char *value)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT INTO props (collection_id, "
	    "object, ns, name, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO "
	    "UPDATE SET value = excluded.value")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, object ? object : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, ns ? ns : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, value, -1, SQLITE_STATIC);
	return exec_stmt(c, s, "prop set");
}

int
store_prop_remove(struct store *st, int64_t coll_id, const char *object,
    const char *ns, const char *name)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "DELETE FROM props WHERE collection_id"
	    " = ? AND object = ? AND ns = ? AND name = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, object ? object : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, ns ? ns : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
	return exec_stmt(c, s, "prop remove");
}

int
store_prop_list(struct store *st, int64_t coll_id, const char *object,
    store_prop_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL || (s = stmt(c, "SELECT ns, name, value FROM props "
	    "WHERE collection_id = ? AND object = ? ORDER BY ns, name"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, object ? object : "", -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "prop list");
	sqlite3_reset(s);
	return ret;
}

/* ---- WebDAV (webdav/) ------------------------------------------------- */

int
store_prop_any(struct store *st, int64_t coll_id, int *any)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL || (s = stmt(c, "SELECT 1 FROM props WHERE "
	    "collection_id = ? AND object != '' LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(c, "prop any");
	*any = rc == SQLITE_ROW;
	return 0;
}

int
store_prop_copy(struct store *st, int64_t from_coll, const char *from,
    int64_t to_coll, const char *to)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT OR REPLACE INTO props "
	    "(collection_id, object, ns, name, value) SELECT ?1, ?2, ns, "
	    "name, value FROM props WHERE collection_id = ?3 AND "
	    "object = ?4")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, to_coll);
	sqlite3_bind_text(s, 2, to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, from_coll);
	sqlite3_bind_text(s, 4, from, -1, SQLITE_STATIC);
	return exec_stmt(c, s, "prop copy");
}

int
store_object_uid_name(struct store *st, int64_t coll_id, const char *uid,
    char **name)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	*name = NULL;
	if (c == NULL || (s = stmt(c, "SELECT name FROM objects WHERE "
	    "collection_id = ? AND uid = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, coll_id);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*name = col_strdup(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return *name ? 0 : -1;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "uid name");
}

/* The id of to's parent collection (0 for a top-level path). */
static int
parent_id(struct store *st, int64_t user_id, const char *to, int64_t *id)
{
	const char *slash = strrchr(to, '/');
	struct store_collection pc;
	char *pp;
	int rc;

	*id = 0;
	if (slash == NULL)
		return 0;
	pp = strndup(to, (size_t)(slash - to));
	if (pp == NULL)
		return -1;
	rc = store_collection_get(st, user_id, pp, &pc);
	free(pp);
	if (rc == 0)
		*id = pc.id;
	store_collection_clear(&pc);
	return rc;
}

int
store_collection_move(struct store *st, int64_t user_id, const char *from,
    const char *to)
{
	struct conn *c = conn_get(st);
	struct store_collection src;
	sqlite3_stmt *s;
	int64_t parent, seq;
	int rc;

	if (c == NULL || store_begin(st))
		return -1;
	rc = store_collection_get(st, user_id, from, &src);
	if (rc == 0)
		rc = parent_id(st, user_id, to, &parent);
	if (rc)
		goto fail;
	/* Every path at or below from gets to's prefix instead. */
	s = stmt(c, "UPDATE collections SET path = ?3 || substr(path, "
	    "length(?2) + 1) WHERE user_id = ?1 AND (path = ?2 OR "
	    "substr(path, 1, length(?2) + 1) = ?2 || '/')");
	if (s == NULL)
		goto dberr;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, to, -1, SQLITE_STATIC);
	rc = exec_stmt(c, s, "collection move");
	if (rc)
		goto fail;
	s = stmt(c, "UPDATE collections SET parent_id = ? WHERE id = ?");
	if (s == NULL)
		goto dberr;
	if (parent)
		sqlite3_bind_int64(s, 1, parent);
	sqlite3_bind_int64(s, 2, src.id);
	if (exec_stmt(c, s, "collection reparent") ||
	    (seq = next_seq(c)) < 0 || record_change(c, src.id, NULL, 0, seq))
		goto dberr;
	store_collection_clear(&src);
	return store_commit(st);
dberr:
	rc = -1;
fail:
	store_collection_clear(&src);
	store_rollback(st);
	return rc;
}

/* Copies the objects and dead properties of collection from into to. */
static int
copy_contents(struct conn *c, int64_t from, int64_t to)
{
	sqlite3_stmt *s;
	int64_t seq = next_seq(c), now = (int64_t)time(NULL);

	if (seq < 0)
		return -1;
	s = stmt(c, "INSERT INTO objects (collection_id, name, uid, "
	    "component, organizer, scheduling, dtstart, dtend, etag, "
	    "content_type, data, modified, digest) SELECT ?1, name, uid, "
	    "component, organizer, scheduling, dtstart, dtend, ?3, "
	    "content_type, data, ?4, digest FROM objects WHERE "
	    "collection_id = ?2");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, to);
	sqlite3_bind_int64(s, 2, from);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_int64(s, 4, now);
	if (exec_stmt(c, s, "copy objects"))
		return -1;
	s = stmt(c, "INSERT OR REPLACE INTO changes (collection_id, name, "
	    "seq, deleted) SELECT collection_id, name, etag, 0 FROM objects "
	    "WHERE collection_id = ?");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, to);
	if (exec_stmt(c, s, "copy changes"))
		return -1;
	s = stmt(c, "INSERT OR REPLACE INTO props (collection_id, object, ns,"
	    " name, value) SELECT ?1, object, ns, name, value FROM props "
	    "WHERE collection_id = ?2");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, to);
	sqlite3_bind_int64(s, 2, from);
	if (exec_stmt(c, s, "copy props"))
		return -1;
	s = stmt(c, "UPDATE collections SET (displayname, description, "
	    "color, sort_order, timezone) = (SELECT displayname, description,"
	    " color, sort_order, timezone FROM collections WHERE id = ?1) "
	    "WHERE id = ?2");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, to);
	if (exec_stmt(c, s, "copy columns"))
		return -1;
	return record_change(c, to, NULL, 0, seq);
}

struct child_list {
	char **paths;
	size_t n;
	int oom;
};

static int
collect_child(void *arg, const struct store_collection *col)
{
	struct child_list *l = arg;
	char **p = realloc(l->paths, (l->n + 1) * sizeof *p);

	if (p == NULL || (p[l->n] = strdup(col->path)) == NULL) {
		if (p)
			l->paths = p;
		l->oom = 1;
		return -1;
	}
	l->paths = p;
	l->n++;
	return 0;
}

static int
copy_tree(struct store *st, struct conn *c, int64_t user_id,
    const char *from, const char *to, int deep, int level)
{
	struct store_collection src;
	struct child_list kids = { 0 };
	int64_t id;
	int rc;

	if (level > 32)
		return -1;
	rc = store_collection_get(st, user_id, from, &src);
	if (rc)
		return rc;
	rc = store_collection_create(st, user_id, to, src.is_calendar,
	    src.components, &id);
	if (rc == 0)
		rc = copy_contents(c, src.id, id);
	if (rc == 0 && deep)
		rc = store_collection_list(st, user_id, from, collect_child,
		    &kids);
	for (size_t i = 0; rc == 0 && i < kids.n; i++) {
		char *dst = NULL;

		if (asprintf(&dst, "%s%s", to, kids.paths[i] + strlen(from))
		    < 0)
			rc = -1;
		else
			rc = copy_tree(st, c, user_id, kids.paths[i], dst, 1,
			    level + 1);
		free(dst);
	}
	for (size_t i = 0; i < kids.n; i++)
		free(kids.paths[i]);
	free(kids.paths);
	store_collection_clear(&src);
	return rc;
}

int
store_collection_copy(struct store *st, int64_t user_id, const char *from,
    const char *to, int deep)
{
	struct conn *c = conn_get(st);
	size_t fl = strlen(from);
	int rc;

	/* A copy into itself would never end. */
	if (!strncmp(to, from, fl) && (to[fl] == '/' || to[fl] == '\0'))
		return STORE_CONFLICT;
	if (c == NULL || store_begin(st))
		return -1;
	rc = copy_tree(st, c, user_id, from, to, deep, 0);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}

/* ---- iTIP merge engine (server/itip.c) -------------------------------- */

int
store_itip_last(struct store *st, int64_t object_id, const char *attendee,
    const char *rid, int64_t *seq, char *dtstamp, size_t n)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL || (s = stmt(c, "SELECT sequence, dtstamp FROM "
	    "itip_replies WHERE object_id = ? AND attendee = ? AND "
	    "recurrence_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, object_id);
	sqlite3_bind_text(s, 2, attendee, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(s, 0);
		snprintf(dtstamp, n, "%s",
		    (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "itip last");
}

int
store_itip_last_set(struct store *st, int64_t object_id, const char *attendee,
    const char *rid, int64_t seq, const char *dtstamp)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT INTO itip_replies (object_id, "
	    "attendee, recurrence_id, sequence, dtstamp) VALUES (?, ?, ?, ?, "
	    "?) ON CONFLICT DO UPDATE SET sequence = excluded.sequence, "
	    "dtstamp = excluded.dtstamp")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, object_id);
	sqlite3_bind_text(s, 2, attendee, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, seq);
	sqlite3_bind_text(s, 5, dtstamp, -1, SQLITE_STATIC);
	return exec_stmt(c, s, "itip last set") ? -1 : 0;
}

int
store_itip_organizer_known(struct store *st, int64_t user_id,
    const char *addr)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	/* The index stores ORGANIZER lower-cased as written: mailto:x. */
	if (c == NULL || (s = stmt(c, "SELECT 1 FROM objects WHERE "
	    "organizer IN ('mailto:' || ?2, ?2) AND collection_id IN "
	    "(SELECT id FROM collections WHERE user_id = ?1 AND is_calendar)"
	    " LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_fail(c, "itip organizer");
}

int
store_itip_proposal_add(struct store *st, int64_t user_id, const char *uid,
    const char *method, const char *from, const char *data,
    const char *state, int dry_run, int *added)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	*added = 0;
	if (c == NULL || (s = stmt(c, "SELECT 1 FROM itip_proposals WHERE "
	    "user_id = ? AND uid = ? AND method = ? AND from_addr IS ? AND "
	    "data = ? AND state = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, method, -1, SQLITE_STATIC);
	bind_text(s, 4, from);
	sqlite3_bind_text(s, 5, data, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, state, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return db_fail(c, "itip proposal");
	*added = 1;
	if (dry_run)
		return 0;
	if ((s = stmt(c, "INSERT INTO itip_proposals (user_id, uid, method, "
	    "from_addr, ts, data, state) VALUES (?, ?, ?, ?, ?, ?, ?)"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, method, -1, SQLITE_STATIC);
	bind_text(s, 4, from);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	sqlite3_bind_text(s, 6, data, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, state, -1, SQLITE_STATIC);
	return exec_stmt(c, s, "itip proposal add") ? -1 : 0;
}

int
store_itip_proposal_list(struct store *st, int64_t user_id,
    store_itip_proposal_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL || (s = stmt(c, "SELECT id, uid, method, from_addr, "
	    "ts, data, state FROM itip_proposals WHERE user_id = ? "
	    "ORDER BY id")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_itip_proposal p;

		p.id = sqlite3_column_int64(s, 0);
		p.uid = (const char *)sqlite3_column_text(s, 1);
		p.method = (const char *)sqlite3_column_text(s, 2);
		p.from = (const char *)sqlite3_column_text(s, 3);
		p.ts = sqlite3_column_int64(s, 4);
		p.data = (const char *)sqlite3_column_text(s, 5);
		p.state = (const char *)sqlite3_column_text(s, 6);
		ret = fn(arg, &p);
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "itip proposal list");
	sqlite3_reset(s);
	return ret;
}

/* ---- IMAP accounts and the imip_log (imap-poller/, www/) -------------- */

static void
bind_imip(sqlite3_stmt *s, const struct store_imip *r)
{
	sqlite3_bind_int64(s, 1, r->user_id);
	sqlite3_bind_int64(s, 2, r->ts ? r->ts : (int64_t)time(NULL));
	if (r->uidvalidity || r->imap_uid) {
		sqlite3_bind_int64(s, 3, r->uidvalidity);
		sqlite3_bind_int64(s, 4, r->imap_uid);
	}
	bind_text(s, 5, r->message_id);
	bind_text(s, 6, r->cal_hash);
	bind_text(s, 7, r->from_addr);
	bind_text(s, 8, r->subject);
	bind_text(s, 9, r->method);
	bind_text(s, 10, r->ical_uid);
	bind_text(s, 11, r->summary);
	bind_text(s, 12, r->dtstart);
	bind_text(s, 13, r->decision);
	bind_text(s, 14, r->reason);
	bind_text(s, 15, r->hint);
	bind_text(s, 16, r->detail);
	if (r->raw)
		sqlite3_bind_blob(s, 17, r->raw, (int)r->raw_len,
		    SQLITE_STATIC);
	sqlite3_bind_int(s, 18, r->attempts);
	if (r->next_retry)
		sqlite3_bind_int64(s, 19, r->next_retry);
}

int
store_imip_insert(struct store *st, const struct store_imip *r, int64_t *id)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT INTO imip_log (user_id, ts, "
	    "uidvalidity, imap_uid, message_id, cal_hash, from_addr, subject,"
	    " method, ical_uid, summary, dtstart, decision, reason, hint, "
	    "detail, raw, attempts, next_retry) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"))
	    == NULL)
		return -1;
	bind_imip(s, r);
	if (exec_stmt(c, s, "imip insert"))
		return -1;
	if (id)
		*id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int
store_imip_update(struct store *st, const struct store_imip *r)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	/* ts stays the first decision's time unless the caller sets it. */
	if (c == NULL || (s = stmt(c, "UPDATE imip_log SET "
	    "ts = CASE WHEN ?21 THEN ?2 ELSE ts END, "
	    "uidvalidity = coalesce(?3, uidvalidity), "
	    "imap_uid = coalesce(?4, imap_uid), "
	    "message_id = coalesce(?5, message_id), "
	    "cal_hash = coalesce(?6, cal_hash), "
	    "from_addr = coalesce(?7, from_addr), "
	    "subject = coalesce(?8, subject), method = coalesce(?9, method), "
	    "ical_uid = coalesce(?10, ical_uid), "
	    "summary = coalesce(?11, summary), "
	    "dtstart = coalesce(?12, dtstart), decision = ?13, reason = ?14, "
	    "hint = ?15, detail = ?16, "
	    /* Only a skip or a defer can be checked again: keep no more. */
	    "raw = CASE WHEN ?13 IN ('skip', 'defer') "
	    "THEN coalesce(?17, raw) END, "
	    "attempts = ?18, next_retry = ?19 WHERE id = ?20 AND user_id = ?1"))
	    == NULL)
		return -1;
	bind_imip(s, r);
	sqlite3_bind_int64(s, 20, r->id);
	sqlite3_bind_int(s, 21, r->ts != 0);
	if (exec_stmt(c, s, "imip update"))
		return -1;
	return sqlite3_changes(c->db) ? 0 : STORE_NOTFOUND;
}

void
store_imip_raw_clear(struct store_imip_raw *r)
{
	if (r == NULL)
		return;
	free(r->decision);
	free(r->raw);
	memset(r, 0, sizeof *r);
}

int
store_imip_raw(struct store *st, int64_t id, struct store_imip_raw *out)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT user_id, ts, "
	    "coalesce(uidvalidity, 0), coalesce(imap_uid, 0), attempts, "
	    "decision, raw FROM imip_log WHERE id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->user_id = sqlite3_column_int64(s, 0);
		out->ts = sqlite3_column_int64(s, 1);
		out->uidvalidity = sqlite3_column_int64(s, 2);
		out->imap_uid = sqlite3_column_int64(s, 3);
		out->attempts = sqlite3_column_int(s, 4);
		out->decision = col_strdup(s, 5);
		if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
			out->len = (size_t)sqlite3_column_bytes(s, 6);
			out->raw = malloc(out->len + 1);
			if (out->raw) {
				memcpy(out->raw, sqlite3_column_blob(s, 6),
				    out->len);
				out->raw[out->len] = '\0';
			}
		}
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return out->decision && (out->raw || !out->len) ? 0 : -1;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "imip raw");
}

/* status page and API */

int
store_status_account(struct store *st, int64_t user_id,
    struct store_status_account *out)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	const unsigned char *t;
	int rc;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT state, detail, last_ok, "
	    "next_try FROM accounts WHERE user_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(c, "account status");
	t = sqlite3_column_text(s, 0);
	snprintf(out->state, sizeof out->state, "%s", t ? (const char *)t :
	    "new");
	t = sqlite3_column_text(s, 1);
	snprintf(out->detail, sizeof out->detail, "%s", t ? (const char *)t :
	    "");
	out->last_ok = sqlite3_column_int64(s, 2);
	out->next_try = sqlite3_column_int64(s, 3);
	sqlite3_reset(s);
	return 0;
}

int
store_status_counts(struct store *st, int64_t user_id, int64_t since,
    int64_t counts[4])
{
	static const char *const names[4] = { "accept", "skip", "defer",
	    "ignore" };
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	memset(counts, 0, 4 * sizeof counts[0]);
	if (c == NULL || (s = stmt(c, "SELECT decision, count(*) FROM "
	    "imip_log WHERE (?1 = 0 OR user_id = ?1) AND ts >= ?2 "
	    "GROUP BY decision")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 0);

		for (int i = 0; d && i < 4; i++)
			if (!strcmp(d, names[i]))
				counts[i] = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : db_fail(c, "imip counts");
}

int
store_status_calendars(struct store *st, int64_t user_id,
    store_status_cal_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL || (s = stmt(c, "SELECT c.path, c.displayname, "
	    "(SELECT count(*) FROM objects o WHERE o.collection_id = c.id "
	    "AND o.component = 'VEVENT') FROM collections c WHERE "
	    "c.user_id = ? AND c.is_calendar ORDER BY c.path")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (const char *)sqlite3_column_text(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    sqlite3_column_int64(s, 2));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "calendar status");
	sqlite3_reset(s);
	return ret;
}

int
store_status_daily(struct store *st, int64_t user_id, int64_t since,
    int64_t tz_offset, store_status_day_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, ret = 0;

	if (c == NULL || (s = stmt(c, "SELECT (ts + ?3) / 86400 AS day, "
	    "decision, count(*) FROM imip_log WHERE (?1 = 0 OR user_id = ?1) "
	    "AND ts >= ?2 GROUP BY day, decision ORDER BY day")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, since);
	sqlite3_bind_int64(s, 3, tz_offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    sqlite3_column_int64(s, 2));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "imip daily");
	sqlite3_reset(s);
	return ret;
}

#define STATUS_IMIP_COLUMNS "l.id, l.user_id, u.name, l.ts, l.uidvalidity, " \
	"l.imap_uid, l.message_id, l.from_addr, l.subject, l.method, " \
	"l.ical_uid, l.summary, l.dtstart, l.decision, l.reason, l.hint, " \
	"l.detail, l.attempts, l.next_retry"

/* Walks rows of a STATUS_IMIP_COLUMNS query; strings live until the step. */
static int
status_imip_rows(struct conn *c, sqlite3_stmt *s, store_status_imip_fn fn,
    void *arg, int *nrows)
{
	int rc, ret = 0;

	*nrows = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_imip r;

		memset(&r, 0, sizeof r);
		r.id = sqlite3_column_int64(s, 0);
		r.user_id = sqlite3_column_int64(s, 1);
		r.ts = sqlite3_column_int64(s, 3);
		r.uidvalidity = sqlite3_column_int64(s, 4);
		r.imap_uid = sqlite3_column_int64(s, 5);
		r.message_id = (const char *)sqlite3_column_text(s, 6);
		r.from_addr = (const char *)sqlite3_column_text(s, 7);
		r.subject = (const char *)sqlite3_column_text(s, 8);
		r.method = (const char *)sqlite3_column_text(s, 9);
		r.ical_uid = (const char *)sqlite3_column_text(s, 10);
		r.summary = (const char *)sqlite3_column_text(s, 11);
		r.dtstart = (const char *)sqlite3_column_text(s, 12);
		r.decision = (const char *)sqlite3_column_text(s, 13);
		r.reason = (const char *)sqlite3_column_text(s, 14);
		r.hint = (const char *)sqlite3_column_text(s, 15);
		r.detail = (const char *)sqlite3_column_text(s, 16);
		r.attempts = sqlite3_column_int(s, 17);
		r.next_retry = sqlite3_column_int64(s, 18);
		(*nrows)++;
		ret = fn(arg, &r, (const char *)sqlite3_column_text(s, 2));
		if (ret)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(c, "imip list");
	sqlite3_reset(s);
	return ret;
}

int
store_status_invitations(struct store *st, int64_t user_id,
    const char *decision, int64_t before, int limit,
    store_status_imip_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int n;

	/* two statements: "?1 = 0 OR user_id = ?1" would keep SQLite from
	 * the (user_id, id) index */
	if (c == NULL || (s = stmt(c, user_id ? "SELECT " STATUS_IMIP_COLUMNS
	    " FROM imip_log l JOIN users u ON u.id = l.user_id WHERE "
	    "l.user_id = ?1 AND (?2 IS NULL OR l.decision = ?2) "
	    "AND (?3 = 0 OR l.id < ?3) ORDER BY l.id DESC LIMIT ?4" :
	    "SELECT " STATUS_IMIP_COLUMNS " FROM imip_log l JOIN users u ON "
	    "u.id = l.user_id WHERE ?1 = 0 AND (?2 IS NULL OR l.decision = ?2) "
	    "AND (?3 = 0 OR l.id < ?3) ORDER BY l.id DESC LIMIT ?4")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	bind_text(s, 2, decision);
	sqlite3_bind_int64(s, 3, before);
	sqlite3_bind_int(s, 4, limit);
	return status_imip_rows(c, s, fn, arg, &n);
}

int
store_status_invitation(struct store *st, int64_t id,
    store_status_imip_fn fn, void *arg)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int n, rc;

	if (c == NULL || (s = stmt(c, "SELECT " STATUS_IMIP_COLUMNS " FROM "
	    "imip_log l JOIN users u ON u.id = l.user_id WHERE l.id = ?"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = status_imip_rows(c, s, fn, arg, &n);
	return rc ? rc : n ? 0 : STORE_NOTFOUND;
}

/* ---- poller bookkeeping (imap-poller/) ---- */

void
store_account_clear(struct store_account *a)
{
	if (a == NULL)
		return;
	free(a->state);
	free(a->detail);
	memset(a, 0, sizeof *a);
}

int
store_account_get(struct store *st, int64_t user_id,
    struct store_account *out)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof *out);
	if (c == NULL || (s = stmt(c, "SELECT coalesce(uidvalidity, 0), "
	    "last_uid, state, detail, coalesce(last_ok, 0), "
	    "coalesce(next_try, 0) FROM accounts WHERE user_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->uidvalidity = sqlite3_column_int64(s, 0);
		out->last_uid = sqlite3_column_int64(s, 1);
		out->state = col_strdup(s, 2);
		out->detail = col_strdup(s, 3);
		out->last_ok = sqlite3_column_int64(s, 4);
		out->next_try = sqlite3_column_int64(s, 5);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return out->state ? 0 : -1;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "account");
}

int
store_account_state(struct store *st, int64_t user_id, const char *state,
    const char *detail, int64_t next_try, int ok)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT INTO accounts (user_id, state, "
	    "detail, next_try, last_ok) VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 "
	    "THEN ?6 END) ON CONFLICT (user_id) DO UPDATE SET state = ?2, "
	    "detail = ?3, next_try = ?4, last_ok = CASE WHEN ?5 THEN ?6 ELSE "
	    "last_ok END")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
	bind_text(s, 3, detail);
	if (next_try)
		sqlite3_bind_int64(s, 4, next_try);
	sqlite3_bind_int(s, 5, ok);
	sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
	return exec_stmt(c, s, "account state");
}

int
store_account_reset(struct store *st, int64_t user_id, int64_t uidvalidity)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "INSERT INTO accounts (user_id, "
	    "uidvalidity, last_uid, state) VALUES (?1, ?2, 0, 'connecting') "
	    "ON CONFLICT (user_id) DO UPDATE SET uidvalidity = ?2, "
	    "last_uid = 0")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, uidvalidity);
	return exec_stmt(c, s, "account reset");
}

int
store_account_progress(struct store *st, int64_t user_id,
    int64_t uidvalidity, int64_t uid)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "UPDATE accounts SET last_uid = "
	    "max(last_uid, ?3) WHERE user_id = ?1 AND uidvalidity = ?2"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, uidvalidity);
	sqlite3_bind_int64(s, 3, uid);
	if (exec_stmt(c, s, "account progress"))
		return -1;
	return sqlite3_changes(c->db) ? 0 : STORE_CONFLICT;
}

static void
bind_id(sqlite3_stmt *s, int i, int64_t v)
{
	if (v)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

int
store_imip_seen(struct store *st, int64_t user_id, const char *message_id,
    const char *cal_hash)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL || (s = stmt(c, "SELECT 1 FROM imip_log WHERE "
	    "user_id = ? AND message_id IS ? AND cal_hash = ? LIMIT 1"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	bind_text(s, 2, message_id);
	bind_text(s, 3, cal_hash);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? STORE_NOTFOUND : db_fail(c, "imip seen");
}

int
store_imip_last_id(struct store *st, int64_t *id)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	if (c == NULL || (s = stmt(c, "SELECT coalesce(max(id), 0) FROM "
	    "imip_log")) == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : db_fail(c, "imip last");
}

int
store_imip_tag(struct store *st, int64_t user_id, int64_t after_id,
    const char *message_id, const char *cal_hash, int64_t uidvalidity,
    int64_t uid, int *n)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;

	if (c == NULL || (s = stmt(c, "UPDATE imip_log SET message_id = ?, "
	    "cal_hash = ?, uidvalidity = coalesce(uidvalidity, ?), "
	    "imap_uid = coalesce(imap_uid, ?) WHERE user_id = ? AND id > ?"))
	    == NULL)
		return -1;
	bind_text(s, 1, message_id);
	bind_text(s, 2, cal_hash);
	bind_id(s, 3, uidvalidity);
	bind_id(s, 4, uid);
	sqlite3_bind_int64(s, 5, user_id);
	sqlite3_bind_int64(s, 6, after_id);
	if (exec_stmt(c, s, "imip tag"))
		return -1;
	if (n)
		*n = sqlite3_changes(c->db);
	return 0;
}

void
store_imip_due_clear(struct store_imip_due *d)
{
	if (d == NULL)
		return;
	free(d->raw);
	memset(d, 0, sizeof *d);
}

int
store_imip_due(struct store *st, int64_t user_id, int64_t now,
    struct store_imip_due *out, size_t max, size_t *n)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc;

	*n = 0;
	if (c == NULL || (s = stmt(c, "SELECT id, coalesce(uidvalidity, 0), "
	    "coalesce(imap_uid, 0), raw FROM imip_log WHERE user_id = ? AND "
	    "decision = 'defer' AND raw IS NOT NULL AND next_retry <= ? "
	    "ORDER BY next_retry, id LIMIT ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, (int64_t)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_imip_due *d = &out[*n];
		const void *b = sqlite3_column_blob(s, 3);

		d->id = sqlite3_column_int64(s, 0);
		d->uidvalidity = sqlite3_column_int64(s, 1);
		d->imap_uid = sqlite3_column_int64(s, 2);
		d->len = (size_t)sqlite3_column_bytes(s, 3);
		d->raw = malloc(d->len + 1);
		if (d->raw == NULL) {
			sqlite3_reset(s);
			for (size_t i = 0; i < *n; i++)
				store_imip_due_clear(&out[i]);
			*n = 0;
			log_error("store imip due: out of memory");
			return -1;
		}
		if (d->len)
			memcpy(d->raw, b, d->len);
		d->raw[d->len] = '\0';
		(*n)++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < *n; i++)
			store_imip_due_clear(&out[i]);
		*n = 0;
		return db_fail(c, "imip due");
	}
	return 0;
}

int
store_imip_next_retry(struct store *st, int64_t user_id, int64_t *when)
{
	struct conn *c = conn_get(st);
	sqlite3_stmt *s;
	int rc, found = 0;

	if (c == NULL || (s = stmt(c, "SELECT min(next_retry) FROM imip_log "
	    "WHERE user_id = ? AND decision = 'defer' AND raw IS NOT NULL"))
	    == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, user_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*when = sqlite3_column_int64(s, 0);
		found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return db_fail(c, "imip next retry");
	return found ? 0 : STORE_NOTFOUND;
}
