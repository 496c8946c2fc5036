/*
 * webdav/dav.c: method dispatch for the DAV tree, path resolution and
 * access control, and the small helpers every method shares (error
 * bodies, conditional requests, ETags, dates). The methods themselves
 * live in propfind.c, put.c and report.c.
 */
#include "webdav/dav.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/log.h"

#define DAV_ALLOW "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, " \
	"MKCOL, MKCALENDAR, COPY, MOVE, REPORT"

/* ---- paths ---------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Splits an encoded URL path into decoded segments in buf (each
 * NUL-terminated). Encoded '/' and NUL are refused: decoding them would
 * let a client address a different path than the one it showed.
 */
static int
split_path(const char *url, char *buf, size_t buflen, char **segs,
    int *nseg, int *slash)
{
	const char *p = url, *end;
	size_t o = 0;
	int n = 0;

	/* An absolute URL (Destination, multiget hrefs): drop the origin. */
	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		p += strcspn(p, "/");
	}
	end = p + strcspn(p, "?#");
	/* A fragment never belongs in a request: refuse rather than guess. */
	if (*end == '#')
		return 400;
	if ((size_t)(end - p) > DAV_MAX_PATH)
		return 414;
	if (*p != '/')
		return 400;
	*slash = end > p && end[-1] == '/';
	while (p < end) {
		size_t start;

		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		if (n == DAV_MAX_DEPTH)
			return 414;
		start = o;
		while (p < end && *p != '/') {
			int c = (unsigned char)*p++;

			if (c == '%') {
				int hi = p + 1 < end ? hexval(p[0]) : -1;
				int lo = p + 1 < end ? hexval(p[1]) : -1;

				if (hi < 0 || lo < 0)
					return 400;
				c = hi << 4 | lo;
				p += 2;
				if (c == '/' || c == 0)
					return 400;
			}
			if (c < 0x20 || c == 0x7f)
				return 400;
			if (o + 2 > buflen)
				return 414;
			buf[o++] = (char)c;
		}
		buf[o++] = '\0';
		if (o - start - 1 > DAV_MAX_SEGMENT)
			return 414;
		if (!strcmp(buf + start, ".") || !strcmp(buf + start, ".."))
			return 400;
		segs[n++] = buf + start;
	}
	*nseg = n;
	return 0;
}

void
dav_res_clear(struct dav_res *r)
{
	free(r->href);
	free(r->rel);
	store_collection_clear(&r->coll);
	store_object_clear(&r->obj);
	memset(r, 0, sizeof *r);
}

char *
dav_parent_rel(const char *rel)
{
	const char *s = strrchr(rel, '/');

	return s ? strndup(rel, (size_t)(s - rel)) : strdup("");
}

static char *
join(char **segs, int n, int trailing)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < n; i++)
		len += strlen(segs[i]) + 1;
	s = malloc(len + 1);
	if (s == NULL)
		return NULL;
	p = s;
	for (int i = 0; i < n; i++) {
		if (i > 0)
			*p++ = '/';
		p = stpcpy(p, segs[i]);
	}
	if (trailing && n > 0)
		*p++ = '/';
	*p = '\0';
	return s;
}

static int
any_collection(void *arg, const struct store_collection *c)
{
	(void)arg;
	(void)c;
	return 1;
}

/* A user with no collection at all gets their default calendar back. */
static int
ensure_home(struct http_request *req)
{
	struct store *st = req->srv->store;
	int rc;

	rc = store_collection_list(st, req->user_id, NULL, any_collection,
	    NULL);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = store_collection_create(st, req->user_id, req->user->calendar, 1,
	    NULL, NULL);
	return rc == STORE_CONFLICT ? 0 : rc;
}

static int
resolve_home(struct http_request *req, char **segs, int n, int slash,
    int with_data, struct dav_res *r)
{
	struct store *st = req->srv->store;
	char *parent;
	int rc;

	r->rel = join(segs, n, 0);
	if (r->rel == NULL)
		return 500;
	r->name = n ? segs[n - 1] : "";
	if (n == 0) {
		r->kind = DAV_HOME;
		r->exists = r->parent_ok = 1;
		return ensure_home(req) ? 500 : 0;
	}
	r->name = strrchr(r->rel, '/') ? strrchr(r->rel, '/') + 1 : r->rel;
	if (n == 1) {
		r->parent_ok = 1;
		r->kind = DAV_COLL;
		rc = store_collection_get(st, req->user_id, r->rel, &r->coll);
		if (rc == 0)
			r->exists = r->has_coll = 1;
		return rc < 0 ? 500 : 0;
	}
	parent = dav_parent_rel(r->rel);
	if (parent == NULL)
		return 500;
	rc = store_collection_get(st, req->user_id, parent, &r->coll);
	free(parent);
	if (rc < 0)
		return 500;
	r->kind = DAV_OBJECT;
	if (rc == STORE_NOTFOUND)
		return 0;		/* no parent: nothing here */
	r->parent_ok = r->has_coll = 1;
	/* Objects are the common case (GET, multiget): look there first,
	 * unless the path ended in '/'. Either way both are looked at, so
	 * nothing is created over something else. */
	for (int pass = 0; pass < 2; pass++) {
		struct store_collection c;

		if ((pass == 0) != slash) {
			rc = store_object_get(st, r->coll.id, r->name,
			    with_data, &r->obj);
			if (rc < 0)
				return 500;
			if (rc == 0) {
				r->exists = 1;
				return 0;
			}
			continue;
		}
		rc = store_collection_get(st, req->user_id, r->rel, &c);
		if (rc < 0)
			return 500;
		if (rc == 0) {
			store_collection_clear(&r->coll);
			r->coll = c;
			r->kind = DAV_COLL;
			r->exists = 1;
			return 0;
		}
	}
	return 0;
}

int
dav_resolve(struct http_request *req, const char *url, int with_data,
    struct dav_res *r)
{
	char buf[DAV_MAX_PATH + DAV_MAX_DEPTH + 8], *segs[DAV_MAX_DEPTH];
	const char *user = req->user->name;
	int n = 0, slash = 0, rc, coll;

	memset(r, 0, sizeof *r);
	rc = split_path(url, buf, sizeof buf, segs, &n, &slash);
	if (rc)
		return rc;
	r->slash = slash;
	if (n == 0) {
		/* "/": the bare server URL, for discovery only. */
		r->kind = DAV_ROOT;
		r->exists = r->parent_ok = 1;
		r->href = strdup("/");
		return r->href ? 0 : 500;
	}
	if (strcmp(segs[0], "dav") != 0)
		return 404;
	if (n == 1) {
		r->kind = DAV_ROOT;
	} else if (!strcmp(segs[1], "principals")) {
		if (n > 3 || (n == 3 && strcmp(segs[2], user)))
			return 404;
		r->kind = n == 2 ? DAV_PRINCIPALS : DAV_PRINCIPAL;
	} else if (!strcmp(segs[1], "calendars")) {
		if (n == 2)
			r->kind = DAV_CALENDARS;
		else if (strcmp(segs[2], user))
			return 404;
		else {
			rc = resolve_home(req, segs + 3, n - 3, slash,
			    with_data, r);
			if (rc)
				return rc;
		}
	} else
		return 404;
	if (r->kind < DAV_COLL)
		r->exists = r->parent_ok = 1;
	coll = r->kind != DAV_OBJECT;
	r->href = join(segs, n, coll);
	if (r->href == NULL)
		return 500;
	/* join() left out the leading slash. */
	{
		size_t len = strlen(r->href);
		char *h = malloc(len + 2);

		if (h == NULL)
			return 500;
		h[0] = '/';
		memcpy(h + 1, r->href, len + 1);
		free(r->href);
		r->href = h;
	}
	return 0;
}

void
dav_principal_href(const struct http_request *req, char *buf, size_t n)
{
	snprintf(buf, n, "/dav/principals/%s/", req->user->name);
}

void
dav_home_href(const struct http_request *req, char *buf, size_t n)
{
	snprintf(buf, n, "/dav/calendars/%s/", req->user->name);
}

/* ---- the home's sync state ------------------------------------------ */

struct home_walk {
	int64_t upto;
	struct dav_home_sync *s;
};

static int
home_walk(void *arg, const struct store_collection *c)
{
	struct home_walk *w = arg;
	uint64_t h = 1469598103934665603ull;	/* FNV-1a of "id/path" */
	char id[24];

	if (c->synctoken > w->s->seq)
		w->s->seq = c->synctoken;
	if (c->id > w->s->maxid)
		w->s->maxid = c->id;
	if (c->id > w->upto)
		return 0;
	snprintf(id, sizeof id, "%" PRId64 "/", c->id);
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (const char *p = c->path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	w->s->hash += h;		/* order does not matter */
	return 0;
}

int
dav_home_sync_state(struct http_request *req, int64_t upto_id,
    struct dav_home_sync *out)
{
	struct home_walk w = { upto_id, out };

	memset(out, 0, sizeof *out);
	return store_collection_list(req->srv->store, req->user_id, NULL,
	    home_walk, &w) ? -1 : 0;
}

void
dav_home_sync_token(const struct dav_home_sync *s, struct xml_buf *out)
{
	xml_buf_printf(out, DAV_SYNC_PREFIX "home/%" PRId64 "/%" PRId64
	    "/%016" PRIx64, s->seq, s->maxid, s->hash);
}

/* ---- shared helpers --------------------------------------------------- */

int
dav_depth(const struct http_request *req, int def)
{
	const char *d = http_header(req, "Depth");

	if (d == NULL)
		return def;
	if (!strcmp(d, "0"))
		return 0;
	if (!strcmp(d, "1"))
		return 1;
	if (!strcasecmp(d, "infinity"))
		return -1;
	return -2;
}

const char *
dav_status_line(int status)
{
	switch (status) {
	case 200: return "HTTP/1.1 200 OK";
	case 201: return "HTTP/1.1 201 Created";
	case 204: return "HTTP/1.1 204 No Content";
	case 403: return "HTTP/1.1 403 Forbidden";
	case 404: return "HTTP/1.1 404 Not Found";
	case 409: return "HTTP/1.1 409 Conflict";
	case 412: return "HTTP/1.1 412 Precondition Failed";
	case 424: return "HTTP/1.1 424 Failed Dependency";
	case 507: return "HTTP/1.1 507 Insufficient Storage";
	default: return "HTTP/1.1 500 Internal Server Error";
	}
}

void
dav_respond_xml(struct http_response *resp, int status, struct xml_buf *b)
{
	size_t len = 0;
	char *body = xml_buf_take(b, &len);

	if (body == NULL) {
		http_respond_text(resp, 500, "out of memory");
		return;
	}
	http_respond(resp, status, "application/xml; charset=utf-8", body,
	    len);
}

void
dav_multistatus_begin(struct xml_buf *b)
{
	xml_buf_str(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<D:multistatus" XML_NS_DECLS ">");
}

void
dav_multistatus_end(struct xml_buf *b)
{
	xml_buf_str(b, "</D:multistatus>\n");
}

void
dav_status_response(struct xml_buf *b, const char *href, int status)
{
	xml_buf_str(b, "<D:response><D:href>");
	xml_buf_href(b, href);
	xml_buf_printf(b, "</D:href><D:status>%s</D:status></D:response>",
	    dav_status_line(status));
}

void
dav_error(struct http_response *resp, int status, const char *ns,
    const char *pre, const char *href)
{
	struct xml_buf b = { 0 };
	const char *p = !strcmp(ns, XML_NS_CALDAV) ? "C" : "D";

	xml_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<D:error" XML_NS_DECLS "><%s:%s", p, pre);
	if (href) {
		xml_buf_str(&b, "><D:href>");
		xml_buf_href(&b, href);
		xml_buf_printf(&b, "</D:href></%s:%s>", p, pre);
	} else
		xml_buf_str(&b, "/>");
	xml_buf_str(&b, "</D:error>\n");
	dav_respond_xml(resp, status, &b);
}

void
dav_etag(char *buf, size_t n, int64_t etag)
{
	snprintf(buf, n, "\"%lld\"", (long long)etag);
}

void
dav_http_date(char *buf, size_t n, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* 1 when the header's list ("*" or quoted ETags) names etag. */
static int
etag_listed(const char *h, int exists, int64_t etag)
{
	char want[32];
	size_t wl;

	dav_etag(want, sizeof want, etag);
	wl = strlen(want);
	while (*h) {
		size_t n;

		h += strspn(h, " \t,");
		if (*h == '*')
			return exists;
		n = strcspn(h, ",");
		while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
			n--;
		/* Strong comparison: a weak tag never matches. */
		if (exists && n == wl && !memcmp(h, want, wl))
			return 1;
		h += strcspn(h, ",");
	}
	return 0;
}

int
dav_conditions(const struct http_request *req, int exists, int64_t etag)
{
	const char *im = http_header(req, "If-Match");
	const char *inm = http_header(req, "If-None-Match");
	int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");

	if (im && !etag_listed(im, exists, etag))
		return 412;
	if (inm && etag_listed(inm, exists, etag))
		return get ? 304 : 412;
	return 0;
}

/* ---- dispatch --------------------------------------------------------- */

static void
options(struct http_response *resp)
{
	http_respond(resp, 200, NULL, NULL, 0);
	http_add_header(resp, "DAV", "1, 3, calendar-access, extended-mkcol");
	http_add_header(resp, "Allow", DAV_ALLOW);
}

void
dav_handle(struct http_request *req, struct http_response *resp)
{
	const char *m = req->method;
	struct dav_res res;
	int rc;

	if (!strncmp(req->path, "/.well-known/caldav", 19)) {
		/* RFC 6764 5: the context path is /dav/. */
		http_respond_text(resp, 301, "see /dav/");
		http_add_header(resp, "Location", "/dav/");
		return;
	}
	if (!strcmp(m, "OPTIONS")) {
		options(resp);
		return;
	}
	if (req->body_len > XML_MAX_BODY && strcmp(m, "PUT")) {
		/* Only PUT carries big bodies; XML bodies stay small. */
		http_respond_text(resp, 413, "request body too large");
		return;
	}
	rc = dav_resolve(req, req->raw_url, !strcmp(m, "GET") ||
	    !strcmp(m, "HEAD"), &res);
	if (rc) {
		if (rc == 404)
			http_respond_text(resp, 404, "not found");
		else if (rc == 414)
			http_respond_text(resp, 414, "path too long");
		else if (rc == 400)
			http_respond_text(resp, 400, "malformed path");
		else
			http_respond_text(resp, 500, "internal error");
		goto out;
	}
	if (!strcmp(m, "PROPFIND"))
		dav_propfind(req, resp, &res);
	else if (!strcmp(m, "PROPPATCH"))
		dav_proppatch(req, resp, &res);
	else if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
		dav_get(req, resp, &res);
	else if (!strcmp(m, "PUT"))
		dav_put(req, resp, &res);
	else if (!strcmp(m, "DELETE"))
		dav_delete(req, resp, &res);
	else if (!strcmp(m, "MKCOL"))
		dav_mkcol(req, resp, &res, 0);
	else if (!strcmp(m, "MKCALENDAR"))
		dav_mkcol(req, resp, &res, 1);
	else if (!strcmp(m, "COPY"))
		dav_copymove(req, resp, &res, 0);
	else if (!strcmp(m, "MOVE"))
		dav_copymove(req, resp, &res, 1);
	else if (!strcmp(m, "REPORT"))
		dav_report(req, resp, &res);
	else {
		http_respond_text(resp, 405, "method not allowed");
		http_add_header(resp, "Allow", DAV_ALLOW);
	}
out:
	dav_res_clear(&res);
}
