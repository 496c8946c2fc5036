/*
 * webdav/xml.h: XML in and out for the DAV methods. Requests are parsed
 * with libxml2 with the network, DTDs and entity expansion off and a depth
 * bound; responses are written straight into one growing buffer with a
 * fixed set of namespace prefixes.
 */
#ifndef CALGATE_XML_H
#define CALGATE_XML_H

#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#define XML_NS_DAV	"DAV:"
#define XML_NS_CALDAV	"urn:ietf:params:xml:ns:caldav"
#define XML_NS_CS	"http://calendarserver.org/ns/"
#define XML_NS_APPLE	"http://apple.com/ns/ical/"
#define XML_MAX_DEPTH	64
#define XML_MAX_BODY	(2u << 20)	/* a DAV request body, bytes */
#define XML_MAX_DEAD	(64u << 10)	/* one dead property, bytes */

/* The namespace declarations every response root element carries. */
#define XML_NS_DECLS	" xmlns:D=\"DAV:\"" \
	" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"" \
	" xmlns:CS=\"http://calendarserver.org/ns/\"" \
	" xmlns:A=\"http://apple.com/ns/ical/\""

/* A growing output buffer. On allocation failure oom is set and later
 * appends do nothing; the caller checks oom once at the end. */
struct xml_buf {
	char *p;			/* owned; NUL-terminated */
	size_t len, cap;
	int oom;
};

void xml_buf_add(struct xml_buf *, const char *s, size_t n);
void xml_buf_str(struct xml_buf *, const char *s);
void xml_buf_printf(struct xml_buf *, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends s with & < > " escaped (text and attribute values). */
void xml_buf_esc(struct xml_buf *, const char *s, size_t n);
/* Appends an href: each byte outside the URI-safe set percent-encoded. */
void xml_buf_href(struct xml_buf *, const char *path);
/*
 * For writers of many small pieces: xml_buf_reserve makes room for n more
 * bytes (0, or -1 out of memory); xml_put_esc and xml_put_href then write
 * at p (room for 6n and 3 * strlen(path) bytes) and return the new end;
 * the caller sets len and the NUL.
 */
int xml_buf_reserve(struct xml_buf *, size_t n);
char *xml_put_esc(char *p, const char *s, size_t n);
char *xml_put_href(char *p, const char *path);
/* Takes the buffer's memory (caller frees); resets the buffer. */
char *xml_buf_take(struct xml_buf *, size_t *len);
void xml_buf_free(struct xml_buf *);

/*
 * Writes "<P:name" for a property in namespace ns (known namespaces use
 * their prefix, others an inline declaration), without closing ">".
 */
void xml_open_prop(struct xml_buf *, const char *ns, const char *name);
/* The matching close tag for xml_open_prop. */
void xml_close_prop(struct xml_buf *, const char *ns, const char *name);

/*
 * Parses a request body. Refuses any DOCTYPE (so no entity can be
 * declared), network access, and nesting deeper than XML_MAX_DEPTH.
 * Returns the document (caller frees with xmlFreeDoc) or NULL with a
 * reason in err.
 */
xmlDoc *xml_parse(const char *body, size_t len, char *err, size_t errlen);

/* 1 when node is the element ns:name. */
int xml_is(const xmlNode *, const char *ns, const char *name);
/* The first element child, or the next element sibling; NULL at the end. */
xmlNode *xml_first(const xmlNode *parent);
xmlNode *xml_next(const xmlNode *node);
/* The first element child named ns:name, or NULL. */
xmlNode *xml_child(const xmlNode *parent, const char *ns, const char *name);
/* The namespace URI of an element ("" when none). */
const char *xml_ns(const xmlNode *);

/*
 * Serialises node as a self-contained element (namespace declarations
 * included), for storing a dead property. Returns malloc'd text or NULL.
 */
char *xml_dump_element(xmlNode *node);

#endif
