/*
 * server/http.c: the HTTP side of calgate on libmicrohttpd (thread pool,
 * epoll). Every request is authenticated with HTTP Basic before its body
 * is read, its body is bounded by max_body (413 beyond), and it leaves one
 * access-log line: method, path, status, bytes, ms, user. Credentials
 * never reach a log. Routing hands whole requests to webdav/ and to the
 * status page and API.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "server/file.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/store.h"
#include "server/www.h"
#include "webdav/dav.h"

#define AUTH_CACHE	256
#define AUTH_TTL	300		/* seconds a verified password is kept */
#define AUTH_MAX_NAME	64
#define AUTH_MAX_PASS	1024
#define STOP_WAIT_MS	10000
#define HTTP_MAX_PEM	(1u << 20)	/* a TLS certificate or key file */

struct http_daemon {
	struct MHD_Daemon *mhd;
	struct server *srv;
	atomic_int inflight;
	int port;
	char *tls_cert, *tls_key;	/* PEM, owned */
};

struct req_ctx {
	struct timespec t0;
	struct config *cfg;		/* referenced */
	const struct user_conf *user;
	char *body;
	size_t len, cap;
	int too_large;
	int responded;			/* queued early (401/413) */
	int status;
	size_t bytes;
	char method[16];
	char *path;			/* owned, for the access log */
	char *raw_url;			/* owned; as sent, not decoded */
	int started;			/* on_request has set it up */
};

/* ---- shared config ---------------------------------------------------- */

struct config *
server_config_get(struct server *s)
{
	struct config *c;

	pthread_mutex_lock(&s->cfg_mu);
	c = s->cfg;
	c->refs++;
	pthread_mutex_unlock(&s->cfg_mu);
	return c;
}

void
server_config_put(struct server *s, struct config *c)
{
	int dead;

	if (c == NULL)
		return;
	pthread_mutex_lock(&s->cfg_mu);
	/* The last holder of a config a reload replaced frees it. */
	dead = --c->refs == 0 && c != s->cfg;
	pthread_mutex_unlock(&s->cfg_mu);
	if (dead)
		config_free(c);
}

void
server_config_swap(struct server *s, struct config *fresh)
{
	struct config *old;

	pthread_mutex_lock(&s->cfg_mu);
	old = s->cfg;
	s->cfg = fresh;
	s->reload_error[0] = '\0';
	/* Still in use: its last server_config_put frees it. */
	if (old->refs > 0)
		old = NULL;
	pthread_mutex_unlock(&s->cfg_mu);
	config_free(old);
}

/* ---- authentication --------------------------------------------------- */

struct auth_entry {
	char user[AUTH_MAX_NAME + 1];
	unsigned char mac[32];
	time_t expires;
};

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static struct auth_entry auth_cache[AUTH_CACHE];
static unsigned char auth_key[32];
static char *auth_dummy;		/* a hash to burn time on */
static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

static void
auth_init(void)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof *cd);

	if (getrandom(auth_key, sizeof auth_key, 0) != sizeof auth_key)
		fatal("getrandom failed");
	if (cd == NULL || crypt_gensalt_rn("$y$", 0, NULL, 0, salt,
	    sizeof salt) == NULL)
		fatal("cannot make a yescrypt salt");
	auth_dummy = strdup(crypt_r("calgate-dummy", salt, cd));
	free(cd);
	if (auth_dummy == NULL)
		fatal("out of memory");
}

/* MAC over (name, password, hash): the cache never holds the password. */
static void
auth_mac(const char *name, const char *pass, const char *hash,
    unsigned char out[32])
{
	gnutls_hmac_hd_t h;

	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, auth_key,
	    sizeof auth_key) < 0)
		fatal("gnutls_hmac_init failed");
	gnutls_hmac(h, name, strlen(name) + 1);
	gnutls_hmac(h, pass, strlen(pass) + 1);
	gnutls_hmac(h, hash, strlen(hash) + 1);
	gnutls_hmac_deinit(h, out);
}

static int
ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* Runs crypt(3) and compares in constant time. */
static int
auth_crypt(const char *pass, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof *cd);
	const char *out;
	int ok;

	if (cd == NULL)
		return 0;
	out = crypt_r(pass, hash, cd);
	ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash) &&
	    ct_equal(out, hash, strlen(hash));
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return ok;
}

const struct user_conf *
http_auth_check(const struct config *cfg, const char *name, const char *pass)
{
	const struct user_conf *u;
	unsigned char mac[32];
	size_t slot;
	time_t now = time(NULL);
	int ok;

	pthread_once(&auth_once, auth_init);
	if (name == NULL || pass == NULL || strlen(name) > AUTH_MAX_NAME ||
	    strlen(pass) > AUTH_MAX_PASS) {
		auth_crypt("x", auth_dummy);
		return NULL;
	}
	u = config_user(cfg, name);
	if (u == NULL) {
		/* Same work as a wrong password: no user enumeration. */
		auth_crypt(pass, auth_dummy);
		return NULL;
	}
	auth_mac(name, pass, u->password, mac);
	slot = (size_t)(mac[0] | mac[1] << 8) % AUTH_CACHE;
	pthread_mutex_lock(&auth_mu);
	ok = auth_cache[slot].expires > now &&
	    !strcmp(auth_cache[slot].user, name) &&
	    ct_equal(auth_cache[slot].mac, mac, sizeof mac);
	pthread_mutex_unlock(&auth_mu);
	if (ok)
		return u;
	if (!auth_crypt(pass, u->password))
		return NULL;
	pthread_mutex_lock(&auth_mu);
	snprintf(auth_cache[slot].user, sizeof auth_cache[slot].user, "%s",
	    name);
	memcpy(auth_cache[slot].mac, mac, sizeof mac);
	auth_cache[slot].expires = now + AUTH_TTL;
	pthread_mutex_unlock(&auth_mu);
	return u;
}

/* ---- password guessing ------------------------------------------------- */

#define AUTH_FAIL_SLOTS	1024

struct auth_fail {
	unsigned char key[32];		/* MAC of (address, name) */
	unsigned n;
	time_t since;			/* first failure of the window */
};

static struct auth_fail auth_fails[AUTH_FAIL_SLOTS];

/* One (address, name) pair's slot, its key computed once per request. */
struct auth_guess {
	struct auth_fail *f;
	unsigned char key[32];
};

static void
guess_find(struct auth_guess *g, const char *addr, const char *name)
{
	pthread_once(&auth_once, auth_init);
	auth_mac(addr ? addr : "", name ? name : "", "throttle", g->key);
	g->f = &auth_fails[(g->key[0] | g->key[1] << 8) % AUTH_FAIL_SLOTS];
}

static int
guess_left(const struct auth_guess *g, time_t now)
{
	const struct auth_fail *f = g->f;
	int left = 0;

	pthread_mutex_lock(&auth_mu);
	if (ct_equal(f->key, g->key, sizeof g->key) &&
	    f->n >= HTTP_AUTH_FAILS && now - f->since < HTTP_AUTH_WINDOW)
		left = (int)(f->since + HTTP_AUTH_WINDOW - now);
	pthread_mutex_unlock(&auth_mu);
	return left;
}

static void
guess_note(const struct auth_guess *g, int ok, time_t now)
{
	struct auth_fail *f = g->f;
	int mine;

	pthread_mutex_lock(&auth_mu);
	mine = ct_equal(f->key, g->key, sizeof g->key);
	if (ok) {
		if (mine)
			memset(f, 0, sizeof *f);
	} else {
		if (!mine || now - f->since >= HTTP_AUTH_WINDOW) {
			memcpy(f->key, g->key, sizeof g->key);
			f->n = 0;
			f->since = now;
		}
		f->n++;
	}
	pthread_mutex_unlock(&auth_mu);
}

int
http_auth_throttled(const char *addr, const char *name, time_t now)
{
	struct auth_guess g;

	guess_find(&g, addr, name);
	return guess_left(&g, now);
}

void
http_auth_note(const char *addr, const char *name, int ok, time_t now)
{
	struct auth_guess g;

	guess_find(&g, addr, name);
	guess_note(&g, ok, now);
}

/* ---- requests and responses ------------------------------------------- */

const char *
http_header(const struct http_request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void
http_respond(struct http_response *resp, int status, const char *ctype,
    char *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = body;
	resp->len = body ? len : 0;
}

void
http_respond_text(struct http_response *resp, int status, const char *fmt,
    ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		s = NULL;
	else if (s[n - 1 >= 0 ? n - 1 : 0] != '\n') {
		char *t = realloc(s, (size_t)n + 2);

		if (t) {
			s = t;
			s[n++] = '\n';
			s[n] = '\0';
		}
	}
	http_respond(resp, status, "text/plain; charset=utf-8", s,
	    s ? strlen(s) : 0);
}

void
http_add_header(struct http_response *resp, const char *name,
    const char *value)
{
	struct http_header *h = calloc(1, sizeof *h), **tail;

	if (h == NULL)
		return;
	h->name = strdup(name);
	h->value = strdup(value);
	if (h->name == NULL || h->value == NULL) {
		free(h->name);
		free(h->value);
		free(h);
		return;
	}
	for (tail = &resp->headers; *tail; tail = &(*tail)->next)
		;
	*tail = h;
}

static void
response_clear(struct http_response *resp)
{
	struct http_header *h, *next;

	free(resp->body);
	for (h = resp->headers; h; h = next) {
		next = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
	memset(resp, 0, sizeof *resp);
}

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct req_ctx *ctx,
    struct http_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(resp->len, resp->body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		response_clear(resp);
		return MHD_NO;
	}
	resp->body = NULL;		/* MHD owns it now */
	if (resp->content_type)
		MHD_add_response_header(r, "Content-Type", resp->content_type);
	for (struct http_header *h = resp->headers; h; h = h->next)
		MHD_add_response_header(r, h->name, h->value);
	ctx->status = resp->status;
	ctx->bytes = resp->len;
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	response_clear(resp);
	return ret;
}

static enum MHD_Result
send_simple(struct MHD_Connection *conn, struct req_ctx *ctx, int status,
    const char *text, const char *hname, const char *hval)
{
	struct http_response resp;

	memset(&resp, 0, sizeof resp);
	http_respond_text(&resp, status, "%s", text);
	if (hname)
		http_add_header(&resp, hname, hval);
	ctx->responded = 1;
	return send_response(conn, ctx, &resp);
}

/* ---- routing ------------------------------------------------------------ */

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static void
route(struct http_request *req, struct http_response *resp)
{
	const char *p = req->path;

	/* A client given only the server's URL asks "/" with PROPFIND. */
	if (has_prefix(p, "/.well-known/caldav") || !strcmp(p, "/dav") ||
	    has_prefix(p, "/dav/") || (!strcmp(p, "/") &&
	    strcmp(req->method, "GET") && strcmp(req->method, "HEAD")))
		dav_handle(req, resp);
	else
		www_handle(req, resp);
}

/* ---- libmicrohttpd callbacks ------------------------------------------- */

/*
 * Called before MHD decodes the URL: keep it as sent, so webdav/ can refuse
 * encoded separators (%2F) and NULs that decoding would hide.
 */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct req_ctx *ctx = calloc(1, sizeof *ctx);

	(void)cls;
	(void)conn;
	if (ctx != NULL)
		ctx->raw_url = strdup(uri);
	return ctx;
}

/* The client's address, numeric ("" when unknown). */
static void
client_addr(struct MHD_Connection *conn, char *buf, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (sa == NULL || getnameinfo(sa, sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), buf,
	    (socklen_t)n, NULL, 0, NI_NUMERICHOST) != 0)
		buf[0] = '\0';
}

/* 1: authenticated; 0: not (401); -n: throttled for n more seconds. */
static int
authenticate(struct MHD_Connection *conn, struct req_ctx *ctx)
{
	char *pass = NULL, addr[64], qname[2 * AUTH_MAX_NAME + 8];
	char *name = MHD_basic_auth_get_username_password(conn, &pass);
	/* a request without credentials is not a guess */
	int guess = name != NULL && pass != NULL, left = 0;
	struct auth_guess g;
	time_t now = time(NULL);

	if (guess) {
		client_addr(conn, addr, sizeof addr);
		guess_find(&g, addr, name);
		left = guess_left(&g, now);
	}
	if (left > 0) {
		ctx->user = NULL;
		log_warn("http auth throttled user=%s addr=%s seconds=%d",
		    log_q(qname, sizeof qname, name), addr, left);
	} else {
		ctx->user = http_auth_check(ctx->cfg, name, pass);
		if (guess)
			guess_note(&g, ctx->user != NULL, now);
	}
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (name)
		MHD_free(name);
	return left > 0 ? -left : ctx->user != NULL;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct http_daemon *d = cls;
	struct req_ctx *ctx = *con_cls;
	struct http_request req;
	struct http_response resp;
	const char *cl;
	char retry[16];
	int rc;

	(void)version;
	if (ctx == NULL || !ctx->started) {
		if (ctx == NULL)
			ctx = calloc(1, sizeof *ctx);
		if (ctx == NULL)
			return MHD_NO;
		*con_cls = ctx;
		ctx->started = 1;
		clock_gettime(CLOCK_MONOTONIC, &ctx->t0);
		atomic_fetch_add(&d->inflight, 1);
		snprintf(ctx->method, sizeof ctx->method, "%s", method);
		ctx->path = strdup(url);
		ctx->cfg = server_config_get(d->srv);
		switch (rc = authenticate(conn, ctx)) {
		case 1:
			break;
		case 0:
			return send_simple(conn, ctx, 401,
			    "authentication required", "WWW-Authenticate",
			    "Basic realm=\"calgate\", charset=\"UTF-8\"");
		default:
			snprintf(retry, sizeof retry, "%d", -rc);
			return send_simple(conn, ctx, 429, "too many wrong "
			    "passwords; try again later", "Retry-After",
			    retry);
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > ctx->cfg->max_body)
			return send_simple(conn, ctx, 413,
			    "request body too large", NULL, NULL);
		return MHD_YES;
	}
	if (ctx->responded)
		return MHD_YES;
	if (*upload_size > 0) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (ctx->too_large || ctx->len + n > ctx->cfg->max_body) {
			ctx->too_large = 1;	/* chunked: drain, then 413 */
			return MHD_YES;
		}
		if (ctx->len + n + 1 > ctx->cap) {
			size_t cap = ctx->cap ? ctx->cap : 4096;
			char *b;

			while (cap < ctx->len + n + 1)
				cap *= 2;
			b = realloc(ctx->body, cap);
			if (b == NULL)
				return MHD_NO;
			ctx->body = b;
			ctx->cap = cap;
		}
		memcpy(ctx->body + ctx->len, upload, n);
		ctx->len += n;
		return MHD_YES;
	}
	if (ctx->too_large)
		return send_simple(conn, ctx, 413, "request body too large",
		    NULL, NULL);

	memset(&req, 0, sizeof req);
	memset(&resp, 0, sizeof resp);
	req.conn = conn;
	req.srv = d->srv;
	req.cfg = ctx->cfg;
	req.user = ctx->user;
	req.user_id = ctx->user->store_id;
	req.method = method;
	req.path = url;
	req.raw_url = ctx->raw_url ? ctx->raw_url : url;
	if (ctx->body)
		ctx->body[ctx->len] = '\0';
	req.body = ctx->body ? ctx->body : "";
	req.body_len = ctx->len;
	resp.status = 500;
	/* one of the store's pooled connections for this request */
	store_lease_begin(d->srv->store);
	route(&req, &resp);
	store_lease_end(d->srv->store);
	ctx->responded = 1;
	return send_response(conn, ctx, &resp);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_daemon *d = cls;
	struct req_ctx *ctx = *con_cls;
	struct timespec t1;
	char qmethod[40], qpath[300], quser[80];
	long ms;

	(void)conn;
	if (ctx == NULL)
		return;
	if (!ctx->started) {
		free(ctx->raw_url);
		free(ctx);
		*con_cls = NULL;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - ctx->t0.tv_sec) * 1000 +
	    (t1.tv_nsec - ctx->t0.tv_nsec) / 1000000;
	log_info("http request method=%s path=%s status=%d bytes=%zu ms=%ld "
	    "user=%s%s", log_q(qmethod, sizeof qmethod, ctx->method),
	    log_q(qpath, sizeof qpath, ctx->path), ctx->status, ctx->bytes,
	    ms, log_q(quser, sizeof quser, ctx->user ? ctx->user->name : NULL),
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
	metrics_http(ctx->method, ctx->status);
	server_config_put(d->srv, ctx->cfg);
	free(ctx->body);
	free(ctx->path);
	free(ctx->raw_url);
	free(ctx);
	*con_cls = NULL;
	atomic_fetch_sub(&d->inflight, 1);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], q[600];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("http mhd message=%s", log_q(q, sizeof q, msg));
}

/* A PEM file for TLS: bounded, and never empty. */
static char *
read_pem(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *pem = file_read(path, HTTP_MAX_PEM, &len, err, errlen);

	if (pem != NULL && len == 0) {
		snprintf(err, errlen, "%s is empty", path);
		free(pem);
		pem = NULL;
	}
	return pem;
}

struct http_daemon *
http_start(struct server *srv, char *err, size_t errlen)
{
	struct http_daemon *d = calloc(1, sizeof *d);
	const struct config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG | MHD_USE_ITC;
	const union MHD_DaemonInfo *info;

	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->srv = srv;
	memset(&ss, 0, sizeof ss);
	if (strchr(cfg->listen_host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)cfg->listen_port);
		inet_pton(AF_INET6, cfg->listen_host, &s6->sin6_addr);
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)cfg->listen_port);
		inet_pton(AF_INET, cfg->listen_host, &s4->sin_addr);
	}
	if (cfg->tls_cert) {
		d->tls_cert = read_pem(cfg->tls_cert, err, errlen);
		d->tls_key = d->tls_cert ? read_pem(cfg->tls_key, err,
		    errlen) : NULL;
		if (d->tls_key == NULL)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	d->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, d,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, d,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, d,
	    MHD_OPTION_CONNECTION_TIMEOUT, 120u,
	    MHD_OPTION_CONNECTION_LIMIT, 1000u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
	    d->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    d->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, d->tls_key,
	    MHD_OPTION_END);
	if (d->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d (in use, or "
		    "a bad TLS certificate or key)", cfg->listen_host,
		    cfg->listen_port);
		goto fail;
	}
	info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
	d->port = info ? info->port : cfg->listen_port;
	return d;
fail:
	free(d->tls_cert);
	free(d->tls_key);
	free(d);
	return NULL;
}

void
http_stop(struct http_daemon *d)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	if (d == NULL)
		return;
	/* Stop accepting; let requests already running finish. */
	MHD_quiesce_daemon(d->mhd);
	for (int waited = 0; atomic_load(&d->inflight) > 0 &&
	    waited < STOP_WAIT_MS; waited += 10)
		nanosleep(&ts, NULL);
	MHD_stop_daemon(d->mhd);
	if (d->tls_key)
		explicit_bzero(d->tls_key, strlen(d->tls_key));
	free(d->tls_cert);
	free(d->tls_key);
	free(d);
}

int
http_port(const struct http_daemon *d)
{
	return d->port;
}
