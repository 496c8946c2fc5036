/*
 * webdav/dav.h: WebDAV and CalDAV (RFC 4918, 4791, 5397, 5689, 6578,
 * 6764) for one authenticated request under /dav/ or /.well-known/caldav.
 * http.c calls dav_handle; the rest is shared by the method modules
 * (propfind.c, put.c, report.c): the resource a path names, error bodies
 * and conditional requests.
 *
 * URL space:
 *   /dav/                               the root
 *   /dav/principals/<user>/             the user's principal
 *   /dav/calendars/<user>/              the user's home
 *   /dav/calendars/<user>/<coll>/...    collections (nested), objects
 * A user sees only their own principal and home; every other user's path
 * is 404 whether it exists or not.
 */
#ifndef CALGATE_DAV_H
#define CALGATE_DAV_H

#include <stdint.h>

#include "server/http.h"
#include "server/store.h"
#include "webdav/xml.h"

#define DAV_MAX_SEGMENT	255		/* bytes in one path segment */
#define DAV_MAX_PATH	1024		/* bytes in a whole path */
#define DAV_MAX_DEPTH	32		/* segments */
/* Sync tokens (RFC 6578) are DAV_SYNC_PREFIX "<collection id>/<seq>": a
 * token names its collection, so one from elsewhere is refused. */
#define DAV_SYNC_PREFIX	"http://calgate.invalid/sync/"

void dav_handle(struct http_request *, struct http_response *);

enum dav_kind {
	DAV_ROOT,		/* /dav/ (and "/" for bare-URL discovery) */
	DAV_PRINCIPALS,		/* /dav/principals/ */
	DAV_PRINCIPAL,		/* /dav/principals/<user>/ */
	DAV_CALENDARS,		/* /dav/calendars/ */
	DAV_HOME,		/* /dav/calendars/<user>/ */
	DAV_COLL,		/* a collection in the home */
	DAV_OBJECT,		/* a resource in a collection */
};

/*
 * What a path names. A path that does not exist yet is a DAV_OBJECT when
 * its parent is a collection, a DAV_COLL when its parent is the home;
 * parent_ok says whether the parent exists.
 */
struct dav_res {
	enum dav_kind kind;
	int exists;
	int parent_ok;
	int slash;			/* the path ended in '/' */
	char *href;			/* owned; decoded; ends in / for a
					   collection */
	char *rel;			/* owned; path below the home ("" for
					   the home), objects included */
	const char *name;		/* last segment of rel */
	struct store_collection coll;	/* DAV_COLL: itself; DAV_OBJECT:
					   its parent (has_coll) */
	int has_coll;
	struct store_object obj;	/* DAV_OBJECT that exists */
};

/*
 * Resolves a URL path (as sent: percent-encoded; a scheme://host prefix
 * and a query are dropped) for the request's user. Returns 0, or the
 * HTTP status to answer with: 400 for a malformed path, 414 for an
 * overlong one, 404 for anything outside the user's own space, 500.
 * Clear out with dav_res_clear in every case.
 */
int dav_resolve(struct http_request *, const char *url, int with_data,
    struct dav_res *out);
void dav_res_clear(struct dav_res *);
/* The parent collection's path of rel ("" for a top-level one); malloc'd. */
char *dav_parent_rel(const char *rel);

/* The Depth header: 0, 1, -1 for infinity, or def when absent; -2 bad. */
int dav_depth(const struct http_request *, int def);

/*
 * A DAV:error body (RFC 4918 16) with one precondition element in ns
 * (XML_NS_DAV or XML_NS_CALDAV), optionally holding one href.
 */
void dav_error(struct http_response *, int status, const char *ns,
    const char *precondition, const char *href);

/*
 * Checks If-Match / If-None-Match against a resource (etag 0: it does not
 * exist). Returns 0 to go on, or the status to answer (412, or 304 for a
 * GET/HEAD If-None-Match hit).
 */
int dav_conditions(const struct http_request *, int exists, int64_t etag);

/* Writes "\"<etag>\"" into buf. */
void dav_etag(char *buf, size_t n, int64_t etag);
/* An HTTP date (RFC 7231 7.1.1.1) for t into buf. */
void dav_http_date(char *buf, size_t n, int64_t t);

/* Answers with the multistatus in b (taking it), 207. */
void dav_respond_xml(struct http_response *, int status, struct xml_buf *b);
void dav_multistatus_begin(struct xml_buf *);
void dav_multistatus_end(struct xml_buf *);
/* <D:response><D:href>href</D:href><D:status>...</D:status></D:response> */
void dav_status_response(struct xml_buf *, const char *href, int status);
const char *dav_status_line(int status);

/* The methods, one module each. */
void dav_propfind(struct http_request *, struct http_response *,
    struct dav_res *);
void dav_proppatch(struct http_request *, struct http_response *,
    struct dav_res *);
void dav_get(struct http_request *, struct http_response *,
    struct dav_res *);
void dav_put(struct http_request *, struct http_response *,
    struct dav_res *);
void dav_delete(struct http_request *, struct http_response *,
    struct dav_res *);
void dav_mkcol(struct http_request *, struct http_response *,
    struct dav_res *, int calendar);
void dav_copymove(struct http_request *, struct http_response *,
    struct dav_res *, int move);
void dav_report(struct http_request *, struct http_response *,
    struct dav_res *);

/* ---- properties (propfind.c), shared with report.c ---------------- */

struct dav_propreq;

/*
 * Parses a DAV:propfind element, or a report's DAV:prop / DAV:allprop /
 * DAV:propname child (el may be NULL: allprop). Returns NULL on a bad
 * request (or out of memory).
 */
struct dav_propreq *dav_propreq_parse(xmlNode *el);
void dav_propreq_free(struct dav_propreq *);
/*
 * Prefer: return=minimal (RFC 8144 3.2; "Brief: t" from before it): the
 * 404 propstats are left out. Applies the request's preference to pr and
 * says so in resp (Preference-Applied); call before the first response.
 */
void dav_propreq_prefer(struct dav_propreq *, const struct http_request *,
    struct http_response *);

/*
 * A hook for properties only a report knows how to write (calendar-data):
 * returns 0 when it wrote the value between the open and close tags, 1
 * when the property is not available here (404), -1 on error.
 */
typedef int (*dav_prop_hook)(void *arg, const struct dav_res *,
    xmlNode *el, struct xml_buf *value);

/* Writes one DAV:response for res with the requested properties. */
int dav_prop_response(struct http_request *, const struct dav_res *,
    struct dav_propreq *, dav_prop_hook, void *hook_arg,
    struct xml_buf *out);
/*
 * The same for object o (borrowed) of collection coll, whose href ends in
 * '/'; href is the caller's scratch buffer for the object's href, reused
 * from row to row. Returns 0, or -1 when out of memory or on an error.
 */
int dav_prop_object(struct http_request *, const struct dav_res *coll,
    const struct store_object *o, struct dav_propreq *, dav_prop_hook,
    void *hook_arg, struct xml_buf *href, struct xml_buf *out);

/*
 * Brief listings: when every requested property of the objects in
 * calendar or collection coll follows from an object's name, ETag and
 * content type (getetag, getcontenttype, resourcetype, and names the
 * objects do not have), dav_prop_brief_begin prepares pr and returns 1;
 * dav_prop_brief then writes the same DAV:response that
 * dav_prop_response would for that object, without its store row.
 * 0: not applicable (use dav_prop_response); -1: store error.
 * dav_prop_brief returns 0, or -1 when out is out of memory.
 */
int dav_prop_brief_begin(struct http_request *, const struct dav_res *coll,
    struct dav_propreq *);
int dav_prop_brief(struct dav_propreq *, const char *name, int64_t etag,
    const char *content_type, struct xml_buf *out);

/*
 * Validates, then applies, the D:set / D:remove children of parent (a
 * propertyupdate, mkcol or mkcalendar element) to res, inside the
 * caller's transaction, writing one D:propstat per outcome to out.
 * creating: resourcetype may be set (MKCOL/MKCALENDAR handle it).
 * Returns 0 when everything was applied, 1 when something was refused
 * (then nothing was applied: RFC 4918 9.2 atomicity), -1 on a store error.
 */
int dav_props_update(struct http_request *, const struct dav_res *,
    xmlNode *parent, int creating, struct xml_buf *out);

/*
 * Writes one DAV:response for collection c (borrowed), a child of the
 * collection or home whose href is parent_href (ending in '/').
 */
int dav_prop_collection(struct http_request *, const char *parent_href,
    const struct store_collection *c, struct dav_propreq *,
    struct xml_buf *out);

/*
 * The home's sync state (RFC 6578 on the calendar home, which Apple
 * Calendar syncs): the newest change of any of its collections, the
 * highest collection id, and a hash of the (id, path) of those with an id
 * up to upto_id (INT64_MAX: all), which tells whether one of them went
 * away. Its token is DAV_SYNC_PREFIX "home/<seq>/<maxid>/<hash>".
 * 0, or -1 on a store error.
 */
struct dav_home_sync {
	int64_t seq, maxid;
	uint64_t hash;
};
int dav_home_sync_state(struct http_request *, int64_t upto_id,
    struct dav_home_sync *out);
void dav_home_sync_token(const struct dav_home_sync *, struct xml_buf *out);

/* Principal and home hrefs for the request's user (decoded paths). */
void dav_principal_href(const struct http_request *, char *buf, size_t n);
void dav_home_href(const struct http_request *, char *buf, size_t n);

#endif
