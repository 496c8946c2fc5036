/*
 * imap-poller/poller.h: one thread per [user] with an imap account. Each
 * watches its mailbox (IDLE, else polling), hands every calendar message
 * to a hook exactly once, re-offers deferred ones when due, backs off on
 * faults and shows its state in the store's accounts table.
 *
 * Exactly once: the hook decides (slow work such as DNS happens outside
 * any store transaction, so no writer waits on it), then opens one store
 * transaction, records its decision and merge there, and calls the
 * message's bookkeep() before it commits: the poller stamps the new
 * imip_log row with the message's identity and stores the account's new
 * last UID in that same transaction. A crash at any point loses no message
 * and applies none twice.
 *
 * The stamp is the message's Message-ID and cal_hash: the hex SHA-256 of
 * the first
 * text/calendar (or application/ics) part in BODYSTRUCTURE order, exactly
 * as the server sends BODY.PEEK[<part>] (still transfer-encoded; the whole
 * message if the part cannot be fetched). A message whose Message-ID and
 * cal_hash are already in imip_log is not offered again: that is how a
 * UIDVALIDITY change (mailbox recreated) is survived without duplicates.
 */
#ifndef CALGATE_POLLER_H
#define CALGATE_POLLER_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct user_conf;

struct poller_msg {
	uint32_t uidvalidity, uid;
	const char *raw;		/* the exact bytes (BODY.PEEK[]) */
	size_t len;
	int64_t retry_log_id;		/* 0: new message; else the
					   imip_log row being retried */
	/*
	 * The poller's own bookkeeping for this message. The hook calls
	 * it inside the transaction that records its decision, with the
	 * imip_log row id it wrote, before committing; non-zero means roll
	 * back and return POLLER_RETRY.
	 */
	int (*bookkeep)(void *ctx, int64_t log_id);
	void *bookkeep_ctx;
};

/*
 * DONE: decided (accepted/skipped/ignored) and recorded by the hook.
 * DEFER: temporary policy failure (DNS); the hook recorded it with a
 *   next_retry time; the poller offers it again when due (retry_log_id).
 * RETRY: could not record (store error, disk full): the poller rolls back,
 *   does not advance last_uid, backs off and tries again later.
 */
enum poller_verdict { POLLER_DONE, POLLER_DEFER, POLLER_RETRY };

/*
 * Called on the account's thread, outside any store transaction (see
 * above for what it must do inside one). The user_conf belongs to the current configuration and is valid for the
 * duration of the call only.
 */
typedef enum poller_verdict (*poller_hook)(void *arg, struct server *,
    const struct user_conf *, const struct poller_msg *);

/*
 * Starts one thread per [user] with imap set, in the server's current
 * configuration (users must have their store_id). Returns 0, or -1 if a
 * thread could not be started (logged; the others keep running).
 */
int poller_start(struct server *, poller_hook, void *arg);
/*
 * Stops every poller; returns within 5 s. Stragglers (a hook still in a
 * DNS lookup) are abandoned and counted in the result: while it is not 0,
 * nothing a hook uses (store, gate, config) may be freed.
 */
int poller_stop(void);
/*
 * The configuration changed (srv->cfg is the new one): stops the pollers
 * of removed users or changed IMAP settings, starts the new ones.
 */
void poller_reload(struct server *);

/*
 * The Message-ID header of a raw message, whitespace-folded and trimmed,
 * malloc'd (caller frees); NULL when there is none. Exposed for tests.
 */
char *poller_message_id(const char *raw, size_t len);

#endif
