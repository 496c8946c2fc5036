/*
 * tests/unit/test_propfind.c: the brief listing of webdav/propfind.c
 * (dav_prop_brief_begin, dav_prop_brief), which writes a collection
 * member's DAV:response from its name, ETag and content type alone, must
 * write byte for byte what the general path (dav_prop_object, from the
 * whole store row) writes: for names that need percent-encoding, content
 * types that need escaping or are empty, properties objects lack, and
 * must step aside where it cannot (calendar-data, dead properties,
 * nothing it knows).
 */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/http.h"
#include "server/store.h"
#include "tests/unit/check.h"
#include "webdav/dav.h"

#define PF(props) "<D:propfind xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params" \
	":xml:ns:caldav\" xmlns:X=\"urn:x\"><D:prop>" props \
	"</D:prop></D:propfind>"

static const struct {
	const char *name, *ctype;
} members[] = {
	{ "a.ics", "text/calendar; charset=utf-8" },
	{ "with space & amp.ics", "text/calendar; component=\"vevent\"" },
	{ "\xc3\xa4\xc3\xb6-<x>.ics", "text/calendar" },
	{ "plain", "" },
	{ "z:@+,=!$()*;~.ics", "application/octet-stream" },
};

static const struct {
	const char *what, *propfind;
	int brief;		/* dav_prop_brief_begin's answer */
	int dead;		/* asks for names a dead property may have */
} shapes[] = {
	{ "getetag", PF("<D:getetag/>"), 1, 0 },
	{ "etag, type, resourcetype", PF("<D:getetag/><D:getcontenttype/>"
	    "<D:resourcetype/>"), 1, 0 },
	{ "resourcetype first", PF("<D:resourcetype/><D:getetag/>"), 1, 0 },
	{ "with names objects lack", PF("<D:getetag/><D:displayname/>"
	    "<X:unknown/><C:calendar-description/>"), 1, 1 },
	{ "calendar-data", PF("<D:getetag/><C:calendar-data/>"), 0, 0 },
	{ "a property the row knows", PF("<D:getetag/>"
	    "<D:getcontentlength/>"), 0, 0 },
	{ "only unknown names", PF("<X:unknown/>"), 0, 1 },
};

struct pair {
	struct http_request *req;
	struct dav_res *coll;
	struct dav_propreq *slow, *fast;
	struct xml_buf href;
	int n, differ;
};

static int
compare(void *arg, const struct store_object *o)
{
	struct pair *p = arg;
	struct xml_buf a = { 0 }, b = { 0 };

	check(dav_prop_object(p->req, p->coll, o, p->slow, NULL, NULL,
	    &p->href, &a) == 0, "%s: general path", o->name);
	check(dav_prop_brief(p->fast, o->name, o->etag, o->content_type,
	    &b) == 0, "%s: brief path", o->name);
	if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
		p->differ++;
		fprintf(stderr, "general: %s\nbrief:   %s\n", a.p, b.p);
	}
	p->n++;
	xml_buf_free(&a);
	xml_buf_free(&b);
	return 0;
}

/* The request borrows from *doc: free that after it. */
static struct dav_propreq *
propreq(const char *text, xmlDoc **doc)
{
	*doc = xmlReadMemory(text, (int)strlen(text), "t.xml", NULL,
	    XML_PARSE_NONET);
	if (*doc == NULL) {
		fprintf(stderr, "bad test XML: %s\n", text);
		exit(2);
	}
	return dav_propreq_parse(xmlDocGetRootElement(*doc));
}

static void
test_shapes(struct http_request *req, struct dav_res *coll, int dead)
{
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		xmlDoc *d1, *d2;
		struct pair p = { req, coll, propreq(shapes[i].propfind, &d1),
		    propreq(shapes[i].propfind, &d2), { 0 }, 0, 0 };
		int want = shapes[i].brief && !(dead && shapes[i].dead), got;

		check(p.slow && p.fast, "%s: parses", shapes[i].what);
		if (p.slow == NULL || p.fast == NULL) {
			dav_propreq_free(p.slow);
			dav_propreq_free(p.fast);
			xmlFreeDoc(d1);
			xmlFreeDoc(d2);
			continue;
		}
		got = dav_prop_brief_begin(req, coll, p.fast);
		check(got == want, "%s%s: brief_begin %d, want %d",
		    shapes[i].what, dead ? " (dead props)" : "", got, want);
		if (got == 1) {
			store_object_list(req->srv->store, coll->coll.id, 0,
			    INT64_MIN, INT64_MAX, compare, &p);
			check(p.n == (int)(sizeof members / sizeof members[0]),
			    "%s: %d members compared", shapes[i].what, p.n);
			check(p.differ == 0, "%s: %d responses differ",
			    shapes[i].what, p.differ);
		}
		xml_buf_free(&p.href);
		dav_propreq_free(p.slow);
		dav_propreq_free(p.fast);
		xmlFreeDoc(d1);
		xmlFreeDoc(d2);
	}
}

int
main(void)
{
	char dir[] = "/tmp/calgate-unit.XXXXXX", err[256], cmd[300];
	struct server srv;
	struct http_request req;
	struct dav_res coll;
	int64_t user, etag;

	if (mkdtemp(dir) == NULL)
		return 1;
	memset(&srv, 0, sizeof srv);
	srv.store = store_open(dir, err, sizeof err);
	check(srv.store != NULL, "store opens: %s", err);
	if (srv.store == NULL)
		return check_done();
	memset(&req, 0, sizeof req);
	req.srv = &srv;
	memset(&coll, 0, sizeof coll);
	check(store_user_ensure(srv.store, "u", &user) == 0 &&
	    store_collection_create(srv.store, user, "cal", 1, NULL, NULL)
	    == 0 && store_collection_get(srv.store, user, "cal", &coll.coll)
	    == 0, "calendar created");
	req.user_id = user;
	coll.kind = DAV_COLL;
	coll.exists = coll.parent_ok = coll.has_coll = 1;
	coll.href = strdup("/dav/calendars/u/cal/");
	for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
		check(store_object_put(srv.store, coll.coll.id,
		    members[i].name, "x", 1, members[i].ctype, NULL, &etag)
		    == 0, "put %s", members[i].name);
	test_shapes(&req, &coll, 0);
	/* a dead property on one member: asked for, only the general path
	 * can answer; not asked for, the brief one must still agree */
	check(store_prop_set(srv.store, coll.coll.id, "plain", "urn:x",
	    "unknown", "<X:unknown xmlns:X=\"urn:x\">v</X:unknown>") == 0,
	    "dead property set");
	test_shapes(&req, &coll, 1);
	dav_res_clear(&coll);
	store_close(srv.store);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	xmlCleanupParser();
	return check_done();
}
