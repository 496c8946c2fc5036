/*
 * server/http.h: HTTP glue on libmicrohttpd. Owns routing, HTTP Basic
 * authentication, body limits, the access log and the running server's
 * shared state. Protocol handlers (webdav/, the status page and API) see
 * one authenticated request with its whole body and fill one response.
 */
#ifndef CALGATE_HTTP_H
#define CALGATE_HTTP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/config.h"
#include "server/store.h"

struct MHD_Connection;
struct gate;

/* What a running calgate shares between HTTP threads and pollers. */
struct server {
	struct store *store;
	struct gate *gate;		/* policy/, may be NULL in tests */
	pthread_mutex_t cfg_mu;
	struct config *cfg;		/* current; swapped on reload */
	char reload_error[512];		/* last refused reload, "" if none */
	int64_t started;		/* unix seconds */

	/*
	 * Set by serve (main.c); NULL where not wired (unit tests).
	 * reload: re-reads the config file; 0, or -1 with the errors in
	 * reload_error. recheck: re-runs the inbound gate on imip_log row
	 * log_id of user u and merges the invitation if it now passes;
	 * 0 with the new decision recorded in that row, or -1 with a
	 * one-line reason in err.
	 */
	int (*reload)(struct server *);
	int (*recheck)(struct server *, const struct user_conf *u,
	    int64_t log_id, char *err, size_t errlen);
};

/*
 * The current configuration, referenced until server_config_put. A reload
 * never frees a config that a request still reads.
 */
struct config *server_config_get(struct server *);
void server_config_put(struct server *, struct config *);
/*
 * Makes fresh the current configuration (the server owns it from now on)
 * and frees the one it replaces once nothing holds it any more.
 */
void server_config_swap(struct server *, struct config *fresh);

struct http_header {
	char *name, *value;		/* owned */
	struct http_header *next;
};

struct http_request {
	struct MHD_Connection *conn;
	struct server *srv;
	const struct config *cfg;	/* referenced for this request */
	const struct user_conf *user;	/* authenticated user */
	int64_t user_id;		/* its store id */
	const char *method;
	const char *path;		/* URL path, percent-decoded by MHD */
	const char *raw_url;		/* as sent */
	const char *body;		/* NUL-terminated; "" when none */
	size_t body_len;
};

struct http_response {
	int status;
	char *body;			/* owned (malloc), may be NULL */
	size_t len;
	const char *content_type;	/* static string, or NULL */
	struct http_header *headers;
};

/* A request header's value (case-insensitive name), or NULL. */
const char *http_header(const struct http_request *, const char *name);

/* Sets the response; takes ownership of body (malloc'd, len bytes). */
void http_respond(struct http_response *, int status, const char *ctype,
    char *body, size_t len);
/* A one-line text/plain body, for errors. */
void http_respond_text(struct http_response *, int status, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
/* Adds a response header (copied). */
void http_add_header(struct http_response *, const char *name,
    const char *value);

/*
 * Starts listening per cfg's [server] (thread pool, optional TLS). Returns
 * an opaque daemon handle, or NULL with a reason in err.
 */
struct http_daemon;
struct http_daemon *http_start(struct server *, char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish (up to 10 s), stops. */
void http_stop(struct http_daemon *);
/* The port actually bound (useful with listen = 127.0.0.1:0). */
int http_port(const struct http_daemon *);

/*
 * Checks name/password against the config; constant time across failure
 * paths. Successful checks are cached (keyed MAC, never the password) so a
 * client's every request does not pay for yescrypt. Returns the user or
 * NULL.
 */
const struct user_conf *http_auth_check(const struct config *,
    const char *name, const char *password);

/*
 * Password guessing: after HTTP_AUTH_FAILS wrong passwords for one user
 * from one client address within HTTP_AUTH_WINDOW seconds, that pair is
 * refused (429, no password check) until the window that began with the
 * first failure ends. http_auth_throttled returns the seconds left (0: go
 * ahead); http_auth_note records an outcome (a success clears the pair).
 * Only the pair is kept, as a keyed MAC: no names or addresses stored.
 */
#define HTTP_AUTH_FAILS		10
#define HTTP_AUTH_WINDOW	300
int http_auth_throttled(const char *addr, const char *name, time_t now);
void http_auth_note(const char *addr, const char *name, int ok, time_t now);

#endif
