/*
 * server/api.c: the JSON API behind the status page, and /metrics.
 *
 * What leaves here is chosen field by field: account state but never the
 * IMAP login or password; an invitation's sender, subject, calendar
 * summary and the gate's explanation, never the raw message. Another
 * user's invitation answers 404, exactly like one that does not exist.
 *
 * State-changing routes are POST only, and need both a same-origin Origin
 * (or Referer) and an X-CSRF-Token: an HMAC of the user name under a key
 * made at startup, so it needs no storage and dies with the process.
 * Re-running the gate and reloading the configuration are done by hooks
 * in struct server (main.c); this file only checks who may ask.
 */
#include "server/api.h"

#include <gnutls/crypto.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "server/json.h"
#include "server/log.h"
#include "server/metrics.h"

#define API_LIMIT_DEFAULT	50
#define API_LIMIT_MAX		200
#define API_DAYS		30
#define API_COUNT_DAYS		7
#define API_TOKEN_HEX		64

static const char *const decisions[] = { "accept", "skip", "defer",
    "ignore" };

/* ---- responses -------------------------------------------------------- */

static void
api_headers(struct http_response *resp)
{
	http_add_header(resp, "Cache-Control", "no-store");
	http_add_header(resp, "X-Content-Type-Options", "nosniff");
	http_add_header(resp, "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'");
}

/* Sends what j holds (and resets it); 500 if it could not be built. */
static void
send_json(struct http_response *resp, int status, struct json *j)
{
	size_t len;
	char *body = json_finish(j, &len);

	if (body == NULL) {
		http_respond_text(resp, 500, "out of memory");
		return;
	}
	http_respond(resp, status, "application/json; charset=utf-8", body,
	    len);
	api_headers(resp);
}

static void
send_error(struct http_response *resp, int status, const char *msg)
{
	struct json j;

	json_init(&j);
	json_obj_begin(&j);
	json_kstr(&j, "error", msg);
	json_obj_end(&j);
	send_json(resp, status, &j);
}

/* ---- CSRF ------------------------------------------------------------- */

static unsigned char csrf_key[32];
static pthread_once_t csrf_once = PTHREAD_ONCE_INIT;

static void
csrf_init(void)
{
	if (getrandom(csrf_key, sizeof csrf_key, 0) != sizeof csrf_key)
		fatal("getrandom failed");
}

/* The user's token: hex HMAC-SHA256 of the name. out has 65 bytes. */
static void
csrf_token(const char *user, char out[API_TOKEN_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	gnutls_hmac_hd_t h;

	pthread_once(&csrf_once, csrf_init);
	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, csrf_key,
	    sizeof csrf_key) < 0)
		fatal("gnutls_hmac_init failed");
	gnutls_hmac(h, "calgate-csrf", sizeof "calgate-csrf");
	gnutls_hmac(h, user, strlen(user) + 1);
	gnutls_hmac_deinit(h, mac);
	for (size_t i = 0; i < sizeof mac; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[API_TOKEN_HEX] = '\0';
}

/* "scheme://host" (n bytes) names this server as the client reached it. */
static int
origin_is_host(const char *o, size_t n, const char *host, int tls)
{
	static const char *const schemes[] = { "https://", "http://" };
	size_t hl = strlen(host);

	/* Behind a TLS proxy calgate itself speaks plain HTTP: both. */
	for (size_t i = 0; i < (tls ? 1u : 2u); i++) {
		size_t sl = strlen(schemes[i]);

		if (n == sl + hl && !strncasecmp(o, schemes[i], sl) &&
		    !strncasecmp(o + sl, host, hl))
			return 1;
	}
	return 0;
}

static int
same_origin(const struct http_request *req)
{
	const char *host = http_header(req, "Host");
	const char *o = http_header(req, "Origin");
	int tls = req->cfg->tls_cert != NULL;

	if (host == NULL || *host == '\0')
		return 0;
	if (o != NULL)
		return origin_is_host(o, strlen(o), host, tls);
	/* No Origin (older browsers): the Referer's scheme://host part. */
	o = http_header(req, "Referer");
	if (o != NULL) {
		const char *p = strstr(o, "://");
		const char *end = p ? strchr(p + 3, '/') : NULL;

		return origin_is_host(o, end ? (size_t)(end - o) : strlen(o),
		    host, tls);
	}
	return 0;
}

/* 1 if the request may change state; else it has answered 403. */
static int
csrf_ok(struct http_request *req, struct http_response *resp)
{
	char want[API_TOKEN_HEX + 1];
	const char *got = http_header(req, "X-CSRF-Token");
	unsigned char d = 0;

	if (!same_origin(req)) {
		send_error(resp, 403, "cross-origin request refused");
		return 0;
	}
	csrf_token(req->user->name, want);
	if (got == NULL || strlen(got) != API_TOKEN_HEX) {
		send_error(resp, 403, "missing or bad CSRF token; reload "
		    "the page");
		return 0;
	}
	for (size_t i = 0; i < API_TOKEN_HEX; i++)
		d |= (unsigned char)(got[i] ^ want[i]);
	if (d != 0) {
		send_error(resp, 403, "missing or bad CSRF token; reload "
		    "the page");
		return 0;
	}
	return 1;
}

/* ---- GET /api/status --------------------------------------------------- */

static int
cal_cb(void *arg, const char *path, const char *displayname, int64_t n)
{
	struct json *j = arg;

	json_obj_begin(j);
	json_kstr(j, "path", path);
	json_kstr(j, "name", displayname ? displayname : path);
	json_kint(j, "events", n);
	json_obj_end(j);
	return 0;
}

static void
counts_obj(struct json *j, const int64_t c[4])
{
	json_obj_begin(j);
	json_kint(j, "accepted", c[0]);
	json_kint(j, "skipped", c[1]);
	json_kint(j, "deferred", c[2]);
	json_kint(j, "ignored", c[3]);
	json_obj_end(j);
}

static void
time_or_null(struct json *j, const char *key, int64_t t)
{
	if (t > 0)
		json_kint(j, key, t);
	else
		json_knull(j, key);
}

static int
account_json(struct json *j, struct store *st, const struct user_conf *u,
    int64_t now)
{
	struct store_status_account a;
	int64_t counts[4];
	int rc;

	json_obj_begin(j);
	json_kstr(j, "user", u->name);
	json_kstr(j, "mailbox", u->imap ? u->imap_mailbox : NULL);
	json_kstr(j, "host", u->imap ? u->imap_host : NULL);
	rc = u->store_id ? store_status_account(st, u->store_id, &a)
	    : STORE_NOTFOUND;
	if (rc < 0)
		return -1;
	if (rc == STORE_NOTFOUND) {
		memset(&a, 0, sizeof a);
		snprintf(a.state, sizeof a.state, "%s", u->imap ? "new" :
		    "no-mailbox");
	}
	json_kstr(j, "state", a.state);
	json_kstr(j, "detail", a.detail[0] ? a.detail : NULL);
	time_or_null(j, "last_ok", a.last_ok);
	time_or_null(j, "next_try", a.next_try);
	if (u->imap)
		json_kint(j, "poll_interval", u->poll_interval);
	if (u->store_id && store_status_counts(st, u->store_id,
	    now - API_COUNT_DAYS * 86400, counts))
		return -1;
	if (!u->store_id)
		memset(counts, 0, sizeof counts);
	json_key(j, "counts_7d");
	counts_obj(j, counts);
	json_key(j, "calendars");
	json_arr_begin(j);
	if (u->store_id && store_status_calendars(st, u->store_id, cal_cb, j))
		return -1;
	json_arr_end(j);
	json_obj_end(j);
	return 0;
}

struct days {
	int64_t first;			/* day number of days[0] */
	int64_t n[API_DAYS][4];
};

static int
day_cb(void *arg, int64_t day, const char *decision, int64_t n)
{
	struct days *d = arg;
	int64_t i = day - d->first;

	for (int k = 0; decision && k < 4 && i >= 0 && i < API_DAYS; k++)
		if (!strcmp(decision, decisions[k]))
			d->n[i][k] += n;
	return 0;
}

/* The last 30 days (local to the browser's tz offset), oldest first. */
static int
daily_json(struct json *j, struct store *st, int64_t user_id, int64_t now,
    int64_t tz)
{
	struct days d;

	memset(&d, 0, sizeof d);
	d.first = (now + tz) / 86400 - (API_DAYS - 1);
	if (store_status_daily(st, user_id, d.first * 86400 - tz, tz, day_cb,
	    &d))
		return -1;
	json_arr_begin(j);
	for (int i = 0; i < API_DAYS; i++) {
		time_t t = (time_t)((d.first + i) * 86400);
		struct tm tm;
		char date[16];

		gmtime_r(&t, &tm);
		strftime(date, sizeof date, "%Y-%m-%d", &tm);
		json_obj_begin(j);
		json_kstr(j, "date", date);
		for (int k = 0; k < 4; k++)
			json_kint(j, decisions[k], d.n[i][k]);
		json_obj_end(j);
	}
	json_arr_end(j);
	return 0;
}

static const char *
query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

/* A decimal in [lo, hi] from the query; def when absent or empty. */
static int
query_int(const struct http_request *req, const char *name, int64_t lo,
    int64_t hi, int64_t def, int64_t *out)
{
	const char *v = query(req, name);
	char *end;
	long long n;

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	if (!((*v >= '0' && *v <= '9') || *v == '-') || strlen(v) > 18)
		return -1;
	n = strtoll(v, &end, 10);
	if (*end != '\0' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static void
get_status(struct http_request *req, struct http_response *resp)
{
	struct server *srv = req->srv;
	const struct config *cfg = req->cfg;
	const struct user_conf *me = req->user;
	char token[API_TOKEN_HEX + 1], rerr[sizeof srv->reload_error];
	int64_t now = (int64_t)time(NULL), tz, counts[4];
	int64_t scope = me->admin ? 0 : req->user_id;
	struct json j;

	if (query_int(req, "tz", -14 * 60, 14 * 60, 0, &tz)) {
		send_error(resp, 400, "tz: minutes east of UTC, -840 to 840");
		return;
	}
	pthread_mutex_lock(&srv->cfg_mu);
	snprintf(rerr, sizeof rerr, "%s", srv->reload_error);
	pthread_mutex_unlock(&srv->cfg_mu);
	csrf_token(me->name, token);

	json_init(&j);
	json_obj_begin(&j);
	json_kstr(&j, "user", me->name);
	json_kbool(&j, "admin", me->admin);
	json_kstr(&j, "csrf", token);
	json_kint(&j, "now", now);
	json_kint(&j, "started", srv->started);
	json_kbool(&j, "recheck_available", srv->recheck != NULL);
	/* The file's errors can quote values: only admins read them. */
	if (rerr[0] == '\0')
		json_knull(&j, "reload_error");
	else
		json_kstr(&j, "reload_error", me->admin ? rerr : "The last "
		    "configuration reload was refused; the previous "
		    "configuration is still in force.");
	json_key(&j, "accounts");
	json_arr_begin(&j);
	for (size_t i = 0; i < cfg->nusers; i++) {
		const struct user_conf *u = &cfg->users[i];

		if ((me->admin || u == me) &&
		    account_json(&j, srv->store, u, now))
			goto fail;
	}
	json_arr_end(&j);
	if (store_status_counts(srv->store, scope,
	    now - API_COUNT_DAYS * 86400, counts))
		goto fail;
	json_key(&j, "counts_7d");
	counts_obj(&j, counts);
	json_key(&j, "daily");
	if (daily_json(&j, srv->store, scope, now, tz * 60))
		goto fail;
	json_obj_end(&j);
	send_json(resp, 200, &j);
	return;
fail:
	json_discard(&j);
	send_error(resp, 500, "the store could not be read");
}

/* ---- GET /api/invitations ----------------------------------------------- */

static int
is_recheckable(const char *decision)
{
	return decision && (!strcmp(decision, "skip") ||
	    !strcmp(decision, "defer"));
}

static void
invitation_json(struct json *j, const struct store_imip *r,
    const char *user)
{
	const char *d = r->detail;

	json_obj_begin(j);
	json_kint(j, "id", r->id);
	json_kstr(j, "user", user);
	json_kint(j, "ts", r->ts);
	json_kstr(j, "from", r->from_addr);
	json_kstr(j, "subject", r->subject);
	json_kstr(j, "method", r->method);
	json_kstr(j, "uid", r->ical_uid);
	json_kstr(j, "summary", r->summary);
	json_kstr(j, "dtstart", r->dtstart);
	json_kstr(j, "decision", r->decision);
	json_kstr(j, "reason", r->reason);
	json_kstr(j, "hint", r->hint);
	json_key(j, "detail");
	/* Re-emitted through the writer: stored text cannot inject. */
	while (d && (*d == ' ' || *d == '\n' || *d == '\t' || *d == '\r'))
		d++;
	if (d == NULL || *d != '{' || json_copy(j, d, strlen(d)) != 0)
		json_null(j);
	json_kint(j, "attempts", r->attempts);
	time_or_null(j, "next_retry", r->next_retry);
	json_kbool(j, "can_recheck", is_recheckable(r->decision));
	json_obj_end(j);
}

struct list_ctx {
	struct json *j;
	int limit, n;
	int64_t last_id;
	int more;
};

static int
list_cb(void *arg, const struct store_imip *r, const char *user)
{
	struct list_ctx *l = arg;

	if (l->n == l->limit) {
		l->more = 1;		/* the one extra row we asked for */
		return 0;
	}
	invitation_json(l->j, r, user);
	l->n++;
	l->last_id = r->id;
	return 0;
}

static void
get_invitations(struct http_request *req, struct http_response *resp)
{
	const char *decision = query(req, "decision");
	int64_t before, limit;
	struct list_ctx l;
	struct json j;
	int ok = decision == NULL || *decision == '\0';

	for (int k = 0; !ok && k < 4; k++)
		ok = !strcmp(decision, decisions[k]);
	if (!ok) {
		send_error(resp, 400, "decision: accept, skip, defer, ignore "
		    "or empty");
		return;
	}
	if (decision && *decision == '\0')
		decision = NULL;
	if (query_int(req, "before", 1, INT64_MAX / 2, 0, &before)) {
		send_error(resp, 400, "before: an invitation id");
		return;
	}
	if (query_int(req, "limit", 1, INT32_MAX, API_LIMIT_DEFAULT,
	    &limit)) {
		send_error(resp, 400, "limit: a number from 1 to 200");
		return;
	}
	if (limit > API_LIMIT_MAX)
		limit = API_LIMIT_MAX;
	memset(&l, 0, sizeof l);
	l.j = &j;
	l.limit = (int)limit;
	json_init(&j);
	json_obj_begin(&j);
	json_key(&j, "invitations");
	json_arr_begin(&j);
	if (store_status_invitations(req->srv->store,
	    req->user->admin ? 0 : req->user_id, decision, before,
	    l.limit + 1, list_cb, &l)) {
		json_discard(&j);
		send_error(resp, 500, "the store could not be read");
		return;
	}
	json_arr_end(&j);
	if (l.more)
		json_kint(&j, "next_before", l.last_id);
	else
		json_knull(&j, "next_before");
	json_kint(&j, "limit", limit);
	json_obj_end(&j);
	send_json(resp, 200, &j);
}

/* ---- POST /api/invitations/<id>/recheck --------------------------------- */

struct row_ctx {
	struct json *j;			/* NULL: only note owner, decision */
	int64_t user_id;
	char decision[16];
};

static int
row_cb(void *arg, const struct store_imip *r, const char *user)
{
	struct row_ctx *rc = arg;

	rc->user_id = r->user_id;
	snprintf(rc->decision, sizeof rc->decision, "%s",
	    r->decision ? r->decision : "");
	if (rc->j)
		invitation_json(rc->j, r, user);
	return 0;
}

/* The id in "/api/invitations/<id>/recheck", or -1. */
static int64_t
recheck_id(const char *path)
{
	const char *p = path + strlen("/api/invitations/");
	char *end;
	long long id;

	if (*p < '1' || *p > '9' || strlen(p) > 40)
		return -1;
	id = strtoll(p, &end, 10);
	return strcmp(end, "/recheck") ? -1 : id;
}

static const struct user_conf *
user_by_store_id(const struct config *cfg, int64_t id)
{
	for (size_t i = 0; i < cfg->nusers; i++)
		if (cfg->users[i].store_id == id)
			return &cfg->users[i];
	return NULL;
}

static void
post_recheck(struct http_request *req, struct http_response *resp,
    int64_t id)
{
	struct server *srv = req->srv;
	const struct user_conf *owner;
	struct row_ctx rc;
	struct json j;
	char err[256] = "";
	int r;

	memset(&rc, 0, sizeof rc);
	r = store_status_invitation(srv->store, id, row_cb, &rc);
	if (r < 0) {
		send_error(resp, 500, "the store could not be read");
		return;
	}
	/* Someone else's row looks exactly like a missing one. */
	if (r == STORE_NOTFOUND || (!req->user->admin &&
	    rc.user_id != req->user_id)) {
		send_error(resp, 404, "no such invitation");
		return;
	}
	if (!is_recheckable(rc.decision)) {
		send_error(resp, 409, "only skipped or deferred invitations "
		    "can be checked again");
		return;
	}
	if (srv->recheck == NULL) {
		send_error(resp, 503, "checking again is not available on "
		    "this server");
		return;
	}
	owner = user_by_store_id(req->cfg, rc.user_id);
	if (owner == NULL) {
		send_error(resp, 409, "this invitation's user is no longer "
		    "in the configuration");
		return;
	}
	/* The gate may wait seconds for DNS: not on one of the few pooled
	 * connections the DAV requests need (this thread opens its own). */
	store_lease_end(srv->store);
	if (srv->recheck(srv, owner, id, err, sizeof err) != 0) {
		char q[300];

		log_warn("api recheck id=%lld user=%s error=%s",
		    (long long)id, owner->name, log_q(q, sizeof q, err));
		send_error(resp, 502, err[0] ? err : "the check failed");
		return;
	}
	log_info("api recheck id=%lld user=%s by=%s", (long long)id,
	    owner->name, req->user->name);
	json_init(&j);
	json_obj_begin(&j);
	json_key(&j, "invitation");
	rc.j = &j;
	r = store_status_invitation(srv->store, id, row_cb, &rc);
	if (r != 0)
		json_null(&j);
	json_obj_end(&j);
	send_json(resp, 200, &j);
}

/* ---- POST /api/reload, GET /metrics ---------------------------------- */

static void
post_reload(struct http_request *req, struct http_response *resp)
{
	struct server *srv = req->srv;
	char rerr[sizeof srv->reload_error];
	struct json j;

	if (!req->user->admin) {
		send_error(resp, 403, "only an administrator can reload the "
		    "configuration");
		return;
	}
	if (srv->reload == NULL) {
		send_error(resp, 503, "reloading is not available on this "
		    "server");
		return;
	}
	log_info("api reload by=%s", req->user->name);
	if (srv->reload(srv) != 0) {
		pthread_mutex_lock(&srv->cfg_mu);
		snprintf(rerr, sizeof rerr, "%s", srv->reload_error);
		pthread_mutex_unlock(&srv->cfg_mu);
		send_error(resp, 422, rerr[0] ? rerr : "reload refused");
		return;
	}
	json_init(&j);
	json_obj_begin(&j);
	json_kbool(&j, "ok", 1);
	json_obj_end(&j);
	send_json(resp, 200, &j);
}

static void
get_metrics(struct http_request *req, struct http_response *resp)
{
	size_t len;
	char *body;

	if (!req->user->admin) {
		send_error(resp, 403, "only an administrator can read metrics");
		return;
	}
	body = metrics_render(req->srv->started, &len);
	if (body == NULL) {
		http_respond_text(resp, 500, "out of memory");
		return;
	}
	http_respond(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
	    body, len);
	http_add_header(resp, "Cache-Control", "no-store");
}

/* ---- routing ------------------------------------------------------------ */

int
api_owns(const char *path)
{
	return !strncmp(path, "/api/", 5) || !strcmp(path, "/api") ||
	    !strcmp(path, "/metrics");
}

static void
wrong_method(struct http_response *resp, const char *allow)
{
	send_error(resp, 405, "method not allowed");
	http_add_header(resp, "Allow", allow);
}

void
api_handle(struct http_request *req, struct http_response *resp)
{
	const char *p = req->path;
	int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
	int post = !strcmp(req->method, "POST");
	int64_t id = -1;

	if (!strcmp(p, "/api/status") || !strcmp(p, "/api/invitations") ||
	    !strcmp(p, "/metrics")) {
		if (!get)
			wrong_method(resp, "GET, HEAD");
		else if (!strcmp(p, "/api/status"))
			get_status(req, resp);
		else if (!strcmp(p, "/metrics"))
			get_metrics(req, resp);
		else
			get_invitations(req, resp);
		return;
	}
	if (!strncmp(p, "/api/invitations/", 17))
		id = recheck_id(p);
	if (id > 0 || !strcmp(p, "/api/reload")) {
		if (!post)
			wrong_method(resp, "POST");
		else if (!csrf_ok(req, resp))
			;
		else if (id > 0)
			post_recheck(req, resp, id);
		else
			post_reload(req, resp);
		return;
	}
	send_error(resp, 404, "no such API route");
}
