/*
 * imap-poller/poller.c: the accounts. One thread per [user] with imap set:
 * connect (imap.c), scan the UIDs above the stored last UID, hand each
 * calendar message to the hook inside a store transaction that also moves
 * last_uid, wait (IDLE or poll), repeat; re-offer deferred decisions when
 * due; back off on faults (1 s doubling to 5 min, 15 min after a refused
 * login). The hook (policy + merge) is someone else's: this file never
 * decides about a message, it only makes sure each is decided once.
 *
 * Threads are cheap on purpose (small stacks, no big buffers, shared TLS
 * credentials) so hundreds of IDLE accounts fit in a few tens of MB.
 */
#include "imap-poller/poller.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "imap-poller/imap.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/store.h"

/*
 * 512 KiB: libetpan, GnuTLS and SQLite need little, but the hook (DKIM,
 * libical, the merge) runs on this stack too. Only touched pages count
 * towards RSS.
 */
#define POLLER_STACK		(512 * 1024)
#define BACKOFF_MAX_S		300
#define AUTH_BACKOFF_S		900
#define IDLE_REISSUE_S		(25 * 60)	/* RFC 2177: under 29 min */
#define DESCRIBE_BATCH		50
#define DUE_BATCH		8
#define MAX_MESSAGE		(50u * 1024 * 1024)
#define STOP_BUDGET_MS		4500
#define MSGID_MAX		998
#define ESTORE			100	/* beside enum imap_status */

struct acct {
	/* Copies: a reload may free the config this came from. */
	char *name;
	int64_t user_id;
	char *host, *login, *password, *mailbox, *ca_file, *flag;
	int port, ssl, plaintext, verify, poll_interval;

	int stopfd;			/* eventfd: readable = stop */
	pthread_t th;
	int started;
	atomic_int finished;

	/* Used by the account's own thread only. */
	int backoff;			/* seconds of the last backoff */
	int scanned;			/* a scan worked this session */
	char state[16];			/* last logged state, detail */
	char detail[256];
	int64_t next_due;		/* earliest deferred retry, 0: none */
	int64_t retry_floor;		/* no retry round before this */
	int flag_warned;
	struct acct *next;
};

static struct {
	pthread_mutex_t mu;
	struct acct *list;
	struct server *srv;
	/*
	 * Set before the first thread starts and never cleared: account
	 * threads read it without the lock, up to their last message.
	 */
	poller_hook hook;
	void *arg;
	int stopped;			/* poller_stop ran: no more starts */
} P = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- accounts -------------------------------------------------------- */

static int
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}

static int
acct_same(const struct acct *a, const struct user_conf *u)
{
	return u->imap && a->user_id == u->store_id &&
	    str_same(a->host, u->imap_host) && a->port == u->imap_port &&
	    a->ssl == u->imap_ssl &&
	    a->plaintext == (u->imap_tls == CONF_TLS_NONE) &&
	    a->verify == u->imap_tls_verify &&
	    str_same(a->login, u->imap_login) &&
	    str_same(a->password, u->imap_secret) &&
	    str_same(a->mailbox, u->imap_mailbox) &&
	    str_same(a->ca_file, u->imap_ca_file) &&
	    str_same(a->flag, u->imap_flag) &&
	    a->poll_interval == u->poll_interval;
}

static void
acct_free(struct acct *a)
{
	if (a == NULL)
		return;
	if (a->password)
		explicit_bzero(a->password, strlen(a->password));
	free(a->name);
	free(a->host);
	free(a->login);
	free(a->password);
	free(a->mailbox);
	free(a->ca_file);
	free(a->flag);
	if (a->stopfd >= 0)
		close(a->stopfd);
	free(a);
}

static char *
dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*bad = 1;
	return d;
}

static struct acct *
acct_new(const struct user_conf *u)
{
	struct acct *a = calloc(1, sizeof *a);
	int bad = 0;

	if (a == NULL)
		return NULL;
	a->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->name = dup_or_null(u->name, &bad);
	a->user_id = u->store_id;
	a->host = dup_or_null(u->imap_host, &bad);
	a->login = dup_or_null(u->imap_login, &bad);
	a->password = dup_or_null(u->imap_secret ? u->imap_secret : "",
	    &bad);
	a->mailbox = dup_or_null(u->imap_mailbox ? u->imap_mailbox : "INBOX",
	    &bad);
	a->ca_file = dup_or_null(u->imap_ca_file, &bad);
	a->flag = dup_or_null(u->imap_flag, &bad);
	a->port = u->imap_port;
	a->ssl = u->imap_ssl;
	a->plaintext = u->imap_tls == CONF_TLS_NONE;
	a->verify = u->imap_tls_verify;
	a->poll_interval = u->poll_interval > 0 ? u->poll_interval : 60;
	if (bad || a->stopfd < 0) {
		acct_free(a);
		return NULL;
	}
	return a;
}

static int
stopping(const struct acct *a)
{
	struct pollfd p = { .fd = a->stopfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Sleeps up to seconds; returns 1 if asked to stop meanwhile. */
static int
nap(const struct acct *a, int64_t seconds)
{
	struct pollfd p = { .fd = a->stopfd, .events = POLLIN };
	int64_t ms = seconds * 1000;
	int r;

	while ((r = poll(&p, 1, ms > 3600000 ? 3600000 : (int)ms)) < 0 &&
	    errno == EINTR)
		;
	return r > 0;
}

/* ---- state ----------------------------------------------------------- */

static int
is_retry_state(const char *s)
{
	return !strcmp(s, "backoff") || !strcmp(s, "auth-failed") ||
	    !strcmp(s, "tls-error");
}

/*
 * Records the account's state for the status page. Logs one line when the
 * state or its detail changes; the "connecting" of a retry, and the same
 * failure again, are not news.
 */
static void
set_state(struct acct *a, const char *state, const char *detail,
    int64_t next_try, int ok)
{
	char qd[300], d[sizeof a->detail];
	enum log_level lvl = LOG_INFO;
	size_t n;

	/* One tidy line: no trailing blanks (GnuTLS leaves some). */
	snprintf(d, sizeof d, "%s", detail ? detail : "");
	for (n = strlen(d); n > 0 && (d[n - 1] == ' ' || d[n - 1] == '\n');)
		d[--n] = '\0';
	detail = d[0] ? d : NULL;
	if (!strcmp(state, "connecting") && is_retry_state(a->state))
		goto store;
	if (!strcmp(a->state, state) && !strcmp(a->detail, detail ? detail :
	    ""))
		goto store;
	snprintf(a->state, sizeof a->state, "%s", state);
	snprintf(a->detail, sizeof a->detail, "%s", detail ? detail : "");
	if (!strcmp(state, "backoff"))
		lvl = LOG_WARN;
	else if (!strcmp(state, "auth-failed") || !strcmp(state, "tls-error"))
		lvl = LOG_ERROR;
	if (next_try)
		log_msg(lvl, "imap state account=%s state=%s detail=%s "
		    "retry_in=%llds", a->name, state,
		    log_q(qd, sizeof qd, detail),
		    (long long)(next_try - (int64_t)time(NULL)));
	else
		log_msg(lvl, "imap state account=%s state=%s detail=%s",
		    a->name, state, log_q(qd, sizeof qd, detail));
store:
	store_account_state(P.srv->store, a->user_id, state, detail,
	    next_try, ok);
}

/* ---- one message ------------------------------------------------------ */

char *
poller_message_id(const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len;
	char *out;
	size_t n = 0;

	while (p < end && *p != '\r' && *p != '\n') {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;

		if ((size_t)(end - p) > 11 && !strncasecmp(p, "message-id:",
		    11)) {
			out = malloc(MSGID_MAX + 1);
			if (out == NULL)
				return NULL;
			p += 11;
			/* The value, with its folded continuation lines. */
			for (;;) {
				for (; p < end && *p != '\n'; p++) {
					int sp = *p == ' ' || *p == '\t' ||
					    *p == '\r';

					if (sp && (n == 0 || out[n - 1] == ' '))
						continue;
					if (n < MSGID_MAX)
						out[n++] = sp ? ' ' : *p;
				}
				if (p + 1 < end && (p[1] == ' ' ||
				    p[1] == '\t')) {
					p++;
					continue;
				}
				break;
			}
			while (n > 0 && out[n - 1] == ' ')
				n--;
			out[n] = '\0';
			if (n == 0) {
				free(out);
				return NULL;
			}
			return out;
		}
		p = next;
	}
	return NULL;
}

/* Calls the hook with the current configuration's view of the user. */
static enum poller_verdict
call_hook(struct acct *a, const struct poller_msg *m)
{
	struct config *cfg = server_config_get(P.srv);
	const struct user_conf *u = config_user(cfg, a->name);
	enum poller_verdict v = POLLER_RETRY;

	/* Gone from the config: the reload that removed it stops us. */
	if (u != NULL)
		v = P.hook(P.arg, P.srv, u, m);
	server_config_put(P.srv, cfg);
	return v;
}

static void
hex32(const unsigned char *h, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + i * 2, 3, "%02x", h[i]);
}

static int
set_flag(struct acct *a, struct imap *im, uint32_t uid, char *err,
    size_t errlen)
{
	char ebuf[256], q[300];
	enum imap_status st;

	st = imap_set_flag(im, uid, a->flag, ebuf, sizeof ebuf);
	if (st == IMAP_OK)
		return IMAP_OK;
	if (st != IMAP_ENO) {
		snprintf(err, errlen, "%s", ebuf);
		return st;
	}
	/* The server refused the keyword: keep going, say so once. */
	if (!a->flag_warned)
		log_warn("imap flag account=%s uid=%u error=%s", a->name,
		    uid, log_q(q, sizeof q, ebuf));
	a->flag_warned = 1;
	return IMAP_OK;
}

/* A message too large to fetch: recorded as a skip, never silently. */
static int
record_too_large(struct acct *a, const struct imap_msginfo *mi,
    uint32_t uidv)
{
	struct store_imip e = {
		.user_id = a->user_id, .uidvalidity = uidv, .imap_uid = mi->uid,
		.decision = "skip", .reason = "too-large",
	};
	char detail[128];
	struct store *st = P.srv->store;

	snprintf(detail, sizeof detail, "message of %u bytes is over the "
	    "%u byte limit; not fetched", mi->size, MAX_MESSAGE);
	e.detail = detail;
	log_warn("imap too-large account=%s uid=%u size=%u", a->name,
	    mi->uid, mi->size);
	if (store_begin(st))
		return -1;
	if (store_imip_insert(st, &e, NULL) ||
	    store_account_progress(st, a->user_id, uidv, mi->uid)) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st);
}

/* What bookkeep() needs to stamp one message. */
struct stamp {
	struct acct *a;
	const char *msgid, *hex;
	uint32_t uidv, uid;
	int called;
};

/*
 * Inside the hook's transaction: the decision row gets the message's
 * identity, and the account's last UID moves past it.
 */
static int
bookkeep(void *ctx, int64_t log_id)
{
	struct stamp *sp = ctx;
	struct store *st = P.srv->store;
	int n = 0;

	sp->called = 1;
	if (log_id > 0 && store_imip_tag(st, sp->a->user_id, log_id - 1,
	    sp->msgid, sp->hex, sp->uidv, sp->uid, &n))
		return -1;
	if (n == 0)
		log_warn("imap hook account=%s uid=%u recorded no decision",
		    sp->a->name, sp->uid);
	return store_account_progress(st, sp->a->user_id, sp->uidv, sp->uid);
}

/* A retried row needs no stamp: it has one since its first decision. */
static int
bookkeep_none(void *ctx, int64_t log_id)
{
	(void)log_id;
	((struct stamp *)ctx)->called = 1;
	return 0;
}

/*
 * Fetches one calendar message and has it decided; the decision and the
 * new last UID commit together (see poller.h). Returns IMAP_OK, an
 * imap_status or ESTORE.
 */
static int
process(struct acct *a, struct imap *im, const struct imap_msginfo *mi,
    uint32_t uidv, char *err, size_t errlen)
{
	struct store *st = P.srv->store;
	struct poller_msg m = { .uidvalidity = uidv, .uid = mi->uid };
	struct stamp sp = { .a = a, .uidv = uidv, .uid = mi->uid };
	enum poller_verdict v = POLLER_DONE;
	unsigned char h[32];
	char hex[65], *raw = NULL, *msgid = NULL, q[300];
	size_t len = 0;
	int rc, seen;

	rc = imap_fetch(im, mi, &raw, &len, h, err, errlen);
	if (rc != IMAP_OK)
		return rc;
	if (raw == NULL) {
		log_info("imap vanished account=%s uid=%u", a->name, mi->uid);
		return IMAP_OK;		/* expunged: nothing to decide */
	}
	hex32(h, hex);
	msgid = poller_message_id(raw, len);
	m.raw = raw;
	m.len = len;
	sp.msgid = msgid;
	sp.hex = hex;
	m.bookkeep = bookkeep;
	m.bookkeep_ctx = &sp;
	rc = ESTORE;
	seen = store_imip_seen(st, a->user_id, msgid, hex);
	if (seen == 0) {
		log_info("imap duplicate account=%s uid=%u message_id=%s: "
		    "already decided, not offered again", a->name, mi->uid,
		    log_q(q, sizeof q, msgid));
		if (store_begin(st) || store_account_progress(st, a->user_id,
		    uidv, mi->uid) || store_commit(st)) {
			store_rollback(st);
			snprintf(err, errlen, "store: cannot record the last "
			    "UID");
			goto out;
		}
	} else if (seen != STORE_NOTFOUND) {
		snprintf(err, errlen, "store: cannot look up the message log");
		goto out;
	} else {
		v = call_hook(a, &m);
		if (v == POLLER_RETRY || !sp.called) {
			snprintf(err, errlen, "message uid %u could not be "
			    "recorded; will retry", mi->uid);
			goto out;
		}
	}
	log_debug("imap message account=%s uid=%u verdict=%s", a->name,
	    mi->uid, seen == 0 ? "duplicate" : v == POLLER_DONE ? "done" :
	    "defer");
	rc = IMAP_OK;
	/* After the commit: a crash here only loses the cosmetic flag. */
	if (a->flag && v == POLLER_DONE)
		rc = set_flag(a, im, mi->uid, err, errlen);
out:
	free(msgid);
	free(raw);
	return rc;
}

/* ---- scanning and retries --------------------------------------------- */

/* Handles every message above *last_uid, in UID order. */
static int
scan(struct acct *a, struct imap *im, uint32_t uidv, uint32_t *last_uid,
    char *err, size_t errlen)
{
	struct imap_msginfo info[DESCRIBE_BATCH];
	uint32_t *uids = NULL;
	size_t n = 0, found = 0;
	struct timespec t0, t1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = imap_new_uids(im, *last_uid, &uids, &n, err, errlen);
	if (rc != IMAP_OK)
		return rc;
	for (size_t i = 0; i < n && rc == IMAP_OK; i += DESCRIBE_BATCH) {
		size_t k = n - i < DESCRIBE_BATCH ? n - i : DESCRIBE_BATCH;

		rc = imap_describe(im, uids + i, k, info, err, errlen);
		for (size_t j = 0; j < k && rc == IMAP_OK; j++) {
			if (!info[j].present || !info[j].calendar)
				continue;
			found++;
			if (info[j].size > MAX_MESSAGE)
				rc = record_too_large(a, &info[j], uidv) ?
				    ESTORE : IMAP_OK;
			else
				rc = process(a, im, &info[j], uidv, err,
				    errlen);
			if (rc == ESTORE && err[0] == '\0')
				snprintf(err, errlen, "store error");
			if (rc == IMAP_OK)
				*last_uid = info[j].uid;
			if (rc == IMAP_OK && stopping(a))
				rc = IMAP_ESTOP;
		}
		/* Everything in this batch is handled: move past it all. */
		if (rc == IMAP_OK && uids[i + k - 1] > *last_uid) {
			if (store_account_progress(P.srv->store, a->user_id,
			    uidv, uids[i + k - 1])) {
				snprintf(err, errlen, "store: cannot record "
				    "the last UID");
				rc = ESTORE;
			} else
				*last_uid = uids[i + k - 1];
		}
	}
	free(uids);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_poll();
	if (found)
		log_info("imap poll account=%s new=%zu calendar=%zu "
		    "took_ms=%lld", a->name, n, found,
		    (long long)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000));
	return rc;
}

static void
refresh_due(struct acct *a)
{
	int64_t when;

	if (store_imip_next_retry(P.srv->store, a->user_id, &when) == 0)
		a->next_due = when;
	else
		a->next_due = 0;
}

/* When the next retry round may run; 0: nothing is deferred. */
static int64_t
due_at(const struct acct *a)
{
	if (a->next_due == 0)
		return 0;
	return a->next_due > a->retry_floor ? a->next_due : a->retry_floor;
}

/* Offers the deferred decisions that are due to the hook again. */
static int
retries(struct acct *a, struct imap *im, uint32_t uidv, char *err,
    size_t errlen)
{
	struct store_imip_due due[DUE_BATCH];
	struct store *st = P.srv->store;
	int64_t now = time(NULL);
	size_t n = 0, i;
	int rc = IMAP_OK;

	if (due_at(a) == 0 || due_at(a) > now)
		return IMAP_OK;
	if (store_imip_due(st, a->user_id, now, due, DUE_BATCH, &n)) {
		snprintf(err, errlen, "store: cannot read deferred messages");
		return ESTORE;
	}
	for (i = 0; i < n && rc == IMAP_OK; i++) {
		struct poller_msg m = {
			.uidvalidity = (uint32_t)due[i].uidvalidity,
			.uid = (uint32_t)due[i].imap_uid,
			.raw = due[i].raw, .len = due[i].len,
			.retry_log_id = due[i].id,
		};
		struct stamp sp = { .a = a };
		enum poller_verdict v;

		m.bookkeep = bookkeep_none;
		m.bookkeep_ctx = &sp;
		v = call_hook(a, &m);
		if (v == POLLER_RETRY || !sp.called) {
			snprintf(err, errlen, "deferred message %lld could "
			    "not be recorded; will retry",
			    (long long)due[i].id);
			rc = ESTORE;
		} else if (v == POLLER_DONE && a->flag && m.uid &&
		    m.uidvalidity == uidv) {
			rc = set_flag(a, im, m.uid, err, errlen);
		}
	}
	for (i = 0; i < n; i++)
		store_imip_due_clear(&due[i]);
	refresh_due(a);
	/*
	 * A full batch: more may be due, go on soon. Otherwise anything still
	 * due was left in the past by the hook: that must not spin us.
	 */
	if (n == DUE_BATCH)
		a->retry_floor = now + 1;
	else if (a->next_due && a->next_due <= now)
		a->retry_floor = now + 30;
	else
		a->retry_floor = 0;
	return rc;
}

/* ---- the account's thread ---------------------------------------------- */

/* One connected session, until an error or a stop. */
static int
session(struct acct *a, struct imap *im, char *err, size_t errlen)
{
	struct store *st = P.srv->store;
	struct store_account acc;
	uint32_t uidv = imap_uidvalidity(im), last = 0;
	const char *mode = imap_has_idle(im) ? "idle" : "polling";
	int rc;

	rc = store_account_get(st, a->user_id, &acc);
	if (rc != 0 && rc != STORE_NOTFOUND) {
		snprintf(err, errlen, "store: cannot read the account");
		return ESTORE;
	}
	if (rc == 0 && acc.uidvalidity == (int64_t)uidv) {
		last = (uint32_t)acc.last_uid;
	} else {
		if (rc == 0 && acc.uidvalidity != 0)
			log_warn("imap uidvalidity-changed account=%s old=%lld "
			    "new=%u: rescanning; messages already decided are "
			    "recognised", a->name, (long long)acc.uidvalidity,
			    uidv);
		if (store_account_reset(st, a->user_id, uidv)) {
			store_account_clear(&acc);
			snprintf(err, errlen, "store: cannot reset the "
			    "account");
			return ESTORE;
		}
	}
	store_account_clear(&acc);
	refresh_due(a);
	for (;;) {
		int64_t now, wait;

		rc = retries(a, im, uidv, err, errlen);
		if (rc == IMAP_OK)
			rc = scan(a, im, uidv, &last, err, errlen);
		if (rc != IMAP_OK)
			return rc;
		if (!a->scanned) {
			a->scanned = 1;
			a->backoff = 0;		/* a working session */
		}
		refresh_due(a);
		set_state(a, mode, NULL, 0, 1);
		now = time(NULL);
		wait = imap_has_idle(im) ? IDLE_REISSUE_S : a->poll_interval;
		if (due_at(a) && due_at(a) - now < wait)
			wait = due_at(a) - now < 1 ? 1 : due_at(a) - now;
		rc = imap_wait(im, (int)(wait * 1000), err, errlen);
		if (rc != IMAP_OK)
			return rc;
	}
}

static void *
acct_main(void *p)
{
	struct acct *a = p;
	char err[256];

	while (!stopping(a)) {
		struct imap_account acc = {
			.host = a->host, .port = a->port, .ssl = a->ssl,
			.plaintext = a->plaintext, .verify = a->verify,
			.ca_file = a->ca_file, .login = a->login,
			.password = a->password, .mailbox = a->mailbox,
			.flag = a->flag,
		};
		struct imap *im = NULL;
		const char *state = "backoff";
		int rc;
		int64_t wait;

		err[0] = '\0';
		set_state(a, "connecting", NULL, 0, 0);
		a->scanned = 0;
		rc = imap_open(&acc, a->stopfd, &im, err, sizeof err);
		if (rc == IMAP_OK) {
			rc = session(a, im, err, sizeof err);
			imap_close(im);
		}
		if (rc == IMAP_ESTOP || stopping(a))
			break;
		if (rc == IMAP_EAUTH) {
			state = "auth-failed";
			wait = AUTH_BACKOFF_S;
		} else {
			if (rc == IMAP_ETLS)
				state = "tls-error";
			a->backoff = a->backoff ? a->backoff * 2 : 1;
			if (a->backoff > BACKOFF_MAX_S)
				a->backoff = BACKOFF_MAX_S;
			wait = a->backoff;
		}
		set_state(a, state, err[0] ? err : "unknown error",
		    (int64_t)time(NULL) + wait, 0);
		if (nap(a, wait))
			break;
	}
	set_state(a, "stopped", NULL, 0, 0);
	atomic_store(&a->finished, 1);
	return NULL;
}

/* ---- start, stop, reload ------------------------------------------------ */

/* Hundreds of accounts need sockets, eventfds and SQLite files. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= 8192)
		return;
	rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static int
acct_start(struct acct *a)
{
	pthread_attr_t attr;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POLLER_STACK);
	r = pthread_create(&a->th, &attr, acct_main, a);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		log_error("imap start account=%s error=\"%s\"", a->name,
		    strerror(r));
		return -1;
	}
	a->started = 1;
	return 0;
}

/* Starts accounts for cfg's users that have none running. Under P.mu. */
static int
start_missing(const struct config *cfg)
{
	int ret = 0;

	for (size_t i = 0; i < cfg->nusers; i++) {
		const struct user_conf *u = &cfg->users[i];
		struct acct *a;

		if (u->imap == NULL)
			continue;
		for (a = P.list; a; a = a->next)
			if (!strcmp(a->name, u->name))
				break;
		if (a != NULL)
			continue;
		a = acct_new(u);
		if (a == NULL) {
			log_error("imap start account=%s error=\"out of "
			    "memory\"", u->name);
			ret = -1;
			continue;
		}
		if (acct_start(a) != 0) {
			acct_free(a);
			ret = -1;
			continue;
		}
		a->next = P.list;
		P.list = a;
	}
	return ret;
}

static void
signal_stop(struct acct *a)
{
	uint64_t one = 1;

	if (write(a->stopfd, &one, sizeof one) < 0)
		log_warn("imap stop account=%s error=\"%s\"", a->name,
		    strerror(errno));
}

/*
 * Joins the stopped accounts in list (linked by next) within the shared
 * budget; an account still busy (a slow hook, a DNS lookup) is detached
 * and left behind rather than delaying shutdown. Returns how many were.
 */
static int
join_all(struct acct *list)
{
	int left = 0;

	struct timespec dl;
	struct acct *a, *next;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STOP_BUDGET_MS / 1000;
	dl.tv_nsec += (STOP_BUDGET_MS % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	for (a = list; a; a = next) {
		next = a->next;
		if (a->started && pthread_timedjoin_np(a->th, NULL, &dl)) {
			log_warn("imap stop account=%s: still busy after %d "
			    "ms, abandoned", a->name, STOP_BUDGET_MS);
			pthread_detach(a->th);
			left++;
			continue;	/* its memory stays: it may run on */
		}
		acct_free(a);
	}
	return left;
}

int
poller_start(struct server *srv, poller_hook hook, void *arg)
{
	struct config *cfg;
	int ret;

	raise_fd_limit();
	pthread_mutex_lock(&P.mu);
	P.srv = srv;
	P.hook = hook;
	P.arg = arg;
	P.stopped = 0;
	cfg = server_config_get(srv);
	ret = start_missing(cfg);
	server_config_put(srv, cfg);
	pthread_mutex_unlock(&P.mu);
	return ret;
}

int
poller_stop(void)
{
	struct acct *list, *a;
	int left;

	pthread_mutex_lock(&P.mu);
	list = P.list;
	P.list = NULL;
	/* The hook stays: a thread may be deciding a message right now. */
	P.stopped = 1;
	for (a = list; a; a = a->next)
		signal_stop(a);
	left = join_all(list);
	pthread_mutex_unlock(&P.mu);
	/* A straggler may still use its TLS credentials. */
	if (left == 0)
		imap_cleanup();
	return left;
}

void
poller_reload(struct server *srv)
{
	struct acct **pp, *a, *gone = NULL;
	struct config *cfg;

	pthread_mutex_lock(&P.mu);
	if (P.hook == NULL || P.stopped) {
		pthread_mutex_unlock(&P.mu);
		return;
	}
	P.srv = srv;
	cfg = server_config_get(srv);
	for (pp = &P.list; (a = *pp) != NULL;) {
		const struct user_conf *u = config_user(cfg, a->name);

		if (u != NULL && acct_same(a, u)) {
			pp = &a->next;
			continue;
		}
		log_info("imap reload account=%s: %s", a->name,
		    u && u->imap ? "settings changed, restarting" :
		    "removed, stopping");
		*pp = a->next;
		signal_stop(a);
		a->next = gone;
		gone = a;
	}
	join_all(gone);
	start_missing(cfg);
	server_config_put(srv, cfg);
	pthread_mutex_unlock(&P.mu);
}
