/*
 * server/store.h: the SQLite store (WAL, foreign keys on). This module owns
 * all SQL. Each thread gets its own connection (opened on first use, closed
 * when the thread ends or at store_close), except that an HTTP request
 * leases one of a few pooled ones (store_lease_begin); prepared statements
 * are cached per connection, so HTTP threads read concurrently with
 * pollers writing.
 *
 * Model: every user has a home (implicit) holding collections addressed by
 * a relative path ("default", "work", "litmus/sub"); a collection is a
 * calendar (is_calendar) or a plain WebDAV collection. Objects live in a
 * collection under a name. Every change to an object is one row in
 * `changes` with a new global sequence number: that number is the object's
 * ETag, the collection's ctag and sync token.
 *
 * Errors: functions return 0 on success, STORE_NOTFOUND, STORE_CONFLICT or
 * -1 (a database error, already logged). Nothing here sends SQL text to a
 * client.
 */
#ifndef CALGATE_STORE_H
#define CALGATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NOTFOUND	1
#define STORE_CONFLICT	2	/* unique constraint (name or UID taken) */

#define STORE_SCHEMA_VERSION	5

struct store;

/*
 * Opens (creating if needed) data_dir/calgate.db and migrates it forward.
 * A schema newer than this binary knows is refused. On error returns NULL
 * and writes the reason to err.
 */
struct store *store_open(const char *data_dir, char *err, size_t errlen);
void store_close(struct store *);	/* accepts NULL */
int store_schema_version(struct store *);

/*
 * HTTP threads share a few pooled connections with large page caches:
 * between store_lease_begin and store_lease_end the calling thread's
 * store calls use one of them, taken on the first call (waiting while
 * all are leased) and given back at the end; a transaction still open
 * then is rolled back and logged. Other threads, and a thread that
 * already has a connection of its own, keep their own.
 */
void store_lease_begin(struct store *);
void store_lease_end(struct store *);

/*
 * Transactions on the calling thread's connection. store_begin takes the
 * write lock at once (BEGIN IMMEDIATE); nesting is counted, only the
 * outermost commit commits. store_rollback undoes the outermost.
 */
int store_begin(struct store *);
/* A read-only snapshot over several reads; ends with store_commit. */
int store_read_begin(struct store *);
int store_commit(struct store *);
void store_rollback(struct store *);

/* ---- users ---------------------------------------------------------- */

/* The id of user name, creating the row (and no collections) if needed. */
int store_user_ensure(struct store *, const char *name, int64_t *id);
/* The id of an existing user; STORE_NOTFOUND if none. */
int store_user_id(struct store *, const char *name, int64_t *id);

/* ---- collections ---------------------------------------------------- */

struct store_collection {
	int64_t id;
	int64_t user_id;
	char *path;			/* owned; relative to the home */
	int is_calendar;
	char *displayname;		/* owned; NULL when unset */
	char *description;
	char *color;
	char *order;
	char *timezone;			/* a VCALENDAR with one VTIMEZONE */
	char *components;		/* "VEVENT,VTODO,VJOURNAL" */
	int64_t synctoken;		/* last change; also the ctag */
	int64_t created, modified;	/* unix seconds */
};
void store_collection_clear(struct store_collection *);	/* frees fields */

int store_collection_get(struct store *, int64_t user_id, const char *path,
    struct store_collection *out);
/*
 * Creates a collection. parent_path is the containing collection's path,
 * or NULL for a top-level one; STORE_NOTFOUND if it does not exist,
 * STORE_CONFLICT if path is taken. components may be NULL (all three).
 */
int store_collection_create(struct store *, int64_t user_id,
    const char *path, int is_calendar, const char *components, int64_t *id);
/* Deletes a collection, everything below it and all their objects. */
int store_collection_delete(struct store *, int64_t user_id, const char *path);
/*
 * Sets one live property column: "displayname", "description", "color",
 * "order" or "timezone"; value NULL removes it. Counts as a change of the
 * collection (its synctoken moves).
 */
int store_collection_set(struct store *, int64_t coll_id, const char *column,
    const char *value);

/* Calls fn for each direct child collection of parent_path (NULL: top). */
typedef int (*store_collection_fn)(void *arg, const struct store_collection *);
int store_collection_list(struct store *, int64_t user_id,
    const char *parent_path, store_collection_fn fn, void *arg);

/* ---- objects -------------------------------------------------------- */

/* What the iCalendar layer says about a calendar object, for indexing. */
struct store_object_meta {
	const char *uid;		/* NULL for non-calendar resources */
	const char *component;		/* VEVENT, VTODO, VJOURNAL */
	int64_t start, end;		/* UTC span of all instances, for
					   time-range prefiltering;
					   INT64_MIN / INT64_MAX unbounded */
	const char *organizer;		/* mailto: lower-cased, or NULL */
	int scheduling;			/* 1: from iTIP (has ORGANIZER) */
};

struct store_object {
	int64_t id;
	int64_t collection_id;
	char *name;			/* owned */
	char *uid;			/* owned; NULL when none */
	char *component;
	char *organizer;
	char *content_type;
	char *data;			/* owned, NUL-terminated */
	size_t len;
	int64_t etag;			/* the change sequence number */
	int64_t start, end;
	int64_t modified;		/* unix seconds */
	const void *instances;		/* the instance digest (NULL: none);
					   only in store_object_list with
					   data, borrowed like the rest */
	size_t instances_len;
};
void store_object_clear(struct store_object *);	/* frees fields */

/* with_data = 0 leaves data NULL (cheaper for listings). */
int store_object_get(struct store *, int64_t coll_id, const char *name,
    int with_data, struct store_object *out);
/*
 * Creates or replaces the object. Fails with STORE_CONFLICT when another
 * object in the collection has the same UID. On success *etag is the new
 * ETag. A replacement with byte-identical data and content type changes
 * nothing and keeps the old ETag.
 */
int store_object_put(struct store *, int64_t coll_id, const char *name,
    const char *data, size_t len, const char *content_type,
    const struct store_object_meta *meta, int64_t *etag);
/*
 * store_object_put that also keeps server/ical.c's instance digest of the
 * data (NULL: none; store_object_put keeps none), for the time-range
 * queries of webdav/.
 */
int store_object_put_indexed(struct store *, int64_t coll_id,
    const char *name, const char *data, size_t len, const char *content_type,
    const struct store_object_meta *meta, const void *instances,
    size_t instances_len, int64_t *etag);
int store_object_delete(struct store *, int64_t coll_id, const char *name);
/* Finds the object with this UID in any of the user's calendars. */
int store_object_find_uid(struct store *, int64_t user_id, const char *uid,
    struct store_object *out, int with_data);

typedef int (*store_object_fn)(void *arg, const struct store_object *);
/*
 * Calls fn for each object in the collection, in name order; with
 * [start,end) given (not INT64_MIN/INT64_MAX), only objects whose indexed
 * span overlaps it, in no particular order. fn returning non-zero stops the walk and is returned.
 * The object passed to fn is borrowed and valid only during the call.
 */
int store_object_list(struct store *, int64_t coll_id, int with_data,
    int64_t start, int64_t end, store_object_fn fn, void *arg);

/*
 * store_object_get without copies: fn(arg, o) with the row borrowed, as
 * in store_object_list (instances NULL). Returns STORE_NOTFOUND without
 * calling fn when there is no such object, else fn's result (or -1).
 */
int store_object_visit(struct store *, int64_t coll_id, const char *name,
    int with_data, store_object_fn fn, void *arg);

/*
 * The cheapest listing: fn(arg, name, etag, content_type) for each object
 * of the collection in name order, from one index (strings valid during
 * the call). fn returning non-zero stops the walk and is returned.
 */
typedef int (*store_brief_fn)(void *arg, const char *name, int64_t etag,
    const char *content_type);
int store_object_brief(struct store *, int64_t coll_id, store_brief_fn fn,
    void *arg);

/* ---- changes (sync-collection) --------------------------------------- */

/*
 * Calls fn(arg, name, deleted, seq) for every object that changed in the
 * collection after token `since` (0: everything that exists), once each,
 * newest state only, in sequence order. STORE_NOTFOUND when since is older
 * than the collection's history (the client must resync).
 */
typedef int (*store_change_fn)(void *arg, const char *name, int deleted,
    int64_t seq);
int store_changes_since(struct store *, int64_t coll_id, int64_t since,
    store_change_fn fn, void *arg);

/* ---- dead properties ------------------------------------------------- */

/* object "" is the collection itself. value is the XML of the property. */
int store_prop_set(struct store *, int64_t coll_id, const char *object,
    const char *ns, const char *name, const char *value);
int store_prop_remove(struct store *, int64_t coll_id, const char *object,
    const char *ns, const char *name);
typedef int (*store_prop_fn)(void *arg, const char *ns, const char *name,
    const char *value);
int store_prop_list(struct store *, int64_t coll_id, const char *object,
    store_prop_fn fn, void *arg);

/* ---- WebDAV (webdav/) ----------------------------------------------- */

/* *any = 1 when some object of the collection has a dead property. */
int store_prop_any(struct store *, int64_t coll_id, int *any);
/* Copies every dead property of one object (or "" for the collection). */
int store_prop_copy(struct store *, int64_t from_coll, const char *from,
    int64_t to_coll, const char *to);
/*
 * The name of the object holding uid in the collection (malloc'd, caller
 * frees), STORE_NOTFOUND if none.
 */
int store_object_uid_name(struct store *, int64_t coll_id, const char *uid,
    char **name);
/*
 * Moves (renames) collection `from` and everything below it to `to`.
 * STORE_NOTFOUND when from or to's parent does not exist, STORE_CONFLICT
 * when to is taken. Objects keep their ETags.
 */
int store_collection_move(struct store *, int64_t user_id, const char *from,
    const char *to);
/*
 * Copies collection `from` (its properties, objects, dead properties and,
 * with deep, its sub-collections) to a new collection `to`. Errors as for
 * store_collection_move.
 */
int store_collection_copy(struct store *, int64_t user_id, const char *from,
    const char *to, int deep);

/* ---- the imip_log: one row per decision ------------------------------- */

/* One decision about one message, as recorded. Strings borrowed. */
struct store_imip {
	int64_t id;
	int64_t user_id;
	int64_t ts;			/* unix seconds of the decision */
	int64_t uidvalidity, imap_uid;	/* 0 when not from IMAP */
	const char *message_id;
	const char *cal_hash;		/* hex SHA-256 of the iMIP part */
	const char *from_addr, *subject;
	const char *method, *ical_uid, *summary, *dtstart;
	const char *decision;		/* accept, skip, defer, ignore */
	const char *reason, *hint;
	const char *detail;		/* the `explain` JSON */
	const char *raw;		/* kept for skip/defer (recheck) */
	size_t raw_len;
	int attempts;			/* retries so far (0: first try) */
	int64_t next_retry;		/* defer: when to try again; else 0 */
};

/* Inserts rec (id ignored); *id gets the new row's id. */
int store_imip_insert(struct store *, const struct store_imip *rec,
    int64_t *id);
/*
 * Rewrites the decision of row rec->id (decision, reason, hint, detail,
 * ts, attempts, next_retry, and the extracted fields); for a skip or a
 * defer raw is kept when rec->raw is NULL, else replaced; any other
 * decision drops it. STORE_NOTFOUND if there is no such row for
 * rec->user_id.
 */
int store_imip_update(struct store *, const struct store_imip *rec);

/* A recorded decision's kept message and retry state. */
struct store_imip_raw {
	int64_t user_id;
	int64_t ts;			/* first decision, unix seconds */
	int64_t uidvalidity, imap_uid;
	int attempts;
	char *decision;			/* owned */
	char *raw;			/* owned, NUL-terminated; NULL if none */
	size_t len;
};
/* Row id; STORE_NOTFOUND if there is none. Clear with the function below. */
int store_imip_raw(struct store *, int64_t id, struct store_imip_raw *out);
void store_imip_raw_clear(struct store_imip_raw *);

/* status page and API (server/api.c): read-only views, user_id 0 = all */

/* The poller's view of one account, as last written. */
struct store_status_account {
	char state[32];			/* connecting, idle, ... ; "new" */
	char detail[512];		/* "" when none */
	int64_t last_ok, next_try;	/* unix seconds; 0 when unset */
};
/* STORE_NOTFOUND when the poller has not written a row yet. */
int store_status_account(struct store *, int64_t user_id,
    struct store_status_account *out);

/* Decisions since `since` (unix seconds): [0] accept, [1] skip,
 * [2] defer, [3] ignore. */
int store_status_counts(struct store *, int64_t user_id, int64_t since,
    int64_t counts[4]);

/* fn for each calendar of the user, in path order, with its VEVENT count;
 * displayname may be NULL. fn returning non-zero stops and is returned. */
typedef int (*store_status_cal_fn)(void *arg, const char *path,
    const char *displayname, int64_t events);
int store_status_calendars(struct store *, int64_t user_id,
    store_status_cal_fn fn, void *arg);

/*
 * fn(arg, day, decision, n) for decisions since `since`, grouped by day
 * number ((ts + tz_offset) / 86400, tz_offset in seconds), in day order.
 */
typedef int (*store_status_day_fn)(void *arg, int64_t day,
    const char *decision, int64_t n);
int store_status_daily(struct store *, int64_t user_id, int64_t since,
    int64_t tz_offset, store_status_day_fn fn, void *arg);

/*
 * imip_log rows (never raw; rec->raw is NULL) with their user's name, by id
 * descending: decision NULL for all, before 0 for no cursor, at most limit.
 * fn returning non-zero stops and is returned.
 */
typedef int (*store_status_imip_fn)(void *arg, const struct store_imip *rec,
    const char *user);
int store_status_invitations(struct store *, int64_t user_id,
    const char *decision, int64_t before, int limit,
    store_status_imip_fn fn, void *arg);
/* One row by id, any user (the caller checks ownership); STORE_NOTFOUND. */
int store_status_invitation(struct store *, int64_t id,
    store_status_imip_fn fn, void *arg);

/* ---- iTIP merge engine (server/itip.c) -------------------------------- */

/*
 * The last iTIP message applied to an object, per attendee and instance:
 * attendee "" is the organizer's own REQUEST/CANCEL, rid "" the master.
 * dtstamp is "YYYYMMDDTHHMMSSZ". store_itip_last returns STORE_NOTFOUND
 * when nothing was recorded. Rows go away with their object.
 */
int store_itip_last(struct store *, int64_t object_id, const char *attendee,
    const char *rid, int64_t *seq, char *dtstamp, size_t n);
int store_itip_last_set(struct store *, int64_t object_id,
    const char *attendee, const char *rid, int64_t seq, const char *dtstamp);
/* 1 when addr (lower case, no mailto:) organizes one of the user's
 * objects, 0 when not, -1 on error. */
int store_itip_organizer_known(struct store *, int64_t user_id,
    const char *addr);

/* A COUNTER, DECLINECOUNTER or unknown attendee's REPLY, kept for a human. */
struct store_itip_proposal {
	int64_t id;
	const char *uid, *method, *from;	/* borrowed for the call */
	int64_t ts;
	const char *data;			/* the iTIP text */
	const char *state;	/* "pending", "unknown-attendee" */
};
/*
 * Records a proposal unless an identical one (same uid, method, from,
 * data, state) is there already; *added says whether it was new. With
 * dry_run it only says so.
 */
int store_itip_proposal_add(struct store *, int64_t user_id, const char *uid,
    const char *method, const char *from, const char *data,
    const char *state, int dry_run, int *added);
typedef int (*store_itip_proposal_fn)(void *arg,
    const struct store_itip_proposal *);
int store_itip_proposal_list(struct store *, int64_t user_id,
    store_itip_proposal_fn fn, void *arg);

/* ---- poller bookkeeping (imap-poller/) ------------------------------- */

/*
 * One row of `accounts`: the poll state of a user's mailbox, written by
 * imap-poller/ and shown on the status page. state is one of "connecting",
 * "idle" (IDLE), "polling" (no IDLE: NOOP every poll_interval), "backoff",
 * "auth-failed", "tls-error", "stopped"; detail is one line for a person
 * (never a password).
 */
struct store_account {
	int64_t uidvalidity;		/* 0: mailbox never opened */
	int64_t last_uid;		/* every UID <= this was handled */
	char *state;			/* owned */
	char *detail;			/* owned, NULL when none */
	int64_t last_ok;		/* last good contact, unix s; 0 never */
	int64_t next_try;		/* next attempt, unix s; 0 none */
};
void store_account_clear(struct store_account *);	/* frees fields */

/* STORE_NOTFOUND when the poller never ran for this user. */
int store_account_get(struct store *, int64_t user_id,
    struct store_account *out);
/*
 * Sets state, detail (NULL: none) and next_try (0: none), creating the
 * row if needed; ok != 0 also sets last_ok to now.
 */
int store_account_state(struct store *, int64_t user_id, const char *state,
    const char *detail, int64_t next_try, int ok);
/* A new UIDVALIDITY: stores it and sets last_uid back to 0. */
int store_account_reset(struct store *, int64_t user_id,
    int64_t uidvalidity);
/*
 * Moves last_uid forward to uid (never backwards), if the stored
 * UIDVALIDITY is still uidvalidity; else STORE_CONFLICT.
 */
int store_account_progress(struct store *, int64_t user_id,
    int64_t uidvalidity, int64_t uid);

/*
 * Whether the user already has a decision for the message with this
 * Message-ID (NULL: the message had none) and calendar-part hash:
 * 0 yes, STORE_NOTFOUND no, -1 error. How the poller recognises messages
 * it already handled when the mailbox's UIDVALIDITY changes.
 */
int store_imip_seen(struct store *, int64_t user_id, const char *message_id,
    const char *cal_hash);
/* The highest imip_log id (0 when empty). */
int store_imip_last_id(struct store *, int64_t *id);
/*
 * Stamps the user's rows with id > after_id (those a hook just added in
 * the current transaction) with the message's identity: message_id and
 * cal_hash are set (the poller owns cal_hash), uidvalidity and imap_uid
 * only where the hook left them NULL. *n (if not NULL): rows stamped.
 */
int store_imip_tag(struct store *, int64_t user_id, int64_t after_id,
    const char *message_id, const char *cal_hash, int64_t uidvalidity,
    int64_t uid, int *n);

/* A deferred decision due for another try. */
struct store_imip_due {
	int64_t id;
	int64_t uidvalidity, imap_uid;	/* 0 when unknown */
	char *raw;			/* owned, NUL-terminated */
	size_t len;
};
void store_imip_due_clear(struct store_imip_due *);	/* frees raw */
/*
 * Up to max rows of the user's imip_log with decision 'defer', a raw
 * message and next_retry <= now, oldest first, into out; *n is how many.
 * The caller clears each.
 */
int store_imip_due(struct store *, int64_t user_id, int64_t now,
    struct store_imip_due *out, size_t max, size_t *n);
/* The earliest next_retry of the user's deferred rows; STORE_NOTFOUND
 * when none is waiting. */
int store_imip_next_retry(struct store *, int64_t user_id, int64_t *when);

#endif
