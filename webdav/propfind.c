/*
 * webdav/propfind.c: PROPFIND and PROPPATCH (RFC 4918 9.1, 9.2), the live
 * properties of every kind of resource (RFC 4791, 5397, 6578, and the
 * CalendarServer and Apple extensions clients ask for) and dead
 * properties kept in the store. Reports reuse the property writer.
 */
#include "webdav/dav.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ical.h"
#include "server/log.h"

#define K(k)		(1u << (k))
#define K_ANY		0xffu
#define K_COLLS		(K(DAV_COLL))
#define K_OWNED		(K(DAV_PRINCIPAL) | K(DAV_HOME) | K(DAV_COLL) | \
			 K(DAV_OBJECT))

struct prop_item {
	const char *ns, *name;		/* borrowed from the request doc */
	xmlNode *el;
	const struct live *live;	/* NULL: not a live property */
};

struct dead_prop {
	char *ns, *name, *value;	/* owned */
};

struct dav_propreq {
	enum { PR_PROP, PR_ALLPROP, PR_PROPNAME } mode;
	struct prop_item *items;
	size_t n;
	struct xml_buf miss, val;	/* scratch, reused per response */
	int64_t dead_coll;		/* collection whose objects... */
	int dead_any;			/* ...have dead properties at all */
	int dead_known;
	struct dead_prop *dead;
	size_t ndead, capdead;
	int minimal;			/* Prefer: return=minimal */
	int dead_needed;		/* some item could be dead */
	unsigned char *brief;	   /* per item: BRIEF_* */
	struct xml_buf bhead, btail;    /* around the href; after props */
};

#define BRIEF_MISS      0       /* in the 404 propstat (btail) */
#define BRIEF_ETAG      1
#define BRIEF_CTYPE     2
#define BRIEF_RTYPE     3

typedef int (*live_fn)(struct http_request *, const struct dav_res *,
    struct xml_buf *);

struct live {
	const char *ns, *name;
	unsigned kinds;
	int allprop;
	live_fn fn;
	const char *column;		/* PROPPATCH-able collection column */
};

/* ---- live property values --------------------------------------------- */

static int
p_resourcetype(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	if (r->kind == DAV_OBJECT)
		return 0;
	xml_buf_str(b, "<D:collection/>");
	if (r->kind == DAV_PRINCIPAL)
		xml_buf_str(b, "<D:principal/>");
	if (r->kind == DAV_COLL && r->coll.is_calendar)
		xml_buf_str(b, "<C:calendar/>");
	return 0;
}

static int
text_or_404(struct xml_buf *b, const char *s)
{
	if (s == NULL)
		return 1;
	xml_buf_esc(b, s, strlen(s));
	return 0;
}

static int
p_displayname(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	if (r->kind == DAV_PRINCIPAL || r->kind == DAV_HOME)
		return text_or_404(b, req->user->name);
	if (r->kind == DAV_COLL)
		return text_or_404(b, r->coll.displayname);
	return 1;
}

static int
p_getetag(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	char e[24], *p = e + sizeof e;
	uint64_t v;

	(void)req;
	if (r->kind == DAV_OBJECT)
		v = (uint64_t)r->obj.etag;
	else if (r->kind == DAV_COLL)
		v = (uint64_t)r->coll.synctoken;
	else
		return 1;
	/* dav_etag's "%lld" in quotes, escaped, without printf: this runs
	 * once per object of a listing (ETags are never negative) */
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	xml_buf_add(b, "&quot;", 6);
	xml_buf_add(b, p, (size_t)(e + sizeof e - p));
	xml_buf_add(b, "&quot;", 6);
	return 0;
}

static int
p_getcontenttype(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	if (r->kind != DAV_OBJECT)
		return 1;
	return text_or_404(b, r->obj.content_type);
}

static int
p_getcontentlength(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	if (r->kind != DAV_OBJECT)
		return 1;
	xml_buf_printf(b, "%zu", r->obj.len);
	return 0;
}

static int
p_getlastmodified(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	char d[64];

	(void)req;
	if (r->kind == DAV_OBJECT)
		dav_http_date(d, sizeof d, r->obj.modified);
	else if (r->kind == DAV_COLL)
		dav_http_date(d, sizeof d, r->coll.modified);
	else
		return 1;
	xml_buf_str(b, d);
	return 0;
}

static int
p_creationdate(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	time_t t;
	struct tm tm;
	char d[64];

	(void)req;
	if (r->kind != DAV_COLL)
		return 1;
	t = (time_t)r->coll.created;
	gmtime_r(&t, &tm);
	strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%SZ", &tm);
	xml_buf_str(b, d);
	return 0;
}

static void
href_el(struct xml_buf *b, const char *href)
{
	xml_buf_str(b, "<D:href>");
	xml_buf_href(b, href);
	xml_buf_str(b, "</D:href>");
}

static int
p_principal(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	char h[300];

	(void)r;
	dav_principal_href(req, h, sizeof h);
	href_el(b, h);
	return 0;
}

static int
p_principal_url(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	return r->kind == DAV_PRINCIPAL ? p_principal(req, r, b) : 1;
}

static int
p_principal_coll_set(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	(void)r;
	href_el(b, "/dav/principals/");
	return 0;
}

static int
p_privileges(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	static const char *const all[] = { "read", "write",
	    "write-properties", "write-content", "bind", "unbind",
	    "read-current-user-privilege-set", "all" };

	(void)req;
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		/* Above the home nothing can be changed. */
		if (r->kind < DAV_PRINCIPAL && i > 0 && i < 7)
			continue;
		if (r->kind < DAV_PRINCIPAL && i == 7)
			continue;
		xml_buf_printf(b, "<D:privilege><D:%s/></D:privilege>",
		    all[i]);
	}
	return 0;
}

static int
p_reports(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	static const char *const cal[] = { "C:calendar-query",
	    "C:calendar-multiget", "C:free-busy-query" };

	(void)req;
	xml_buf_str(b, "<D:supported-report><D:report><D:sync-collection/>"
	    "</D:report></D:supported-report>");
	if (!r->coll.is_calendar)
		return 0;
	for (size_t i = 0; i < sizeof cal / sizeof cal[0]; i++)
		xml_buf_printf(b, "<D:supported-report><D:report><%s/>"
		    "</D:report></D:supported-report>", cal[i]);
	return 0;
}

static int
p_sync_token(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	struct dav_home_sync s;

	if (r->kind == DAV_HOME) {
		if (dav_home_sync_state(req, INT64_MAX, &s))
			return -1;
		dav_home_sync_token(&s, b);
		return 0;
	}
	xml_buf_printf(b, DAV_SYNC_PREFIX "%" PRId64 "/%" PRId64, r->coll.id,
	    r->coll.synctoken);
	return 0;
}

static int
p_ctag(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	xml_buf_printf(b, "%" PRId64, r->coll.synctoken);
	return 0;
}

static int
p_home_set(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	char h[300];

	(void)r;
	dav_home_href(req, h, sizeof h);
	href_el(b, h);
	return 0;
}

static int
p_address_set(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	const struct user_conf *u = req->user;

	for (size_t i = 0; i < u->naddresses; i++) {
		xml_buf_str(b, "<D:href>mailto:");
		xml_buf_esc(b, u->addresses[i], strlen(u->addresses[i]));
		xml_buf_str(b, "</D:href>");
	}
	return p_principal(req, r, b);
}

static int
p_user_type(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	(void)r;
	xml_buf_str(b, "INDIVIDUAL");
	return 0;
}

static int
p_description(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	return text_or_404(b, r->coll.description);
}

static int
p_timezone(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	return text_or_404(b, r->coll.timezone);
}

static int
p_color(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	return text_or_404(b, r->coll.color);
}

static int
p_order(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	return text_or_404(b, r->coll.order);
}

static int
p_components(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	const char *s = r->coll.components ? r->coll.components :
	    "VEVENT,VTODO,VJOURNAL";

	(void)req;
	if (!r->coll.is_calendar)
		return 1;
	while (*s) {
		size_t n = strcspn(s, ",");

		xml_buf_str(b, "<C:comp name=\"");
		xml_buf_esc(b, s, n);
		xml_buf_str(b, "\"/>");
		s += n;
		s += *s == ',';
	}
	return 0;
}

static int
p_calendar_data_types(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	if (!r->coll.is_calendar)
		return 1;
	xml_buf_str(b, "<C:calendar-data content-type=\"text/calendar\" "
	    "version=\"2.0\"/>");
	return 0;
}

static int
p_max_size(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	(void)req;
	if (!r->coll.is_calendar)
		return 1;
	xml_buf_printf(b, "%u", ICAL_MAX_OBJECT);
	return 0;
}

static int
p_default_calendar(struct http_request *req, const struct dav_res *r,
    struct xml_buf *b)
{
	char h[600];

	(void)r;
	snprintf(h, sizeof h, "/dav/calendars/%s/%s/", req->user->name,
	    req->user->calendar);
	href_el(b, h);
	return 0;
}

static const struct live lives[] = {
	{ XML_NS_DAV, "resourcetype", K_ANY, 1, p_resourcetype, NULL },
	{ XML_NS_DAV, "displayname", K(DAV_PRINCIPAL) | K(DAV_HOME) |
	  K_COLLS, 1, p_displayname, "displayname" },
	{ XML_NS_DAV, "getetag", K_COLLS | K(DAV_OBJECT), 1, p_getetag,
	  NULL },
	{ XML_NS_DAV, "getcontenttype", K(DAV_OBJECT), 1, p_getcontenttype,
	  NULL },
	{ XML_NS_DAV, "getcontentlength", K(DAV_OBJECT), 1,
	  p_getcontentlength, NULL },
	{ XML_NS_DAV, "getlastmodified", K_COLLS | K(DAV_OBJECT), 1,
	  p_getlastmodified, NULL },
	{ XML_NS_DAV, "creationdate", K_COLLS, 1, p_creationdate, NULL },
	{ XML_NS_DAV, "current-user-principal", K_ANY, 0, p_principal, NULL },
	{ XML_NS_DAV, "principal-URL", K(DAV_PRINCIPAL), 0, p_principal_url,
	  NULL },
	{ XML_NS_DAV, "principal-collection-set", K_ANY, 0,
	  p_principal_coll_set, NULL },
	{ XML_NS_DAV, "owner", K_OWNED, 0, p_principal, NULL },
	{ XML_NS_DAV, "current-user-privilege-set", K_ANY, 0, p_privileges,
	  NULL },
	{ XML_NS_DAV, "supported-report-set", K(DAV_HOME) | K_COLLS, 0,
	  p_reports, NULL },
	{ XML_NS_DAV, "sync-token", K(DAV_HOME) | K_COLLS, 0, p_sync_token,
	  NULL },
	{ XML_NS_CS, "getctag", K_COLLS, 0, p_ctag, NULL },
	{ XML_NS_CALDAV, "calendar-home-set", K(DAV_PRINCIPAL), 0,
	  p_home_set, NULL },
	{ XML_NS_CALDAV, "calendar-user-address-set", K(DAV_PRINCIPAL), 0,
	  p_address_set, NULL },
	{ XML_NS_CALDAV, "calendar-user-type", K(DAV_PRINCIPAL), 0,
	  p_user_type, NULL },
	{ XML_NS_CALDAV, "schedule-default-calendar-URL", K(DAV_PRINCIPAL),
	  0, p_default_calendar, NULL },
	{ XML_NS_CALDAV, "calendar-description", K_COLLS, 0, p_description,
	  "description" },
	{ XML_NS_CALDAV, "calendar-timezone", K_COLLS, 0, p_timezone,
	  "timezone" },
	{ XML_NS_CALDAV, "supported-calendar-component-set", K_COLLS, 0,
	  p_components, NULL },
	{ XML_NS_CALDAV, "supported-calendar-data", K_COLLS, 0,
	  p_calendar_data_types, NULL },
	{ XML_NS_CALDAV, "max-resource-size", K_COLLS, 0, p_max_size, NULL },
	{ XML_NS_APPLE, "calendar-color", K_COLLS, 0, p_color, "color" },
	{ XML_NS_APPLE, "calendar-order", K_COLLS, 0, p_order, "order" },
};
#define NLIVES (sizeof lives / sizeof lives[0])

static const struct live *
live_find(const char *ns, const char *name)
{
	for (size_t i = 0; i < NLIVES; i++)
		if (!strcmp(lives[i].name, name) && !strcmp(lives[i].ns, ns))
			return &lives[i];
	return NULL;
}

/* ---- property requests ------------------------------------------------ */

struct dav_propreq *
dav_propreq_parse(xmlNode *el)
{
	struct dav_propreq *pr = calloc(1, sizeof *pr);
	xmlNode *prop = NULL, *c;
	size_t n = 0;

	if (pr == NULL)
		return NULL;
	pr->mode = PR_ALLPROP;
	if (el == NULL)
		return pr;
	if (xml_is(el, XML_NS_DAV, "propfind")) {
		if (xml_child(el, XML_NS_DAV, "propname"))
			pr->mode = PR_PROPNAME;
		else if (xml_child(el, XML_NS_DAV, "allprop")) {
			/* RFC 4918 14.8: include adds to allprop's set */
			prop = xml_child(el, XML_NS_DAV, "include");
		} else {
			prop = xml_child(el, XML_NS_DAV, "prop");
			if (prop == NULL)
				goto bad;
			pr->mode = PR_PROP;
		}
	} else if (xml_is(el, XML_NS_DAV, "prop")) {
		prop = el;
		pr->mode = PR_PROP;
	} else if (xml_is(el, XML_NS_DAV, "propname"))
		pr->mode = PR_PROPNAME;
	else if (!xml_is(el, XML_NS_DAV, "allprop"))
		goto bad;
	if (prop == NULL)
		return pr;
	for (c = xml_first(prop); c; c = xml_next(c))
		n++;
	pr->items = calloc(n ? n : 1, sizeof *pr->items);
	if (pr->items == NULL)
		goto bad;
	/* looked up once here, not once per property per member */
	for (c = xml_first(prop); c; c = xml_next(c)) {
		struct prop_item *it = &pr->items[pr->n++];

		it->ns = xml_ns(c);
		it->name = (const char *)c->name;
		it->el = c;
		it->live = live_find(it->ns, it->name);
		if (it->live == NULL && (strcmp(it->ns, XML_NS_CALDAV) ||
		    strcmp(it->name, "calendar-data")))
			pr->dead_needed = 1;
	}
	return pr;
bad:
	dav_propreq_free(pr);
	return NULL;
}

static void
dead_clear(struct dav_propreq *pr)
{
	for (size_t i = 0; i < pr->ndead; i++) {
		free(pr->dead[i].ns);
		free(pr->dead[i].name);
		free(pr->dead[i].value);
	}
	pr->ndead = 0;
}

void
dav_propreq_free(struct dav_propreq *pr)
{
	if (pr == NULL)
		return;
	dead_clear(pr);
	free(pr->dead);
	free(pr->items);
	free(pr->brief);
	xml_buf_free(&pr->bhead);
	xml_buf_free(&pr->btail);
	xml_buf_free(&pr->miss);
	xml_buf_free(&pr->val);
	free(pr);
}

static int
dead_add(void *arg, const char *ns, const char *name, const char *value)
{
	struct dav_propreq *pr = arg;
	struct dead_prop *d;

	if (pr->ndead == pr->capdead) {
		size_t cap = pr->capdead ? pr->capdead * 2 : 8;

		d = realloc(pr->dead, cap * sizeof *d);
		if (d == NULL)
			return -1;
		pr->dead = d;
		pr->capdead = cap;
	}
	d = &pr->dead[pr->ndead];
	d->ns = strdup(ns);
	d->name = strdup(name);
	d->value = strdup(value);
	pr->ndead++;
	return d->ns && d->name && d->value ? 0 : -1;
}

/* Loads res's dead properties into pr->dead; cheap when there are none. */
static int
dead_load(struct http_request *req, const struct dav_res *r,
    struct dav_propreq *pr)
{
	struct store *st = req->srv->store;

	dead_clear(pr);
	if (!r->exists || !r->has_coll)
		return 0;
	if (r->kind == DAV_COLL)
		return store_prop_list(st, r->coll.id, "", dead_add, pr);
	/* A listing of 10,000 objects must not cost 10,000 queries when
	 * nobody ever set a property on any of them. */
	if (!pr->dead_known || pr->dead_coll != r->coll.id) {
		if (store_prop_any(st, r->coll.id, &pr->dead_any))
			return -1;
		pr->dead_coll = r->coll.id;
		pr->dead_known = 1;
	}
	if (!pr->dead_any)
		return 0;
	return store_prop_list(st, r->coll.id, r->name, dead_add, pr);
}

static const struct dead_prop *
dead_find(const struct dav_propreq *pr, const char *ns, const char *name)
{
	for (size_t i = 0; i < pr->ndead; i++)
		if (!strcmp(pr->dead[i].name, name) &&
		    !strcmp(pr->dead[i].ns, ns))
			return &pr->dead[i];
	return NULL;
}

static void
empty_prop(struct xml_buf *b, const char *ns, const char *name)
{
	xml_open_prop(b, ns, name);
	xml_buf_str(b, "/>");
}

/* Writes one live property (value and tags) to ok, or its name to miss. */
static int
write_live(struct http_request *req, const struct dav_res *r,
    struct dav_propreq *pr, const struct live *l, struct xml_buf *ok)
{
	int rc;

	if (!(l->kinds & K(r->kind))) {
		empty_prop(&pr->miss, l->ns, l->name);
		return 0;
	}
	pr->val.len = 0;
	if (pr->val.p)
		pr->val.p[0] = '\0';
	rc = l->fn(req, r, &pr->val);
	if (rc != 0) {
		/* allprop lists only what the resource has */
		if (pr->mode == PR_PROP)
			empty_prop(&pr->miss, l->ns, l->name);
		return 0;
	}
	xml_open_prop(ok, l->ns, l->name);
	if (pr->val.len == 0) {
		xml_buf_str(ok, "/>");
		return 0;
	}
	xml_buf_str(ok, ">");
	xml_buf_add(ok, pr->val.p, pr->val.len);
	xml_close_prop(ok, l->ns, l->name);
	return 0;
}

static int
write_item(struct http_request *req, const struct dav_res *r,
    struct dav_propreq *pr, const struct prop_item *it, dav_prop_hook hook,
    void *arg, struct xml_buf *ok)
{
	const struct live *l = it->live;
	const struct dead_prop *d;
	int rc;

	if (l != NULL)
		return write_live(req, r, pr, l, ok);
	if (hook != NULL) {
		pr->val.len = 0;
		rc = hook(arg, r, it->el, &pr->val);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			xml_open_prop(ok, it->ns, it->name);
			xml_buf_str(ok, ">");
			xml_buf_add(ok, pr->val.p ? pr->val.p : "",
			    pr->val.len);
			xml_close_prop(ok, it->ns, it->name);
			return 0;
		}
	}
	d = dead_find(pr, it->ns, it->name);
	if (d != NULL)
		xml_buf_str(ok, d->value);
	else
		empty_prop(&pr->miss, it->ns, it->name);
	return 0;
}

/* Was this included property already written by allprop? */
static int
in_allprop(const struct dav_propreq *pr, const struct prop_item *it)
{
	const struct live *l = it->live;

	if (l != NULL)
		return l->allprop;
	return dead_find(pr, it->ns, it->name) != NULL;
}

static int
needs_dead(const struct dav_propreq *pr)
{
	return pr->mode != PR_PROP || pr->dead_needed;
}

int
dav_prop_response(struct http_request *req, const struct dav_res *r,
    struct dav_propreq *pr, dav_prop_hook hook, void *arg,
    struct xml_buf *out)
{
	size_t mark;

	pr->miss.len = 0;
	if (pr->miss.p)
		pr->miss.p[0] = '\0';
	if (needs_dead(pr) && dead_load(req, r, pr))
		return -1;
	xml_buf_str(out, "<D:response><D:href>");
	xml_buf_href(out, r->href);
	xml_buf_str(out, "</D:href><D:propstat><D:prop>");
	mark = out->len;
	if (pr->mode == PR_PROP) {
		for (size_t i = 0; i < pr->n; i++)
			if (write_item(req, r, pr, &pr->items[i], hook, arg,
			    out))
				return -1;
	} else {
		for (size_t i = 0; i < NLIVES; i++) {
			if (!(lives[i].kinds & K(r->kind)))
				continue;
			if (pr->mode == PR_PROPNAME)
				empty_prop(out, lives[i].ns, lives[i].name);
			else if (lives[i].allprop)
				write_live(req, r, pr, &lives[i], out);
		}
		for (size_t i = 0; i < pr->ndead; i++) {
			if (pr->mode == PR_PROPNAME)
				empty_prop(out, pr->dead[i].ns,
				    pr->dead[i].name);
			else
				xml_buf_str(out, pr->dead[i].value);
		}
		for (size_t i = 0; pr->mode == PR_ALLPROP && i < pr->n; i++)
			if (!in_allprop(pr, &pr->items[i]) && write_item(req,
			    r, pr, &pr->items[i], hook, arg, out))
				return -1;
	}
	if (out->len == mark && pr->miss.len > 0 && !pr->minimal) {
		/* Nothing found: only the 404 propstat. */
		out->len = mark - strlen("<D:propstat><D:prop>");
		out->p[out->len] = '\0';
	} else
		/* with return=minimal and nothing found, an empty prop */
		xml_buf_str(out, "</D:prop><D:status>HTTP/1.1 200 OK"
		    "</D:status></D:propstat>");
	if (pr->miss.len > 0 && !pr->minimal) {
		xml_buf_str(out, "<D:propstat><D:prop>");
		xml_buf_add(out, pr->miss.p, pr->miss.len);
		xml_buf_str(out, "</D:prop><D:status>HTTP/1.1 404 Not Found"
		    "</D:status></D:propstat>");
	}
	xml_buf_str(out, "</D:response>");
	return 0;
}

int
dav_prop_object(struct http_request *req, const struct dav_res *coll,
    const struct store_object *o, struct dav_propreq *pr,
    dav_prop_hook hook, void *arg, struct xml_buf *href,
    struct xml_buf *out)
{
	struct dav_res r;

	memset(&r, 0, sizeof r);
	r.kind = DAV_OBJECT;
	r.exists = r.parent_ok = r.has_coll = 1;
	r.coll = coll->coll;		/* borrowed */
	r.obj = *o;			/* borrowed */
	r.name = o->name;
	/* one scratch buffer for every object's href: no malloc per row */
	href->len = 0;
	xml_buf_str(href, coll->href);
	xml_buf_str(href, o->name);
	if (href->oom)
		return -1;
	r.href = href->p;
	return dav_prop_response(req, &r, pr, hook, arg, out);
}

void
dav_propreq_prefer(struct dav_propreq *pr, const struct http_request *req,
    struct http_response *resp)
{
	const char *p = http_header(req, "Prefer");
	const char *b = http_header(req, "Brief");

	pr->minimal = 0;
	/* a token list: "return=minimal", maybe among others */
	for (const char *s = p; s != NULL && *s; ) {
		s += strspn(s, " \t,");
		if (!strncasecmp(s, "return", 6)) {
			const char *v = s + 6;
			v += strspn(v, " \t");
			if (*v == '=') {
				v++;
				v += strspn(v, " \t\"");
				if (!strncasecmp(v, "minimal", 7) &&
				    strchr("\" \t,;", v[7]) != NULL)
					pr->minimal = 1;
			}
		}
		s = strchr(s, ',');
	}
	if (b != NULL && (b[0] == 't' || b[0] == 'T') && b[1] == '\0')
		pr->minimal = 1;
	if (pr->minimal && p != NULL)
		http_add_header(resp, "Preference-Applied", "return=minimal");
	http_add_header(resp, "Vary", "Brief, Prefer");
}

/* ---- brief listings --------------------------------------------------- */

int
dav_prop_brief_begin(struct http_request *req, const struct dav_res *coll,
    struct dav_propreq *pr)
{
	struct xml_buf miss = { 0 };
	int found = 0;

	if (pr->mode != PR_PROP || pr->n == 0 || !coll->has_coll)
		return 0;
	if (needs_dead(pr)) {
		if (store_prop_any(req->srv->store, coll->coll.id,
		    &pr->dead_any))
			return -1;
		pr->dead_coll = coll->coll.id;
		pr->dead_known = 1;
		if (pr->dead_any)
			return 0;
	}
	free(pr->brief);
	pr->brief = calloc(pr->n, 1);
	if (pr->brief == NULL)
		return -1;
	for (size_t i = 0; i < pr->n; i++) {
		const struct prop_item *it = &pr->items[i];
		const struct live *l = it->live;

		if (l == NULL && !strcmp(it->ns, XML_NS_CALDAV) &&
		    !strcmp(it->name, "calendar-data"))
			goto no;
		if (l != NULL && (l->kinds & K(DAV_OBJECT))) {
			if (l->fn == p_getetag)
				pr->brief[i] = BRIEF_ETAG;
			else if (l->fn == p_getcontenttype)
				pr->brief[i] = BRIEF_CTYPE;
			else if (l->fn == p_resourcetype)
				pr->brief[i] = BRIEF_RTYPE;
			else
				goto no;
			found = 1;
			continue;
		}
		/* what write_item writes for a property objects lack */
		empty_prop(&miss, it->ns, it->name);
	}
	if (!found)
		goto no;
	pr->bhead.len = 0;
	xml_buf_str(&pr->bhead, "<D:response><D:href>");
	xml_buf_href(&pr->bhead, coll->href);
	pr->btail.len = 0;
	xml_buf_str(&pr->btail, "</D:prop><D:status>HTTP/1.1 200 OK"
	    "</D:status></D:propstat>");
	if (miss.len > 0 && !pr->minimal) {
		xml_buf_str(&pr->btail, "<D:propstat><D:prop>");
		xml_buf_add(&pr->btail, miss.p, miss.len);
		xml_buf_str(&pr->btail, "</D:prop><D:status>HTTP/1.1 404 "
		    "Not Found</D:status></D:propstat>");
	}
	xml_buf_str(&pr->btail, "</D:response>");
	xml_buf_free(&miss);
	return pr->bhead.oom || pr->btail.oom ? -1 : 1;
no:
	xml_buf_free(&miss);
	return 0;
}

int
dav_prop_brief(struct dav_propreq *pr, const char *name, int64_t etag,
    const char *content_type, struct xml_buf *out)
{
	size_t nlen = strlen(name), clen = strlen(content_type), need;
	uint64_t v = (uint64_t)etag;
	char digits[24], *d = digits + sizeof digits, *p;

	/* Room for everything at once, then plain stores: this runs once
	 * per object of a 10,000-object listing. */
	need = pr->bhead.len + 3 * nlen + pr->btail.len + 64 +
	    pr->n * (6 * clen + 64);
	if (xml_buf_reserve(out, need))
		return out->oom ? -1 : 0;
	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v);
#define PUT(s)	(memcpy(p, s, sizeof s - 1), p += sizeof s - 1)
	p = out->p + out->len;
	memcpy(p, pr->bhead.p, pr->bhead.len);
	p = xml_put_href(p + pr->bhead.len, name);
	PUT("</D:href><D:propstat><D:prop>");
	for (size_t i = 0; i < pr->n; i++) {
		switch (pr->brief[i]) {
		case BRIEF_ETAG:
			/* p_getetag's text */
			PUT("<D:getetag>&quot;");
			memcpy(p, d, (size_t)(digits + sizeof digits - d));
			p += digits + sizeof digits - d;
			PUT("&quot;</D:getetag>");
			break;
		case BRIEF_CTYPE:
			if (clen == 0) {
				PUT("<D:getcontenttype/>");
				break;
			}
			PUT("<D:getcontenttype>");
			p = xml_put_esc(p, content_type, clen);
			PUT("</D:getcontenttype>");
			break;
		case BRIEF_RTYPE:
			PUT("<D:resourcetype/>");
			break;
		}
	}
#undef PUT
	memcpy(p, pr->btail.p, pr->btail.len);
	p += pr->btail.len;
	out->len = (size_t)(p - out->p);
	out->p[out->len] = '\0';
	return out->oom ? -1 : 0;
}

/* ---- PROPFIND --------------------------------------------------------- */

struct walk {
	struct http_request *req;
	const struct dav_res *parent;
	struct dav_propreq *pr;
	struct xml_buf *out;
	struct xml_buf href;		/* scratch for object hrefs */
};

static char *
child_href(const char *parent_href, const char *name, int coll)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s%s", parent_href, name, coll ? "/" : "") < 0)
		return NULL;
	return s;
}

int
dav_prop_collection(struct http_request *req, const char *parent_href,
    const struct store_collection *c, struct dav_propreq *pr,
    struct xml_buf *out)
{
	struct dav_res r;
	const char *name = strrchr(c->path, '/');
	int rc;

	memset(&r, 0, sizeof r);
	r.kind = DAV_COLL;
	r.exists = r.parent_ok = r.has_coll = 1;
	r.coll = *c;			/* borrowed: not cleared below */
	r.href = child_href(parent_href, name ? name + 1 : c->path, 1);
	if (r.href == NULL)
		return -1;
	rc = dav_prop_response(req, &r, pr, NULL, NULL, out);
	free(r.href);
	return rc;
}

static int
walk_coll(void *arg, const struct store_collection *c)
{
	struct walk *w = arg;

	return dav_prop_collection(w->req, w->parent->href, c, w->pr, w->out);
}

static int
walk_obj(void *arg, const struct store_object *o)
{
	struct walk *w = arg;

	return dav_prop_object(w->req, w->parent, o, w->pr, NULL, NULL,
	    &w->href, w->out);
}

static int
walk_brief(void *arg, const char *name, int64_t etag, const char *ctype)
{
	struct walk *w = arg;

	return dav_prop_brief(w->pr, name, etag, ctype, w->out);
}

/* The fixed children above the home: one each. */
static int
walk_fixed(struct walk *w, enum dav_kind kind, const char *href)
{
	struct dav_res r;

	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.exists = r.parent_ok = 1;
	r.href = (char *)href;
	return dav_prop_response(w->req, &r, w->pr, NULL, NULL, w->out);
}

static int
walk_children(struct walk *w)
{
	struct http_request *req = w->req;
	struct store *st = req->srv->store;
	const struct dav_res *p = w->parent;
	char h[300];

	switch (p->kind) {
	case DAV_ROOT:
		if (walk_fixed(w, DAV_PRINCIPALS, "/dav/principals/"))
			return -1;
		return walk_fixed(w, DAV_CALENDARS, "/dav/calendars/");
	case DAV_PRINCIPALS:
		dav_principal_href(req, h, sizeof h);
		return walk_fixed(w, DAV_PRINCIPAL, h);
	case DAV_CALENDARS:
		dav_home_href(req, h, sizeof h);
		return walk_fixed(w, DAV_HOME, h);
	case DAV_HOME:
		return store_collection_list(st, req->user_id, NULL,
		    walk_coll, w);
	case DAV_COLL:
		if (!p->coll.is_calendar && store_collection_list(st,
		    req->user_id, p->rel, walk_coll, w))
			return -1;
		switch (dav_prop_brief_begin(req, p, w->pr)) {
		case 1:
			return store_object_brief(st, p->coll.id, walk_brief,
			    w);
		case 0:
			break;
		default:
			return -1;
		}
		return store_object_list(st, p->coll.id, 0, INT64_MIN,
		    INT64_MAX, walk_obj, w);
	default:
		return 0;
	}
}

void
dav_propfind(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct dav_propreq *pr = NULL;
	struct xml_buf out = { 0 };
	xmlDoc *doc = NULL;
	char err[200];
	int depth = dav_depth(req, 1);
	struct walk w;

	if (depth == -2) {
		http_respond_text(resp, 400, "bad Depth header");
		return;
	}
	if (depth == -1) {
		dav_error(resp, 403, XML_NS_DAV, "propfind-finite-depth",
		    NULL);
		return;
	}
	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	if (req->body_len > 0) {
		doc = xml_parse(req->body, req->body_len, err, sizeof err);
		if (doc == NULL) {
			http_respond_text(resp, 400, "%s", err);
			return;
		}
		if (!xml_is(xmlDocGetRootElement(doc), XML_NS_DAV,
		    "propfind")) {
			http_respond_text(resp, 400, "expected DAV:propfind");
			goto out;
		}
	}
	pr = dav_propreq_parse(doc ? xmlDocGetRootElement(doc) : NULL);
	if (pr == NULL) {
		http_respond_text(resp, 400, "bad DAV:propfind");
		goto out;
	}
	dav_propreq_prefer(pr, req, resp);
	dav_multistatus_begin(&out);
	memset(&w, 0, sizeof w);
	w.req = req;
	w.parent = res;
	w.pr = pr;
	w.out = &out;
	if (dav_prop_response(req, res, pr, NULL, NULL, &out) ||
	    (depth == 1 && walk_children(&w))) {
		xml_buf_free(&w.href);
		xml_buf_free(&out);
		http_respond_text(resp, 500, "internal error");
		goto out;
	}
	xml_buf_free(&w.href);
	dav_multistatus_end(&out);
	dav_respond_xml(resp, 207, &out);
out:
	dav_propreq_free(pr);
	xmlFreeDoc(doc);
}

/* ---- PROPPATCH -------------------------------------------------------- */

struct patch {
	xmlNode *el;
	int remove;
	int status;			/* 200, 403, 409, 424 */
	const char *error;		/* precondition for a 403 */
	const struct live *live;
};

/* Roughly how many bytes the element takes, stopping past the limit. */
static size_t
xml_size(const xmlNode *n)
{
	size_t sz = 0;

	for (const xmlNode *c = n->children; c && sz <= XML_MAX_DEAD;
	    c = c->next) {
		if (c->content)
			sz += strlen((const char *)c->content);
		sz += 16 + (c->name ? strlen((const char *)c->name) : 0);
		if (c->children)
			sz += xml_size(c);
	}
	return sz;
}

/* Set by MKCOL / MKCALENDAR themselves when the collection is made. */
static int
creation_prop(const char *ns, const char *name)
{
	return (!strcmp(ns, XML_NS_DAV) && !strcmp(name, "resourcetype")) ||
	    (!strcmp(ns, XML_NS_CALDAV) &&
	    !strcmp(name, "supported-calendar-component-set"));
}

/* What would setting this property do? Fills p->status, p->live. */
static void
patch_check(const struct dav_res *r, struct patch *p, int creating)
{
	const char *ns = xml_ns(p->el), *name = (const char *)p->el->name;
	const struct live *l = live_find(ns, name);

	p->status = 200;
	if (creating && creation_prop(ns, name))
		return;
	if (l != NULL && l->column != NULL && r->kind == DAV_COLL) {
		p->live = l;
		if (!strcmp(l->column, "timezone") && !p->remove) {
			xmlChar *v = xmlNodeGetContent(p->el);

			if (v == NULL || !strstr((char *)v, "BEGIN:VCALENDAR")
			    || !strstr((char *)v, "BEGIN:VTIMEZONE")) {
				p->status = 403;
				p->error = "valid-calendar-data";
			}
			xmlFree(v);
		}
		return;
	}
	if ((l != NULL && !(r->kind == DAV_OBJECT && l->column != NULL)) ||
	    !r->has_coll) {
		p->status = 403;
		p->error = "cannot-modify-protected-property";
		return;
	}
	if (!p->remove && xml_size(p->el) > XML_MAX_DEAD)
		p->status = 507;	/* RFC 4918 9.2.1: no room for it */
}

static int
patch_apply(struct http_request *req, const struct dav_res *r,
    const struct patch *p)
{
	struct store *st = req->srv->store;
	const char *obj = r->kind == DAV_OBJECT ? r->name : "";
	const char *ns = xml_ns(p->el), *name = (const char *)p->el->name;
	xmlChar *v;
	char *xml;
	int rc;

	if (p->live == NULL && creation_prop(ns, name))
		return 0;
	if (p->live != NULL) {
		v = p->remove ? NULL : xmlNodeGetContent(p->el);
		rc = store_collection_set(st, r->coll.id, p->live->column,
		    (const char *)v);
		xmlFree(v);
		return rc;
	}
	if (p->remove) {
		rc = store_prop_remove(st, r->coll.id, obj, ns, name);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	xml = xml_dump_element(p->el);
	if (xml == NULL)
		return -1;
	rc = store_prop_set(st, r->coll.id, obj, ns, name, xml);
	free(xml);
	return rc;
}

static void
propstat(struct xml_buf *out, const struct patch *p, size_t n, int status)
{
	int any = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i].status != status)
			continue;
		if (!any)
			xml_buf_str(out, "<D:propstat><D:prop>");
		any = 1;
		empty_prop(out, xml_ns(p[i].el), (const char *)p[i].el->name);
	}
	if (!any)
		return;
	xml_buf_printf(out, "</D:prop><D:status>%s</D:status>",
	    dav_status_line(status));
	for (size_t i = 0; status == 403 && i < n; i++) {
		if (p[i].status == 403 && p[i].error) {
			xml_buf_printf(out, "<D:error><%s:%s/></D:error>",
			    strcmp(p[i].error, "valid-calendar-data") ? "D" :
			    "C", p[i].error);
			break;
		}
	}
	xml_buf_str(out, "</D:propstat>");
}

int
dav_props_update(struct http_request *req, const struct dav_res *r,
    xmlNode *parent, int creating, struct xml_buf *out)
{
	struct patch *p = NULL;
	size_t n = 0, cap = 0;
	int failed = 0, ret = -1;

	for (xmlNode *op = xml_first(parent); op; op = xml_next(op)) {
		int remove = xml_is(op, XML_NS_DAV, "remove");
		xmlNode *prop;

		if (!remove && !xml_is(op, XML_NS_DAV, "set"))
			continue;
		prop = xml_child(op, XML_NS_DAV, "prop");
		for (xmlNode *e = prop ? xml_first(prop) : NULL; e;
		    e = xml_next(e)) {
			if (n == cap) {
				struct patch *q;

				cap = cap ? cap * 2 : 16;
				q = realloc(p, cap * sizeof *p);
				if (q == NULL)
					goto out;
				p = q;
			}
			memset(&p[n], 0, sizeof p[n]);
			p[n].el = e;
			p[n].remove = remove;
			patch_check(r, &p[n], creating);
			failed |= p[n].status != 200;
			n++;
		}
	}
	if (failed) {
		for (size_t i = 0; i < n; i++)
			if (p[i].status == 200)
				p[i].status = 424;
		ret = 1;
	} else {
		for (size_t i = 0; i < n; i++)
			if (patch_apply(req, r, &p[i]))
				goto out;
		ret = 0;
	}
	propstat(out, p, n, 200);
	propstat(out, p, n, 403);
	propstat(out, p, n, 507);
	propstat(out, p, n, 424);
out:
	free(p);
	return ret;
}

void
dav_proppatch(struct http_request *req, struct http_response *resp,
    struct dav_res *res)
{
	struct store *st = req->srv->store;
	struct xml_buf out = { 0 };
	xmlDoc *doc;
	xmlNode *root;
	char err[200];
	int rc;

	if (!res->exists) {
		http_respond_text(resp, 404, "not found");
		return;
	}
	if (dav_conditions(req, 1, res->kind == DAV_OBJECT ? res->obj.etag :
	    res->coll.synctoken) == 412) {
		http_respond_text(resp, 412, "precondition failed");
		return;
	}
	doc = xml_parse(req->body, req->body_len, err, sizeof err);
	if (doc == NULL) {
		http_respond_text(resp, 400, "%s", err);
		return;
	}
	root = xmlDocGetRootElement(doc);
	if (!xml_is(root, XML_NS_DAV, "propertyupdate")) {
		http_respond_text(resp, 400, "expected DAV:propertyupdate");
		goto out;
	}
	dav_multistatus_begin(&out);
	xml_buf_str(&out, "<D:response><D:href>");
	xml_buf_href(&out, res->href);
	xml_buf_str(&out, "</D:href>");
	if (store_begin(st)) {
		rc = -1;
	} else {
		rc = dav_props_update(req, res, root, 0, &out);
		if (rc == 0)
			rc = store_commit(st);
		else
			store_rollback(st);
	}
	if (rc < 0) {
		xml_buf_free(&out);
		http_respond_text(resp, 500, "internal error");
		goto out;
	}
	xml_buf_str(&out, "</D:response>");
	dav_multistatus_end(&out);
	dav_respond_xml(resp, 207, &out);
out:
	xmlFreeDoc(doc);
}
