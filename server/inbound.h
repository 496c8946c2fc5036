/*
 * server/inbound.h: one iMIP message through the whole inbound path: the
 * gate (policy/), the merge engine's own checks and the merge
 * (server/itip.c), the record in imip_log and the one log line. The IMAP
 * poller, `calgate explain --user` and the status page's "Check again" all
 * come through here, so they decide alike.
 */
#ifndef CALGATE_INBOUND_H
#define CALGATE_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "policy/gate.h"
#include "server/http.h"
#include "server/itip.h"

/* A decision with everything it rests on. */
struct inbound {
	struct gate_verdict v;		/* owned; v.decision is final */
	int merged;			/* the merge engine ran */
	struct itip_result merge;
};

/*
 * Decides raw[0..len) under u's policy (the global one when u is NULL).
 * When the gate accepts and st and u are given, the merge engine checks
 * the user's calendars and, unless dry_run, merges, in one store
 * transaction nested in the caller's. A refusal by the merge engine turns
 * the decision into a skip with its reason and a hint. Returns 0, or -1 on
 * a store error (nothing written). Free with inbound_clear.
 */
int inbound_decide(struct gate *, struct store *st,
    const struct config *cfg, const struct user_conf *u, const char *raw,
    size_t len, int dry_run, struct inbound *out);
void inbound_clear(struct inbound *);

/* Where a message came from, for the record; all may be 0. */
struct inbound_origin {
	int64_t uidvalidity, imap_uid;
	int64_t log_id;			/* retry or recheck of this row */
	/* Run inside the recording transaction (the poller's last UID). */
	int (*bookkeep)(void *ctx, int64_t log_id);
	void *bookkeep_ctx;
};

/*
 * Decides and merges raw for user u and records the decision: a new
 * imip_log row, or an update of origin->log_id. The gate runs first,
 * outside any transaction (DNS must not hold the store's write lock); the
 * merge, the record and origin->bookkeep then commit together. A defer
 * gets its next retry ([server] defer_retry, default 1 min, doubling)
 * until [server] defer_max after the first try, then becomes a skip with
 * reason defer-expired. Logs the decision line. Returns the final
 * decision (enum gate_decision) and *log_id, or -1 on a store error
 * (nothing recorded; the caller rolls back and tries later).
 */
int inbound_process(struct server *, const struct config *,
    const struct user_conf *u, const char *raw, size_t len,
    const struct inbound_origin *origin, int64_t *log_id);

/*
 * The status page's "Check again": re-runs inbound_process on the raw
 * message kept with row log_id of user u, in one transaction. 0, or -1
 * with a sentence in err. (struct server's recheck hook.)
 */
int inbound_recheck(struct server *, const struct user_conf *u,
    int64_t log_id, char *err, size_t errlen);

/* The IMAP poller's hook (imap-poller/poller.h): inbound_process. */
struct poller_msg;
enum poller_verdict inbound_hook(void *arg, struct server *,
    const struct user_conf *, const struct poller_msg *);

#endif
