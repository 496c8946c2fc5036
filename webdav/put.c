/*
 * webdav/put.c: the methods that read or change resources as a whole:
 * GET/HEAD, PUT, DELETE, MKCOL (RFC 4918, extended per RFC 5689),
 * MKCALENDAR (RFC 4791 5.3.1) and COPY/MOVE. A calendar collection holds
 * only valid calendar object resources (RFC 4791 5.3.2, checked by
 * server/ical.c); a plain collection holds anything. Bytes are stored and
 * served exactly as they were sent.
 */
#include "webdav/dav.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ical.h"
#include "server/log.h"
#include "webdav/xml.h"

#define CAL_CTYPE	"text/calendar; charset=utf-8"
#define DAV_MAX_ICAL_LINE	(1u << 20)	/* one unfolded property */

static void
set_etag(struct http_response *resp, int64_t etag)
{
	char e[32];

	dav_etag(e, sizeof e, etag);
	http_add_header(resp, "ETag", e);
}

/* ---- GET, HEAD -------------------------------------------------------- */

/*
 * GET on a calendar collection: the whole calendar as one iCalendar
 * object, for read-only subscriptions ("webcal") and backups. Each
 * object's components are copied line by line as stored (CRLF endings);
 * the objects' own VCALENDAR properties are dropped and each VTIMEZONE is
 * kept once per TZID. The ETag is the collection's DAV:getetag.
 */
struct export {
	struct xml_buf out;
	struct xml_buf tz;		/* the VTIMEZONE being read */
	char **tzids;			/* VTIMEZONEs already written */
	size_t ntz;
};

static int
export_tz_seen(struct export *x, const char *tzid, size_t n)
{
	char **t;

	for (size_t i = 0; i < x->ntz; i++)
		if (strlen(x->tzids[i]) == n && !memcmp(x->tzids[i], tzid, n))
			return 1;
	t = realloc(x->tzids, (x->ntz + 1) * sizeof *t);
	if (t == NULL || (t[x->ntz] = strndup(tzid, n)) == NULL) {
		if (t != NULL)
			x->tzids = t;
		x->out.oom = 1;
		return 1;
	}
	x->tzids = t;
	x->ntz++;
	return 0;
}

/* One stored object: its components, unfolded lines never split. A
 * VTIMEZONE is held in x->tz until its END says whether it is new. */
static int
export_one(void *arg, const struct store_object *o)
{
	struct export *x = arg;
	const char *p = o->data, *end = o->data + o->len;
	const char *tzid = NULL;
	size_t tzid_len = 0;
	int depth = 0, keep = 0, in_tz = 0;

	while (p < end && !x->out.oom && !x->tz.oom) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - p);
		int cont = *p == ' ' || *p == '\t';

		if (n > 0 && e[-1] == '\r')
			n--;
		if (!cont) {
			if (n > 6 && !strncasecmp(p, "BEGIN:", 6))
				depth++;
			keep = depth >= 2;
			if (depth == 2 && n == 15 &&
			    !strncasecmp(p, "BEGIN:VTIMEZONE", 15)) {
				in_tz = 1;
				tzid = NULL;
				x->tz.len = 0;
			}
			if (in_tz && depth == 2 && n > 5 &&
			    !strncasecmp(p, "TZID", 4) && (p[4] == ':' ||
			    p[4] == ';')) {
				tzid = memchr(p, ':', n);
				tzid_len = tzid ? n - (size_t)(tzid - p) : 0;
			}
		}
		if (keep) {
			struct xml_buf *dst = in_tz ? &x->tz : &x->out;
			xml_buf_add(dst, p, n);
			xml_buf_add(dst, "\r\n", 2);
		}
		if (!cont && n > 4 && !strncasecmp(p, "END:", 4)) {
			if (in_tz && depth == 2) {
				/* the whole VTIMEZONE, unless written */
				if (tzid == NULL || !export_tz_seen(x, tzid,
				    tzid_len))
					xml_buf_add(&x->out, x->tz.p,
					    x->tz.len);
				in_tz = 0;
			}
			depth--;
		}
		p = nl ? nl + 1 : end;
	}
	return x->out.oom || x->tz.oom ? -1 : 0;
}

static void
export_calendar(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct export x;
	char *body;
	size_t len = 0;
	int rc;

	rc = dav_conditions(req, 1, res->coll.synctoken);
	if (rc) {
		http_respond(resp, rc, NULL, NULL, 0);
		set_etag(resp, res->coll.synctoken);
		return;
	}
	memset(&x, 0, sizeof x);
	xml_buf_str(&x.out, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "PRODID:-//calgate//calgate//EN\r\n");
	if (res->coll.displayname != NULL) {
		/* a TEXT value (RFC 5545 3.3.11) */
		xml_buf_str(&x.out, "X-WR-CALNAME:");
		for (const char *d = res->coll.displayname; *d; d++)
			if (*d == '\r' || *d == '\n')
				xml_buf_str(&x.out, "\\n");
			else {
				if (*d == ',' || *d == ';' || *d == '\\')
					xml_buf_add(&x.out, "\\", 1);
				xml_buf_add(&x.out, d, 1);
			}
		xml_buf_str(&x.out, "\r\n");
	}
	rc = store_object_list(req->srv->store, res->coll.id, 1, INT64_MIN,
	    INT64_MAX, export_one, &x);
	xml_buf_str(&x.out, "END:VCALENDAR\r\n");
	xml_buf_free(&x.tz);
	for (size_t i = 0; i < x.ntz; i++)
		free(x.tzids[i]);
	free(x.tzids);
	if (rc != 0 || x.out.oom) {
		xml_buf_free(&x.out);
		http_respond_text(resp, 500, "cannot read the calendar");
		return;
	}
	body = xml_buf_take(&x.out, &len);
	http_respond(resp, 200, NULL, body, len);
	resp->content_type = CAL_CTYPE;
	set_etag(resp, res->coll.synctoken);
}

void
dav_get(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	char date[64];
	int rc;

	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	if (res->kind == DAV_COLL && res->coll.is_calendar) {
		export_calendar(req, resp, res);
		return;
	}
	if (res->kind != DAV_OBJECT) {
		http_respond_text(resp, 200, "calgate: a WebDAV collection; "
		    "use a CalDAV client");
		return;
	}
	rc = dav_conditions(req, 1, res->obj.etag);
	if (rc) {
		http_respond(resp, rc, NULL, NULL, 0);
		set_etag(resp, res->obj.etag);
		return;
	}
	/* The response takes the object's bytes without a copy. */
	http_respond(resp, 200, res->obj.content_type, res->obj.data,
	    res->obj.len);
	res->obj.data = NULL;
	/* content_type must outlive the response: keep it static. */
	if (res->obj.content_type && !strcmp(res->obj.content_type,
	    CAL_CTYPE))
		resp->content_type = CAL_CTYPE;
	else {
		resp->content_type = NULL;
		http_add_header(resp, "Content-Type", res->obj.content_type ?
		    res->obj.content_type : "application/octet-stream");
	}
	set_etag(resp, res->obj.etag);
	dav_http_date(date, sizeof date, res->obj.modified);
	http_add_header(resp, "Last-Modified", date);
}

/* ---- PUT -------------------------------------------------------------- */

static int
component_allowed(const char *list, const char *comp)
{
	size_t n = strlen(comp);

	if (list == NULL)
		return 1;
	while (*list) {
		size_t k = strcspn(list, ",");

		if (k == n && !strncasecmp(list, comp, n))
			return 1;
		list += k;
		list += *list == ',';
	}
	return 0;
}

/* 409 with CALDAV:no-uid-conflict naming the resource that has the UID. */
static void
uid_conflict(struct http_request *req, struct http_response *resp,
    const struct dav_res *res, const char *uid)
{
	char *name = NULL, *href = NULL;
	char home[300];

	dav_home_href(req, home, sizeof home);
	if (store_object_uid_name(req->srv->store, res->coll.id, uid, &name)
	    == 0 && asprintf(&href, "%s%s/%s", home, res->coll.path, name)
	    < 0)
		href = NULL;
	dav_error(resp, 409, XML_NS_CALDAV, "no-uid-conflict", href);
	free(name);
	free(href);
}

/*
 * The longest unfolded content line (RFC 5545 3.1) is over max: one
 * property that large is an attack or an accident, not a calendar.
 */
static int
line_too_long(const char *data, size_t len, size_t max)
{
	const char *p = data, *end = data + len, *start = data;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			nl = end;
		/* A following space or tab continues the same line. */
		if (nl + 1 >= end || (nl[1] != ' ' && nl[1] != '\t')) {
			if ((size_t)(nl - start) > max)
				return 1;
			start = nl + 1;
		}
		p = nl + 1;
	}
	return 0;
}

/*
 * Checks data for a calendar collection: fills obj and returns 0, or
 * answers the request and returns -1.
 */
static int
check_calendar_data(struct http_request *req, struct http_response *resp,
    const struct dav_res *dst, const char *data, size_t len,
    struct ical_object *obj, const char *skip_name)
{
	char err[200], *name = NULL;
	int rc;

	if (line_too_long(data, len, DAV_MAX_ICAL_LINE)) {
		log_info("dav put refused user=%s reason=\"property over %u "
		    "bytes\"", req->user->name, DAV_MAX_ICAL_LINE);
		dav_error(resp, 403, XML_NS_CALDAV, "max-resource-size", NULL);
		return -1;
	}
	if (ical_object_check(data, len, obj, err, sizeof err)) {
		log_info("dav put refused user=%s reason=\"%s\"",
		    req->user->name, err);
		dav_error(resp, 403, XML_NS_CALDAV, obj->precondition ?
		    obj->precondition : "valid-calendar-data", NULL);
		return -1;
	}
	if (!component_allowed(dst->coll.components, obj->component)) {
		dav_error(resp, 403, XML_NS_CALDAV,
		    "supported-calendar-component", NULL);
		goto fail;
	}
	rc = store_object_uid_name(req->srv->store, dst->coll.id, obj->uid,
	    &name);
	if (rc < 0) {
		http_respond_text(resp, 500, "internal error");
		goto fail;
	}
	if (rc == 0 && strcmp(name, dst->name) &&
	    (skip_name == NULL || strcmp(name, skip_name))) {
		uid_conflict(req, resp, dst, obj->uid);
		free(name);
		goto fail;
	}
	free(name);
	return 0;
fail:
	ical_object_clear(obj);
	return -1;
}

/* Where a new object may go: 0, or answers and returns -1. */
static int
check_target(struct http_response *resp, const struct dav_res *res)
{
	if (res->exists && res->kind != DAV_OBJECT) {
		http_respond_text(resp, 405, "a collection is there");
		http_add_header(resp, "Allow", "OPTIONS, PROPFIND, PROPPATCH, "
		    "DELETE, MKCOL, COPY, MOVE, REPORT");
		return -1;
	}
	if (res->kind != DAV_OBJECT) {
		/* Directly in the home: only collections live there. */
		http_respond_text(resp, 403, "resources go in a collection");
		return -1;
	}
	if (!res->parent_ok) {
		http_respond_text(resp, 409, "the parent collection does not "
		    "exist");
		return -1;
	}
	return 0;
}

void
dav_put(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct store_object_meta meta, *mp = NULL;
	struct ical_object obj;
	const char *ctype = http_header(req, "Content-Type");
	int64_t etag = 0;
	int rc;

	memset(&obj, 0, sizeof obj);
	if (check_target(resp, res))
		return;
	rc = dav_conditions(req, res->exists, res->exists ? res->obj.etag :
	    0);
	if (rc) {
		http_respond_text(resp, rc, "precondition failed");
		return;
	}
	if (res->coll.is_calendar) {
		if (check_calendar_data(req, resp, res, req->body,
		    req->body_len, &obj, NULL))
			return;
		ical_object_meta(&obj, &meta);
		mp = &meta;
		ctype = CAL_CTYPE;
	} else if (ctype == NULL || strlen(ctype) > 200)
		ctype = "application/octet-stream";
	rc = store_object_put_indexed(req->srv->store, res->coll.id,
	    res->name, req->body, req->body_len, ctype, mp, obj.instances,
	    obj.instances_len, &etag);
	if (rc == STORE_CONFLICT && obj.uid)
		uid_conflict(req, resp, res, obj.uid);
	else if (rc)
		http_respond_text(resp, 500, "internal error");
	else {
		http_respond(resp, res->exists ? 204 : 201, NULL, NULL, 0);
		set_etag(resp, etag);
	}
	ical_object_clear(&obj);
}

/* ---- DELETE ----------------------------------------------------------- */

void
dav_delete(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct store *st = req->srv->store;
	int rc;

	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	if (res->kind != DAV_OBJECT && res->kind != DAV_COLL) {
		http_respond_text(resp, 403, "this cannot be deleted");
		return;
	}
	rc = dav_conditions(req, 1, res->kind == DAV_OBJECT ? res->obj.etag :
	    res->coll.synctoken);
	if (rc) {
		http_respond_text(resp, rc, "precondition failed");
		return;
	}
	if (res->kind == DAV_OBJECT)
		rc = store_object_delete(st, res->coll.id, res->name);
	else
		rc = store_collection_delete(st, req->user_id, res->rel);
	if (rc == STORE_NOTFOUND)
		http_respond_text(resp, 404, "not found");
	else if (rc)
		http_respond_text(resp, 500, "internal error");
	else
		http_respond(resp, 204, NULL, NULL, 0);
}

/* ---- MKCOL, MKCALENDAR ------------------------------------------------ */

/* The D:set/D:prop element named ns:name in a mkcol body, or NULL. */
static xmlNode *
set_prop(xmlNode *root, const char *ns, const char *name)
{
	for (xmlNode *op = xml_first(root); op; op = xml_next(op)) {
		xmlNode *prop = xml_child(op, XML_NS_DAV, "prop");
		xmlNode *p = prop ? xml_child(prop, ns, name) : NULL;

		if (xml_is(op, XML_NS_DAV, "set") && p)
			return p;
	}
	return NULL;
}

/* "VEVENT,VTODO" from a supported-calendar-component-set; -1 if bad. */
static int
parse_components(xmlNode *set, char *out, size_t n)
{
	out[0] = '\0';
	for (xmlNode *c = xml_first(set); c; c = xml_next(c)) {
		xmlChar *name = xmlGetProp(c, (const xmlChar *)"name");
		int ok = name && xml_is(c, XML_NS_CALDAV, "comp") &&
		    (!strcmp((char *)name, "VEVENT") ||
		    !strcmp((char *)name, "VTODO") ||
		    !strcmp((char *)name, "VJOURNAL"));

		if (ok && strlen(out) + strlen((char *)name) + 2 < n) {
			if (out[0])
				strcat(out, ",");
			strcat(out, (char *)name);
		}
		xmlFree(name);
		if (!ok)
			return -1;
	}
	return out[0] ? 0 : -1;
}

/*
 * Reads an (extended) MKCOL or MKCALENDAR body. Returns 0 with *calendar
 * and comps set, or answers and returns -1.
 */
static int
mkcol_body(struct http_response *resp, xmlNode *root, int *calendar,
    char *comps, size_t n)
{
	xmlNode *rt = set_prop(root, XML_NS_DAV, "resourcetype");
	xmlNode *cs = set_prop(root, XML_NS_CALDAV,
	    "supported-calendar-component-set");

	if (rt != NULL) {
		*calendar = 0;
		for (xmlNode *c = xml_first(rt); c; c = xml_next(c)) {
			if (xml_is(c, XML_NS_CALDAV, "calendar"))
				*calendar = 1;
			else if (!xml_is(c, XML_NS_DAV, "collection")) {
				dav_error(resp, 403, XML_NS_DAV,
				    "valid-resourcetype", NULL);
				return -1;
			}
		}
	}
	if (cs != NULL && (!*calendar || parse_components(cs, comps, n))) {
		dav_error(resp, 403, XML_NS_CALDAV,
		    "supported-calendar-component", NULL);
		return -1;
	}
	return 0;
}

static int
mkcol_check(struct http_response *resp, const struct dav_res *res,
    int calendar)
{
	if (res->exists) {
		http_respond_text(resp, 405, "something is there already");
		http_add_header(resp, "Allow", "OPTIONS, GET, HEAD, PUT, "
		    "DELETE, PROPFIND, PROPPATCH, COPY, MOVE, REPORT");
		return -1;
	}
	if (!res->parent_ok) {
		http_respond_text(resp, 409, "the parent collection does not "
		    "exist");
		return -1;
	}
	if (res->has_coll && res->coll.is_calendar) {
		/* RFC 4791 4.2: no collections inside a calendar. */
		if (calendar)
			dav_error(resp, 403, XML_NS_CALDAV,
			    "calendar-collection-location-ok", NULL);
		else
			http_respond_text(resp, 403, "no collections inside "
			    "a calendar collection");
		return -1;
	}
	return 0;
}

/* Creates the collection and sets the body's properties, atomically. */
static void
mkcol_create(struct http_request *req, struct http_response *resp,
    struct dav_res *res, xmlNode *root, int calendar, const char *comps)
{
	struct store *st = req->srv->store;
	struct xml_buf out = { 0 };
	int64_t id;
	int rc;

	if (store_begin(st)) {
		http_respond_text(resp, 500, "internal error");
		return;
	}
	rc = store_collection_create(st, req->user_id, res->rel, calendar,
	    comps[0] ? comps : NULL, &id);
	if (rc == 0) {
		store_collection_clear(&res->coll);
		rc = store_collection_get(st, req->user_id, res->rel,
		    &res->coll);
	}
	if (rc == 0 && root != NULL) {
		res->kind = DAV_COLL;
		res->exists = res->has_coll = 1;
		xml_buf_printf(&out, "<?xml version=\"1.0\" encoding=\"utf-8\""
		    "?>\n<%s" XML_NS_DECLS ">", calendar && !strcmp((char *)
		    root->name, "mkcalendar") ? "C:mkcalendar-response" :
		    "D:mkcol-response");
		rc = dav_props_update(req, res, root, 1, &out);
	}
	if (rc == 0 && store_commit(st) == 0) {
		xml_buf_free(&out);
		http_respond(resp, 201, NULL, NULL, 0);
		http_add_header(resp, "Cache-Control", "no-cache");
		return;
	}
	if (rc != 0)
		store_rollback(st);
	if (rc == 1) {
		xml_buf_printf(&out, "</%s>\n", !strcmp((char *)root->name,
		    "mkcalendar") ? "C:mkcalendar-response" :
		    "D:mkcol-response");
		dav_respond_xml(resp, 403, &out);
		return;
	}
	xml_buf_free(&out);
	if (rc == STORE_CONFLICT)
		http_respond_text(resp, 405, "something is there already");
	else if (rc == STORE_NOTFOUND)
		http_respond_text(resp, 409, "the parent collection does not "
		    "exist");
	else
		http_respond_text(resp, 500, "internal error");
}

void
dav_mkcol(struct http_request *req, struct http_response *resp,
    struct dav_res *res, int calendar)
{
	xmlDoc *doc = NULL;
	xmlNode *root = NULL;
	char err[200], comps[64] = "";

	if (mkcol_check(resp, res, calendar))
		return;
	if (req->body_len > 0) {
		doc = xml_parse(req->body, req->body_len, err, sizeof err);
		root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (calendar ? !xml_is(root, XML_NS_CALDAV, "mkcalendar") :
		    !xml_is(root, XML_NS_DAV, "mkcol")) {
			/* RFC 4918 9.3: a body MKCOL does not understand. */
			if (calendar)
				http_respond_text(resp, 400, "expected "
				    "CALDAV:mkcalendar");
			else
				http_respond_text(resp, 415, "unsupported "
				    "MKCOL body");
			goto out;
		}
		if (mkcol_body(resp, root, &calendar, comps, sizeof comps))
			goto out;
	}
	mkcol_create(req, resp, res, root, calendar, comps);
out:
	xmlFreeDoc(doc);
}

/* ---- COPY, MOVE ------------------------------------------------------- */

static int
remove_existing(struct http_request *req, const struct dav_res *d)
{
	struct store *st = req->srv->store;

	if (d->kind == DAV_OBJECT)
		return store_object_delete(st, d->coll.id, d->name);
	return store_collection_delete(st, req->user_id, d->rel);
}

/* Copies or moves one object to d (which does not exist now). */
static int
copy_object(struct http_request *req, struct http_response *resp,
    const struct dav_res *src, const struct dav_res *d, int move)
{
	struct store *st = req->srv->store;
	struct store_object o;
	struct store_object_meta meta, *mp = NULL;
	struct ical_object obj;
	const char *ctype;
	int rc;

	memset(&obj, 0, sizeof obj);
	if (d->kind != DAV_OBJECT || !d->has_coll) {
		http_respond_text(resp, 409, "resources go in a collection");
		return 1;
	}
	rc = store_object_get(st, src->coll.id, src->name, 1, &o);
	if (rc)
		return rc;
	ctype = o.content_type;
	if (d->coll.is_calendar) {
		/* A move within one calendar keeps its own UID. */
		if (check_calendar_data(req, resp, d, o.data, o.len, &obj,
		    move && d->coll.id == src->coll.id ? src->name : NULL)) {
			store_object_clear(&o);
			return 1;
		}
		ical_object_meta(&obj, &meta);
		mp = &meta;
		ctype = CAL_CTYPE;
	}
	rc = store_prop_copy(st, src->coll.id, src->name, d->coll.id,
	    d->name);
	if (rc == 0 && move)
		rc = store_object_delete(st, src->coll.id, src->name);
	if (rc == 0)
		rc = store_object_put_indexed(st, d->coll.id, d->name,
		    o.data, o.len, ctype, mp, obj.instances,
		    obj.instances_len, NULL);
	if (rc == STORE_CONFLICT) {
		uid_conflict(req, resp, d, obj.uid);
		rc = 1;
	}
	ical_object_clear(&obj);
	store_object_clear(&o);
	return rc;
}

static int
copy_coll(struct http_request *req, struct http_response *resp,
    const struct dav_res *src, const struct dav_res *d, int move, int deep)
{
	struct store *st = req->srv->store;
	size_t n = strlen(src->rel);

	if (!strncmp(d->rel, src->rel, n) && d->rel[n] == '/') {
		http_respond_text(resp, 403, "cannot copy a collection into "
		    "itself");
		return 1;
	}
	if (d->has_coll && d->kind == DAV_OBJECT && d->coll.is_calendar) {
		dav_error(resp, 403, XML_NS_CALDAV,
		    "calendar-collection-location-ok", NULL);
		return 1;
	}
	if (move)
		return store_collection_move(st, req->user_id, src->rel,
		    d->rel);
	return store_collection_copy(st, req->user_id, src->rel, d->rel,
	    deep);
}

static int
overwrite_ok(const struct http_request *req)
{
	const char *o = http_header(req, "Overwrite");

	return o == NULL || (o[0] != 'F' && o[0] != 'f');
}

static int
copymove_check(struct http_request *req, struct http_response *resp,
    const struct dav_res *res, int move, int *deep)
{
	int depth = dav_depth(req, -1);

	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return -1;
	}
	if (res->kind != DAV_OBJECT && res->kind != DAV_COLL) {
		http_respond_text(resp, 403, "this cannot be copied or "
		    "moved");
		return -1;
	}
	if (depth == -2 || depth == 1 || (move && depth == 0)) {
		http_respond_text(resp, 400, "bad Depth header");
		return -1;
	}
	*deep = depth != 0;
	if (dav_conditions(req, 1, res->kind == DAV_OBJECT ? res->obj.etag :
	    res->coll.synctoken)) {
		http_respond_text(resp, 412, "precondition failed");
		return -1;
	}
	return 0;
}

void
dav_copymove(struct http_request *req, struct http_response *resp,
    struct dav_res *res, int move)
{
	struct store *st = req->srv->store;
	const char *dest = http_header(req, "Destination");
	struct dav_res d;
	int deep, rc, existed;

	memset(&d, 0, sizeof d);
	if (copymove_check(req, resp, res, move, &deep))
		return;
	if (dest == NULL) {
		http_respond_text(resp, 400, "Destination header missing");
		return;
	}
	rc = dav_resolve(req, dest, 0, &d);
	if (rc || d.kind < DAV_COLL) {
		/* Another user's space, or outside the tree. */
		http_respond_text(resp, rc == 400 || rc == 414 ? rc : 403,
		    "bad Destination");
		goto out;
	}
	if (!strcmp(d.rel, res->rel)) {
		http_respond_text(resp, 403, "source and destination are "
		    "the same");
		goto out;
	}
	if (!d.parent_ok || (res->kind == DAV_OBJECT &&
	    d.kind == DAV_COLL && !d.exists)) {
		http_respond_text(resp, 409, "the destination's parent "
		    "collection does not exist");
		goto out;
	}
	existed = d.exists;
	if (existed && !overwrite_ok(req)) {
		http_respond_text(resp, 412, "destination exists and "
		    "Overwrite is F");
		goto out;
	}
	if (store_begin(st)) {
		http_respond_text(resp, 500, "internal error");
		goto out;
	}
	rc = existed ? remove_existing(req, &d) : 0;
	if (rc == 0 && existed) {
		/* What is there now: the parent, and no resource. */
		char *dst = strdup(dest);

		dav_res_clear(&d);
		rc = dst ? dav_resolve(req, dst, 0, &d) : -1;
		free(dst);
	}
	if (rc == 0)
		rc = res->kind == DAV_OBJECT ?
		    copy_object(req, resp, res, &d, move) :
		    copy_coll(req, resp, res, &d, move, deep);
	if (rc == 0 && store_commit(st) == 0) {
		http_respond(resp, existed ? 204 : 201, NULL, NULL, 0);
		goto out;
	}
	if (rc != 0)
		store_rollback(st);
	if (rc == 1)
		goto out;		/* answered already */
	if (rc == STORE_CONFLICT)
		http_respond_text(resp, 409, "conflict at the destination");
	else if (rc == STORE_NOTFOUND)
		http_respond_text(resp, 409, "the destination's parent "
		    "collection does not exist");
	else
		http_respond_text(resp, 500, "internal error");
out:
	dav_res_clear(&d);
}
