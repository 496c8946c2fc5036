/*
 * webdav/report.c: REPORT (RFC 3253 3.6) for calendar-multiget,
 * calendar-query, free-busy-query (RFC 4791 7) and sync-collection
 * (RFC 6578). Filters, calendar-data selection and free-busy arithmetic
 * belong to webdav/query.c; this file walks the store and writes the
 * multistatus. Every walk is proportional to its result: multiget looks
 * objects up one by one, calendar-query lets the store prefilter by the
 * filter's time span, sync-collection reads only the changes since the
 * token.
 */
#include "webdav/dav.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/log.h"

#include "webdav/query.h"

struct report {
	struct http_request *req;
	const struct dav_res *target;
	struct dav_propreq *pr;
	struct xml_buf *out;
	struct query *q;
	int with_data;
	int bad;			/* calendar-data request refused */
	char err[200];
	int64_t maxseq;
	long limit;			/* sync-collection DAV:limit, 0: none */
	long count;			/* members reported under it */
	int64_t lastseq;		/* the last one's change */
	int truncated;
	struct xml_buf href;		/* scratch for object hrefs */
};

/* Writes calendar-data for an object whose bytes were loaded. */
static int
calendar_data_hook(void *arg, const struct dav_res *r, xmlNode *el,
    struct xml_buf *val)
{
	struct report *rp = arg;
	size_t n = 0;
	char *s;

	if (!xml_is(el, XML_NS_CALDAV, "calendar-data") ||
	    r->kind != DAV_OBJECT || r->obj.data == NULL ||
	    !r->coll.is_calendar)
		return 1;
	if (xml_first(el) == NULL) {
		/* The whole object: no parse needed. */
		xml_buf_esc(val, r->obj.data, r->obj.len);
		return 0;
	}
	s = query_calendar_data(el, r->obj.data, r->obj.len, &n, rp->err,
	    sizeof rp->err);
	if (s == NULL) {
		rp->bad = 1;
		return -1;
	}
	xml_buf_esc(val, s, n);
	free(s);
	return 0;
}

static int
wants_data(xmlNode *propel)
{
	return propel && xml_child(propel, XML_NS_CALDAV, "calendar-data");
}

/* Writes an object's response, borrowing o into a resource. */
static int
object_response(struct report *rp, const struct store_object *o)
{
	return dav_prop_object(rp->req, rp->target, o, rp->pr,
	    calendar_data_hook, rp, &rp->href, rp->out);
}

static void
status_raw(struct xml_buf *b, const char *href, int status)
{
	xml_buf_str(b, "<D:response><D:href>");
	xml_buf_esc(b, href, strlen(href));
	xml_buf_printf(b, "</D:href><D:status>%s</D:status></D:response>",
	    dav_status_line(status));
}

/* ---- calendar-multiget ------------------------------------------------ */

static int multiget_hrefs(struct report *, xmlNode *);

static int
multiget(struct report *rp, xmlNode *root)
{
	struct store *st = rp->req->srv->store;
	int rc;

	/* one snapshot for all the lookups, not one per statement */
	if (store_read_begin(st))
		return -1;
	rc = multiget_hrefs(rp, root);
	if (store_commit(st))
		rc = -1;
	return rc;
}

/*
 * The object name an href (as sent) gives directly inside the target
 * collection, or NULL when only dav_resolve can tell: another collection,
 * an absolute URL, percent-encoding, anything split_path would refuse.
 */
static const char *
multiget_member(const struct dav_res *t, const char *href)
{
	size_t n;

	if (t->kind != DAV_COLL || !t->has_coll || strchr(t->href, '%'))
		return NULL;
	n = strlen(t->href);
	if (strncmp(href, t->href, n) != 0)
		return NULL;
	href += n;
	if (*href == '\0' || strlen(href) > DAV_MAX_SEGMENT ||
	    !strcmp(href, ".") || !strcmp(href, ".."))
		return NULL;
	for (const unsigned char *u = (const unsigned char *)href; *u; u++)
		if (*u < 0x20 || *u == 0x7f || strchr("/%?#", *u))
			return NULL;
	return href;
}

static int
multiget_one(void *arg, const struct store_object *o)
{
	return object_response(arg, o);
}

static int
multiget_hrefs(struct report *rp, xmlNode *root)
{
	for (xmlNode *h = xml_first(root); h; h = xml_next(h)) {
		struct dav_res r;
		xmlChar *text;
		char *t, *e;
		int rc;

		if (!xml_is(h, XML_NS_DAV, "href"))
			continue;
		text = xmlNodeGetContent(h);
		if (text == NULL)
			return -1;
		t = (char *)text + strspn((char *)text, " \t\r\n");
		e = t + strlen(t);
		while (e > t && strchr(" \t\r\n", e[-1]))
			*--e = '\0';
		/* the common case, a member of the target: one lookup, the
		 * row borrowed, no path resolution */
		if ((e = (char *)multiget_member(rp->target, t)) != NULL) {
			rc = store_object_visit(rp->req->srv->store,
			    rp->target->coll.id, e, rp->with_data,
			    multiget_one, rp);
			if (rc == STORE_NOTFOUND) {
				status_raw(rp->out, t, 404);
				rc = 0;
			}
			xmlFree(text);
			if (rc)
				return -1;
			continue;
		}
		rc = dav_resolve(rp->req, t, rp->with_data, &r);
		if (rc == 0 && r.exists && r.kind == DAV_OBJECT)
			rc = dav_prop_response(rp->req, &r, rp->pr,
			    calendar_data_hook, rp, rp->out);
		else {
			status_raw(rp->out, t, 404);
			rc = 0;
		}
		dav_res_clear(&r);
		xmlFree(text);
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- sync-collection -------------------------------------------------- */

static int
sync_list(void *arg, const struct store_object *o)
{
	return object_response(arg, o);
}

static int
sync_brief(void *arg, const char *name, int64_t etag, const char *ctype)
{
	struct report *rp = arg;

	return dav_prop_brief(rp->pr, name, etag, ctype, rp->out);
}

static int
sync_change(void *arg, const char *name, int deleted, int64_t seq)
{
	struct report *rp = arg;
	struct store_object o;
	char *href = NULL;
	int rc;

	if (rp->limit > 0 && rp->count == rp->limit) {
		rp->truncated = 1;	/* RFC 6578 3.6: the rest next time */
		return 1;
	}
	rp->count++;
	rp->lastseq = seq;
	if (seq > rp->maxseq)
		rp->maxseq = seq;
	if (!deleted) {
		rc = store_object_get(rp->req->srv->store,
		    rp->target->coll.id, name, rp->with_data, &o);
		if (rc == 0) {
			rc = object_response(rp, &o);
			store_object_clear(&o);
			return rc;
		}
		if (rc != STORE_NOTFOUND)
			return -1;
	}
	/* RFC 6578 3.5.2: a removed member is a 404 response. */
	if (asprintf(&href, "%s%s", rp->target->href, name) < 0)
		return -1;
	dav_status_response(rp->out, href, 404);
	free(href);
	return 0;
}

/*
 * Parses a token of ours for this collection: 0 and *since, or -1 when it
 * is foreign, from another collection, or garbage.
 */
static int
sync_token_parse(const char *t, int64_t coll_id, int64_t *since)
{
	long long id, seq;
	char tail;

	*since = 0;
	if (*t == '\0')
		return 0;
	if (strncmp(t, DAV_SYNC_PREFIX, strlen(DAV_SYNC_PREFIX)) != 0)
		return -1;
	t += strlen(DAV_SYNC_PREFIX);
	if (sscanf(t, "%lld/%lld%c", &id, &seq, &tail) != 2 ||
	    id != coll_id || seq < 0)
		return -1;
	*since = seq;
	return 0;
}

/* DAV:limit/DAV:nresults (RFC 5323 5.17, RFC 6578 3.7): 0 with *n
 * (0 when absent), or -1 when it is not a positive number. */
static int
sync_limit(xmlNode *root, long *n)
{
	xmlNode *l = xml_child(root, XML_NS_DAV, "limit");
	xmlNode *nr = l ? xml_child(l, XML_NS_DAV, "nresults") : NULL;
	xmlChar *v;
	char *end;
	long x;

	*n = 0;
	if (l == NULL)
		return 0;
	if (nr == NULL || (v = xmlNodeGetContent(nr)) == NULL)
		return -1;
	x = strtol((const char *)v, &end, 10);
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (end == (char *)v || *end != '\0' || x <= 0) {
		xmlFree(v);
		return -1;
	}
	xmlFree(v);
	*n = x > 100000 ? 100000 : x;
	return 0;
}

/*
 * sync-collection on the calendar home (Apple Calendar asks for it): its
 * members are the collections; one that changed (its sync token moved) or
 * is new since the token is reported with the requested properties. A
 * collection that went away cannot be named afterwards, so then the token
 * is refused (403 valid-sync-token) and the client starts over, as RFC
 * 6578 3.2 allows.
 */
struct home_sync {
	struct report *rp;
	int64_t since, maxid;		/* since < 0: initial */
};

static int
home_sync_coll(void *arg, const struct store_collection *c)
{
	struct home_sync *h = arg;
	struct report *rp = h->rp;

	if (h->since >= 0 && c->synctoken <= h->since && c->id <= h->maxid)
		return 0;
	return dav_prop_collection(rp->req, rp->target->href, c, rp->pr,
	    rp->out);
}

static int
sync_home(struct report *rp, struct http_response *resp, const char *tok)
{
	struct dav_home_sync now, then;
	struct home_sync h = { rp, -1, 0 };
	long long seq, maxid;
	unsigned long long hash;
	char tail;

	if (*tok != '\0') {
		if (strncmp(tok, DAV_SYNC_PREFIX "home/",
		    strlen(DAV_SYNC_PREFIX "home/")) != 0 ||
		    sscanf(tok + strlen(DAV_SYNC_PREFIX "home/"),
		    "%lld/%lld/%16llx%c", &seq, &maxid, &hash, &tail) != 3 ||
		    seq < 0 || maxid < 0)
			goto refuse;
		if (dav_home_sync_state(rp->req, maxid, &then))
			return -1;
		if (then.hash != (uint64_t)hash)
			goto refuse;	/* a collection went away */
		h.since = seq;
		h.maxid = maxid;
	}
	/* The token first: a change during the walk is reported again next
	 * time rather than missed. */
	if (dav_home_sync_state(rp->req, INT64_MAX, &now) ||
	    store_collection_list(rp->req->srv->store, rp->req->user_id, NULL,
	    home_sync_coll, &h))
		return -1;
	xml_buf_str(rp->out, "<D:sync-token>");
	dav_home_sync_token(&now, rp->out);
	xml_buf_str(rp->out, "</D:sync-token>");
	return 0;
refuse:
	dav_error(resp, 403, XML_NS_DAV, "valid-sync-token", NULL);
	return 1;
}

static int
sync_collection(struct report *rp, struct http_response *resp,
    xmlNode *root)
{
	struct store *st = rp->req->srv->store;
	const struct dav_res *t = rp->target;
	xmlNode *tok = xml_child(root, XML_NS_DAV, "sync-token");
	xmlChar *text = tok ? xmlNodeGetContent(tok) : NULL;
	char *s = text ? (char *)text : "";
	int64_t since, token;
	int rc;

	s += strspn(s, " \t\r\n");
	for (char *e = s + strlen(s); e > s && strchr(" \t\r\n", e[-1]);)
		*--e = '\0';
	if (t->kind == DAV_HOME) {
		rc = sync_home(rp, resp, s);
		xmlFree(text);
		return rc;
	}
	if (sync_token_parse(s, t->coll.id, &since)) {
		xmlFree(text);
		dav_error(resp, 403, XML_NS_DAV, "valid-sync-token", NULL);
		return 1;
	}
	xmlFree(text);
	if (sync_limit(root, &rp->limit) != 0) {
		http_respond_text(resp, 400, "DAV:limit needs a positive "
		    "DAV:nresults");
		return 1;
	}
	rp->maxseq = token = t->coll.synctoken;
	if (rp->limit > 0)
		/* in change order, so the token can say where it stopped */
		rc = store_changes_since(st, t->coll.id, since, sync_change,
		    rp);
	else if (since == 0) {
		rc = dav_prop_brief_begin(rp->req, t, rp->pr);
		if (rc == 1)
			rc = store_object_brief(st, t->coll.id, sync_brief,
			    rp);
		else if (rc == 0)
			rc = store_object_list(st, t->coll.id, rp->with_data,
			    INT64_MIN, INT64_MAX, sync_list, rp);
	}
	else
		rc = store_changes_since(st, t->coll.id, since, sync_change,
		    rp);
	if (rp->truncated) {
		/* the walk stopped itself: the rest from the last one on */
		xml_buf_str(rp->out, "<D:response><D:href>");
		xml_buf_href(rp->out, t->href);
		xml_buf_printf(rp->out, "</D:href><D:status>%s</D:status>"
		    "<D:error><D:number-of-matches-within-limits/></D:error>"
		    "</D:response>", dav_status_line(507));
		token = rp->lastseq;
	} else if (rc == STORE_NOTFOUND) {
		dav_error(resp, 403, XML_NS_DAV, "valid-sync-token", NULL);
		return 1;
	} else if (rc)
		return -1;
	else if (rp->maxseq > token)
		token = rp->maxseq;
	xml_buf_printf(rp->out, "<D:sync-token>" DAV_SYNC_PREFIX "%" PRId64
	    "/%" PRId64 "</D:sync-token>", t->coll.id, token);
	return 0;
}

/* ---- calendar-query --------------------------------------------------- */

static int
query_one(void *arg, const struct store_object *o)
{
	struct report *rp = arg;
	int m;

	if (o->data == NULL)
		return 0;
	m = query_match_digest(rp->q, o->component, o->instances,
	    o->instances_len);
	if (m < 0)
		m = query_match(rp->q, o->data, o->len);
	if (!m)
		return 0;
	return object_response(rp, o);
}

static int
calendar_query(struct report *rp, struct http_response *resp,
    xmlNode *root)
{
	struct store *st = rp->req->srv->store;
	const struct dav_res *t = rp->target;
	xmlNode *filter = xml_child(root, XML_NS_CALDAV, "filter");
	int64_t start, end;
	int rc;

	if (filter == NULL) {
		dav_error(resp, 403, XML_NS_CALDAV, "valid-filter", NULL);
		return 1;
	}
	rp->q = query_parse(filter, rp->err, sizeof rp->err);
	if (rp->q == NULL) {
		log_info("dav query refused user=%s reason=\"%s\"",
		    rp->req->user->name, rp->err);
		dav_error(resp, 403, XML_NS_CALDAV, "valid-filter", NULL);
		return 1;
	}
	if (t->kind == DAV_OBJECT) {
		struct store_object o;

		rc = store_object_get(st, t->coll.id, t->name, 1, &o);
		if (rc == 0) {
			/* query_one writes hrefs relative to a collection */
			if (o.data && query_match(rp->q, o.data, o.len)) {
				struct dav_res r = *t;

				r.obj = o;
				rc = dav_prop_response(rp->req, &r, rp->pr,
				    calendar_data_hook, rp, rp->out);
			}
			store_object_clear(&o);
		}
		return rc ? -1 : 0;
	}
	query_span(rp->q, &start, &end);
	rc = store_object_list(st, t->coll.id, 1, start, end, query_one, rp);
	return rc ? -1 : 0;
}

/* ---- free-busy-query -------------------------------------------------- */

/* An iCalendar UTC date-time (20060104T140000Z) as unix seconds. */
static int
parse_utc(const char *s, int64_t *out)
{
	struct tm tm;
	char z;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || strlen(s) != 16 || sscanf(s, "%4d%2d%2dT%2d%2d%2d%c",
	    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec, &z) != 7 || z != 'Z')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

struct fb_walk {
	struct freebusy *fb;
};

static int
fb_one(void *arg, const struct store_object *o)
{
	struct fb_walk *w = arg;

	/* An object libical cannot read (stored before a check it now
	 * fails existed) is busy time nobody can see: left out, not a 500. */
	if (o->data && freebusy_add(w->fb, o->data, o->len) < 0)
		log_warn("dav free-busy skipped object=%" PRId64 " reason=\"not "
		    "readable iCalendar\"", o->id);
	return 0;
}

static int
freebusy_query(struct report *rp, struct http_response *resp,
    xmlNode *root)
{
	xmlNode *tr = xml_child(root, XML_NS_CALDAV, "time-range");
	xmlChar *s = tr ? xmlGetProp(tr, (const xmlChar *)"start") : NULL;
	xmlChar *e = tr ? xmlGetProp(tr, (const xmlChar *)"end") : NULL;
	int64_t start = 0, end = 0;
	struct fb_walk w;
	size_t len = 0;
	char *body;
	int rc;

	rc = parse_utc((char *)s, &start) || parse_utc((char *)e, &end) ||
	    end <= start;
	xmlFree(s);
	xmlFree(e);
	if (rc || rp->target->kind != DAV_COLL ||
	    !rp->target->coll.is_calendar) {
		http_respond_text(resp, 400, "free-busy-query needs a "
		    "calendar and a UTC time-range");
		return 1;
	}
	w.fb = freebusy_new(start, end);
	if (w.fb == NULL)
		return -1;
	rc = store_object_list(rp->req->srv->store, rp->target->coll.id, 1,
	    start, end, fb_one, &w);
	body = freebusy_finish(w.fb, &len);
	if (rc || body == NULL) {
		free(body);
		return -1;
	}
	http_respond(resp, 200, "text/calendar; charset=utf-8", body, len);
	return 1;
}

/* ---- dispatch --------------------------------------------------------- */

static xmlNode *
prop_element(xmlNode *root)
{
	xmlNode *p = xml_child(root, XML_NS_DAV, "prop");

	if (p == NULL)
		p = xml_child(root, XML_NS_DAV, "propname");
	if (p == NULL)
		p = xml_child(root, XML_NS_DAV, "allprop");
	return p;
}

static int
run(struct report *rp, struct http_response *resp, xmlNode *root)
{
	const struct dav_res *t = rp->target;
	int is_coll = t->kind == DAV_COLL;

	if (xml_is(root, XML_NS_CALDAV, "calendar-multiget"))
		return multiget(rp, root);
	if (xml_is(root, XML_NS_DAV, "sync-collection")) {
		if (!is_coll && t->kind != DAV_HOME) {
			dav_error(resp, 403, XML_NS_DAV, "supported-report",
			    NULL);
			return 1;
		}
		return sync_collection(rp, resp, root);
	}
	if (xml_is(root, XML_NS_CALDAV, "calendar-query")) {
		if (!t->coll.is_calendar || !t->has_coll) {
			dav_error(resp, 403, XML_NS_DAV, "supported-report",
			    NULL);
			return 1;
		}
		return calendar_query(rp, resp, root);
	}
	if (xml_is(root, XML_NS_CALDAV, "free-busy-query"))
		return freebusy_query(rp, resp, root);
	dav_error(resp, 403, XML_NS_DAV, "supported-report", NULL);
	return 1;
}

void
dav_report(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct report rp;
	struct xml_buf out = { 0 };
	xmlDoc *doc;
	xmlNode *root;
	char err[200];
	int rc;

	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	doc = xml_parse(req->body, req->body_len, err, sizeof err);
	if (doc == NULL) {
		http_respond_text(resp, 400, "%s", err);
		return;
	}
	root = xmlDocGetRootElement(doc);
	memset(&rp, 0, sizeof rp);
	rp.req = req;
	rp.target = res;
	rp.out = &out;
	rp.with_data = wants_data(xml_child(root, XML_NS_DAV, "prop"));
	rp.pr = dav_propreq_parse(prop_element(root));
	if (rp.pr == NULL) {
		http_respond_text(resp, 400, "bad DAV:prop");
		goto out;
	}
	dav_propreq_prefer(rp.pr, req, resp);
	dav_multistatus_begin(&out);
	rc = run(&rp, resp, root);
	if (rc == 0) {
		dav_multistatus_end(&out);
		dav_respond_xml(resp, 207, &out);
	} else if (rc < 0 && rp.bad) {
		dav_error(resp, 400, XML_NS_CALDAV, "valid-calendar-data",
		    NULL);
	} else if (rc < 0)
		http_respond_text(resp, 500, "internal error");
out:
	xml_buf_free(&out);
	xml_buf_free(&rp.href);
	dav_propreq_free(rp.pr);
	if (rp.q)
		query_free(rp.q);
	xmlFreeDoc(doc);
}
