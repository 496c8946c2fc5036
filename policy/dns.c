/*
 * policy/dns.c: TXT lookups for DKIM keys and DMARC records.
 *
 * libunbound resolves in its own thread (ub_ctx_async); one dispatcher
 * thread of ours reads its answers (ub_process) and wakes the waiting
 * caller. Each caller waits on a condition variable with its own deadline,
 * so timeout_ms holds whatever unbound's retry schedule is; a lookup that
 * times out is cancelled, or, if its answer is already on the way, freed by
 * the callback. Answers are cached for their TTL (capped); temporary
 * failures are never cached. Leaves the meaning of the records to dkim.c
 * and dmarc.c.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "policy/dns.h"

#define DNS_CACHE_BUCKETS	1024
#define DNS_CACHE_MAX		4096	/* entries before a sweep */
#define DNS_TTL_MAX		3600	/* seconds */
#define DNS_NEG_TTL_MAX		300
#define DNS_MAX_RECORDS		16	/* TXT records kept per name */
#define DNS_MAX_TXT		(16 * 1024)	/* bytes per joined record */

struct dns_entry {
	struct dns_entry *next;
	char *name;			/* owned, lower case */
	enum dns_status status;
	char **txt;			/* owned */
	size_t ntxt;
	struct timespec expires;	/* CLOCK_MONOTONIC */
};

/* One outstanding query; freed by the waiter, or by the callback if the
 * waiter gave up after the answer was already being delivered. */
struct dns_query {
	struct dns *dns;
	struct dns_query *prev, *next;	/* in dns.inflight */
	int done;
	int abandoned;
	int prefetch;			/* nobody waits: cache the answer */
	struct timespec deadline;	/* prefetch: when its answer is due */
	char name[DNS_MAX_NAME + 2];
	int err;
	struct ub_result *res;
};

struct dns {
	struct ub_ctx *ub;
	int timeout_ms;
	pthread_mutex_t lock;		/* queries, cache, stats */
	pthread_cond_t cond;		/* a query finished */
	pthread_t thread;
	int stop_pipe[2];
	struct dns_entry *cache[DNS_CACHE_BUCKETS];
	struct dns_query *inflight;	/* sent, callback not yet run */
	size_t ncache;
	unsigned long hits, misses;
};

const char *
dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_OK:		return "ok";
	case DNS_NXDOMAIN:	return "nxdomain";
	case DNS_NODATA:	return "nodata";
	default:		return "tempfail";
	}
}

void
dns_txt_free(char **txt, size_t n)
{
	if (txt == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(txt[i]);
	free(txt);
}

/* Time this thread spent waiting on uncached lookups (dns_take_wait_ms). */
static __thread double dns_waited_ms;

/* now + ms on the monotonic clock. */
static void
dns_deadline(struct timespec *t, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/*
 * Called with the lock held. A lookup of a name already prefetched is due
 * when the prefetch is: timeout_ms holds for the whole decision, not once
 * per name waited on in turn.
 */
static int
dns_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void
dns_join_deadline(struct dns *d, const char *name, struct timespec *t)
{
	struct timespec now;

	/* A prefetch already past its time (unbound still retrying) says
	 * nothing about this lookup: it gets its own full timeout. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (struct dns_query *q = d->inflight; q != NULL; q = q->next)
		if (q->prefetch && !strcmp(q->name, name) &&
		    dns_before(&now, &q->deadline) &&
		    dns_before(&q->deadline, t))
			*t = q->deadline;
}

static void *
dns_dispatch(void *arg)
{
	struct dns *d = arg;
	struct pollfd p[2];

	p[0].fd = ub_fd(d->ub);
	p[0].events = POLLIN;
	p[1].fd = d->stop_pipe[0];
	p[1].events = POLLIN;
	for (;;) {
		int r = poll(p, 2, 1000);
		if (r < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (r > 0 && p[0].revents)
			ub_process(d->ub);
	}
	return NULL;
}

static void dns_cache_put(struct dns *, const char *, enum dns_status,
    char **, size_t, int);
static enum dns_status dns_convert(const struct ub_result *, char ***,
    size_t *);

/* Called with the lock held. */
static void
dns_unlink(struct dns *d, struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (d->inflight == q)
		d->inflight = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* Called with the lock held. */
static void
dns_link(struct dns *d, struct dns_query *q)
{
	q->prev = NULL;
	q->next = d->inflight;
	if (d->inflight != NULL)
		d->inflight->prev = q;
	d->inflight = q;
}

static void
dns_callback(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	struct dns *d = q->dns;

	pthread_mutex_lock(&d->lock);
	dns_unlink(d, q);
	if (q->prefetch) {
		char **txt = NULL;
		size_t n = 0;
		if (err == 0 && res != NULL) {
			enum dns_status st = dns_convert(res, &txt, &n);
			dns_cache_put(d, q->name, st, txt, n, res->ttl);
			dns_txt_free(txt, n);
		}
	}
	if (q->abandoned || q->prefetch) {
		pthread_mutex_unlock(&d->lock);
		if (res != NULL)
			ub_resolve_free(res);
		free(q);
		return;
	}
	q->err = err;
	q->res = res;
	q->done = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

struct dns *
dns_new(const char *addr, int port, int timeout_ms, char *err, size_t errlen)
{
	struct dns *d = calloc(1, sizeof *d);
	pthread_condattr_t ca;
	char fwd[128];
	int r;

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	d->stop_pipe[0] = d->stop_pipe[1] = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);

	d->ub = ub_ctx_create();
	if (d->ub == NULL) {
		snprintf(err, errlen, "libunbound: cannot create a context");
		goto fail;
	}
	if (addr != NULL) {
		snprintf(fwd, sizeof fwd, "%s@%d", addr, port);
		r = ub_ctx_set_fwd(d->ub, fwd);
	} else {
		r = ub_ctx_resolvconf(d->ub, NULL);
	}
	if (r != 0) {
		snprintf(err, errlen, "resolver %s: %s",
		    addr ? fwd : "system", ub_strerror(r));
		goto fail;
	}
	/* Keep libunbound's own cache short-lived: ours honours the TTL. */
	ub_ctx_set_option(d->ub, "cache-max-negative-ttl:", "300");
	r = ub_ctx_async(d->ub, 1);
	if (r != 0) {
		snprintf(err, errlen, "libunbound: %s", ub_strerror(r));
		goto fail;
	}
	if (pipe(d->stop_pipe) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, dns_dispatch, d) != 0) {
		snprintf(err, errlen, "cannot start the DNS thread");
		close(d->stop_pipe[0]);
		close(d->stop_pipe[1]);
		d->stop_pipe[0] = d->stop_pipe[1] = -1;
		goto fail;
	}
	return d;
fail:
	if (d->ub != NULL)
		ub_ctx_delete(d->ub);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return NULL;
}

static void
dns_entry_free(struct dns_entry *e)
{
	dns_txt_free(e->txt, e->ntxt);
	free(e->name);
	free(e);
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	if (write(d->stop_pipe[1], "x", 1) == 1)
		pthread_join(d->thread, NULL);
	close(d->stop_pipe[0]);
	close(d->stop_pipe[1]);
	ub_ctx_delete(d->ub);
	/* The dispatcher is gone: no callback runs any more. */
	while (d->inflight != NULL) {
		struct dns_query *q = d->inflight;
		dns_unlink(d, q);
		free(q);
	}
	for (size_t i = 0; i < DNS_CACHE_BUCKETS; i++) {
		struct dns_entry *e = d->cache[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			dns_entry_free(e);
		}
	}
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* RFC 1035 2.3.4: at most 253 characters, labels 1-63; we also refuse
 * anything outside printable ASCII so a hostile d= or s= cannot smuggle
 * bytes into a query or a log line. */
static int
dns_valid_name(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > DNS_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || c == '\\' || c == '"')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

int
dns_name_ldh(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > DNS_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

static unsigned
dns_hash(const char *s)
{
	unsigned h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h % DNS_CACHE_BUCKETS;
}

static int
dns_expired(const struct timespec *exp, const struct timespec *now)
{
	return now->tv_sec > exp->tv_sec ||
	    (now->tv_sec == exp->tv_sec && now->tv_nsec >= exp->tv_nsec);
}

static char **
dns_copy_txt(char **txt, size_t n)
{
	char **c = calloc(n ? n : 1, sizeof *c);

	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(txt[i]);
		if (c[i] == NULL) {
			dns_txt_free(c, i);
			return NULL;
		}
	}
	return c;
}

/* Called with the lock held. Returns 1 and fills the outputs on a hit. */
static int
dns_cache_get(struct dns *d, const char *name, enum dns_status *st,
    char ***txt, size_t *n)
{
	struct timespec now;
	struct dns_entry **pp = &d->cache[dns_hash(name)];

	clock_gettime(CLOCK_MONOTONIC, &now);
	while (*pp != NULL) {
		struct dns_entry *e = *pp;
		if (dns_expired(&e->expires, &now)) {
			*pp = e->next;
			dns_entry_free(e);
			d->ncache--;
			continue;
		}
		if (!strcmp(e->name, name)) {
			char **c = NULL;
			if (e->status == DNS_OK) {
				c = dns_copy_txt(e->txt, e->ntxt);
				if (c == NULL)
					return 0;
			}
			*st = e->status;
			*txt = c;
			*n = e->status == DNS_OK ? e->ntxt : 0;
			return 1;
		}
		pp = &e->next;
	}
	return 0;
}

/* Called with the lock held. Drops expired entries, everything if still
 * full: a flood of distinct names must not grow memory without bound. */
static void
dns_cache_sweep(struct dns *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (int pass = 0; pass < 2 && d->ncache >= DNS_CACHE_MAX; pass++) {
		for (size_t i = 0; i < DNS_CACHE_BUCKETS; i++) {
			struct dns_entry **pp = &d->cache[i];
			while (*pp != NULL) {
				struct dns_entry *e = *pp;
				if (pass == 0 && !dns_expired(&e->expires,
				    &now)) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				dns_entry_free(e);
				d->ncache--;
			}
		}
	}
}

static void
dns_cache_put(struct dns *d, const char *name, enum dns_status st,
    char **txt, size_t n, int ttl)
{
	struct dns_entry *e;
	unsigned h;

	if (st == DNS_TEMPFAIL || ttl <= 0)
		return;
	if (ttl > (st == DNS_OK ? DNS_TTL_MAX : DNS_NEG_TTL_MAX))
		ttl = st == DNS_OK ? DNS_TTL_MAX : DNS_NEG_TTL_MAX;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return;
	e->name = strdup(name);
	e->status = st;
	if (st == DNS_OK) {
		e->txt = dns_copy_txt(txt, n);
		e->ntxt = n;
	}
	if (e->name == NULL || (st == DNS_OK && e->txt == NULL)) {
		dns_entry_free(e);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &e->expires);
	e->expires.tv_sec += ttl;
	if (d->ncache >= DNS_CACHE_MAX)
		dns_cache_sweep(d);
	h = dns_hash(name);
	/* A concurrent miss may have filled it first; newest wins. */
	for (struct dns_entry **pp = &d->cache[h]; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			struct dns_entry *old = *pp;
			*pp = old->next;
			dns_entry_free(old);
			d->ncache--;
			break;
		}
	}
	e->next = d->cache[h];
	d->cache[h] = e;
	d->ncache++;
}

/* One TXT RDATA: <len><bytes>... joined (RFC 6376 3.6.2.2, RFC 7489 6.1:
 * the strings of one record are concatenated without separator). */
static char *
dns_join_rdata(const unsigned char *p, size_t len)
{
	char *s;
	size_t o = 0;

	if (len > DNS_MAX_TXT)
		return NULL;
	s = malloc(len + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t l = p[i++];
		if (l > len - i) {
			free(s);
			return NULL;
		}
		for (size_t j = 0; j < l; j++) {
			/* A NUL cannot be part of a valid record; keep
			 * the record, but make it fail to parse. */
			s[o++] = p[i + j] ? (char)p[i + j] : '\x01';
		}
		i += l;
	}
	s[o] = '\0';
	return s;
}

static enum dns_status
dns_convert(const struct ub_result *res, char ***txt, size_t *n)
{
	size_t cnt = 0;
	char **v;

	if (res->rcode == 3)
		return DNS_NXDOMAIN;
	if (res->rcode != 0)
		return DNS_TEMPFAIL;
	if (!res->havedata)
		return DNS_NODATA;
	while (res->data[cnt] != NULL && cnt < DNS_MAX_RECORDS)
		cnt++;
	v = calloc(cnt ? cnt : 1, sizeof *v);
	if (v == NULL)
		return DNS_TEMPFAIL;
	for (size_t i = 0; i < cnt; i++) {
		v[i] = dns_join_rdata((unsigned char *)res->data[i],
		    (size_t)res->len[i]);
		if (v[i] == NULL) {
			dns_txt_free(v, i);
			return DNS_TEMPFAIL;
		}
	}
	*txt = v;
	*n = cnt;
	return DNS_OK;
}

/* Asks the resolver; called without the lock. */
static enum dns_status
dns_query(struct dns *d, const char *name, char ***txt, size_t *n, int *ttl)
{
	struct dns_query *q = calloc(1, sizeof *q);
	struct timespec deadline;
	enum dns_status st = DNS_TEMPFAIL;
	int id, r;

	if (q == NULL)
		return DNS_TEMPFAIL;
	q->dns = d;
	dns_deadline(&deadline, d->timeout_ms);
	/* Not under our lock: the request pipe may block while the
	 * dispatcher delivers answers, and their callbacks take the lock.
	 * An early answer just finds q->done set below. */
	pthread_mutex_lock(&d->lock);
	dns_join_deadline(d, name, &deadline);
	dns_link(d, q);
	pthread_mutex_unlock(&d->lock);
	r = ub_resolve_async(d->ub, name, 16 /* TXT */, 1 /* IN */, q,
	    dns_callback, &id);
	pthread_mutex_lock(&d->lock);
	if (r != 0) {
		dns_unlink(d, q);
		pthread_mutex_unlock(&d->lock);
		free(q);
		return DNS_TEMPFAIL;
	}
	while (!q->done) {
		r = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
		if (r == ETIMEDOUT && !q->done)
			break;
	}
	if (!q->done) {
		/* Cancelled: the callback will not run. Not found: the answer
		 * is being delivered and the callback frees q. */
		if (ub_cancel(d->ub, id) == 0) {
			dns_unlink(d, q);
			free(q);
		} else {
			q->abandoned = 1;
		}
		pthread_mutex_unlock(&d->lock);
		return DNS_TEMPFAIL;
	}
	pthread_mutex_unlock(&d->lock);
	if (q->err == 0 && q->res != NULL) {
		st = dns_convert(q->res, txt, n);
		*ttl = q->res->ttl;
	}
	if (q->res != NULL)
		ub_resolve_free(q->res);
	free(q);
	return st;
}

/* Lower case, no trailing dot, into lname; 0, or -1 for a bad name. */
static int
dns_lname(const char *name, char *lname)
{
	size_t len;

	if (!dns_valid_name(name))
		return -1;
	len = strlen(name);
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	if (len > 0 && lname[len - 1] == '.')
		lname[len - 1] = '\0';
	return 0;
}

void
dns_prefetch(struct dns *d, const char *name)
{
	struct dns_query *q;
	enum dns_status st;
	char **txt = NULL;
	size_t n = 0;
	int id;

	q = calloc(1, sizeof *q);
	if (q == NULL)
		return;
	if (dns_lname(name, q->name) != 0) {
		free(q);
		return;
	}
	q->dns = d;
	q->prefetch = 1;
	dns_deadline(&q->deadline, d->timeout_ms);
	pthread_mutex_lock(&d->lock);
	if (dns_cache_get(d, q->name, &st, &txt, &n)) {
		pthread_mutex_unlock(&d->lock);
		dns_txt_free(txt, n);
		free(q);
		return;
	}
	dns_link(d, q);
	pthread_mutex_unlock(&d->lock);
	/* A dns_txt() for the same name joins this query inside unbound. */
	if (ub_resolve_async(d->ub, q->name, 16, 1, q, dns_callback, &id)
	    != 0) {
		pthread_mutex_lock(&d->lock);
		dns_unlink(d, q);
		pthread_mutex_unlock(&d->lock);
		free(q);
	}
}

enum dns_status
dns_txt(struct dns *d, const char *name, char ***txt, size_t *n)
{
	char lname[DNS_MAX_NAME + 2];
	enum dns_status st;
	struct timespec t0, t1;
	int ttl = 0;

	*txt = NULL;
	*n = 0;
	if (dns_lname(name, lname) != 0)
		return DNS_NXDOMAIN;
	pthread_mutex_lock(&d->lock);
	if (dns_cache_get(d, lname, &st, txt, n)) {
		d->hits++;
		pthread_mutex_unlock(&d->lock);
		return st;
	}
	d->misses++;
	pthread_mutex_unlock(&d->lock);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = dns_query(d, lname, txt, n, &ttl);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dns_waited_ms += (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	pthread_mutex_lock(&d->lock);
	dns_cache_put(d, lname, st, *txt, *n, ttl);
	pthread_mutex_unlock(&d->lock);
	return st;
}

double
dns_take_wait_ms(void)
{
	double ms = dns_waited_ms;

	dns_waited_ms = 0;
	return ms;
}

void
dns_stats(struct dns *d, unsigned long *hits, unsigned long *misses)
{
	pthread_mutex_lock(&d->lock);
	*hits = d->hits;
	*misses = d->misses;
	pthread_mutex_unlock(&d->lock);
}
