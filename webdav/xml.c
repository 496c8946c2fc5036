/*
 * webdav/xml.c: request parsing (libxml2, hardened) and the response
 * writer. Responses are never built as a libxml2 tree: they are streamed
 * into one buffer, which keeps a 10,000-object multistatus cheap.
 */
#include "webdav/xml.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

/* ---- output buffer -------------------------------------------------- */

#define XML_BUF_MMAP    (256 * 1024)
#define XML_ESC_ROOM	(16 * 1024)	/* xml_buf_esc reserves 6x up to */

static pthread_once_t mmap_once = PTHREAD_ONCE_INIT;

/*
 * A listing's answer is megabytes, one per busy thread. A fixed mmap
 * threshold keeps such buffers out of glibc's arenas (by default the
 * threshold climbs after the first free and the arenas then hold the
 * freed megabytes for good) and lets realloc grow them with mremap.
 */
static void
mmap_threshold(void)
{
	mallopt(M_MMAP_THRESHOLD, XML_BUF_MMAP);
}

static int
buf_grow(struct xml_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	if (b->len + n + 1 > XML_BUF_MMAP / 2)
		pthread_once(&mmap_once, mmap_threshold);
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

int
xml_buf_reserve(struct xml_buf *b, size_t n)
{
	return buf_grow(b, n);
}

void
xml_buf_add(struct xml_buf *b, const char *s, size_t n)
{
	if (buf_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
xml_buf_str(struct xml_buf *b, const char *s)
{
	xml_buf_add(b, s, strlen(s));
}

void
xml_buf_printf(struct xml_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf_grow(b, 256))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		if (buf_grow(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* The bytes xml_buf_esc replaces: index into its table, 0 for none. */
static const unsigned char esc_class[256] = {
	['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4, ['\r'] = 5,
};

void
xml_buf_esc(struct xml_buf *b, const char *s, size_t n)
{
	/* bytes each replacement adds, by esc_class */
	static const unsigned char grows[] = { 0, 4, 3, 3, 5, 4 };
	const unsigned char *u = (const unsigned char *)s;
	size_t extra = 5 * n;
	char *p;

	/* calendar data goes through here whole (a "&#13;" per line):
	 * grow once, then plain stores. Room for the worst case is cheap
	 * for an object's few kilobytes; count first for anything big. */
	if (n > XML_ESC_ROOM)
		for (size_t i = extra = 0; i < n; i++)
			extra += grows[esc_class[u[i]]];
	if (buf_grow(b, n + extra))
		return;
	p = xml_put_esc(b->p + b->len, s, n);
	b->len = (size_t)(p - b->p);
	b->p[b->len] = '\0';
}

/* RFC 3986 unreserved plus the sub-delims and ':' '@' '/' of a path; a
 * table: every byte of every href of a listing is looked up here. */
static const unsigned char href_ok[256] = {
	['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['0' ... '9'] = 1,
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['/'] = 1, ['@'] = 1,
	[':'] = 1, ['+'] = 1, [','] = 1, ['='] = 1, ['!'] = 1, ['$'] = 1,
	['('] = 1, [')'] = 1, ['*'] = 1, [';'] = 1,
};

static int
href_safe(unsigned char c)
{
	return href_ok[c];
}

char *
xml_put_esc(char *p, const char *s, size_t n)
{
	static const char *const rep[] = {
		"", "&amp;", "&lt;", "&gt;", "&quot;", "&#13;",
	};
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n; i++) {
		unsigned char k = esc_class[u[i]];

		if (k == 0) {
			*p++ = (char)u[i];
			continue;
		}
		p = stpcpy(p, rep[k]);
	}
	return p;
}

char *
xml_put_href(char *p, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *u = (const unsigned char *)path; *u;
	    u++) {
		if (href_safe(*u)) {
			*p++ = (char)*u;
			continue;
		}
		*p++ = '%';
		*p++ = hex[*u >> 4];
		*p++ = hex[*u & 15];
	}
	return p;
}

void
xml_buf_href(struct xml_buf *b, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)path;
	char enc[3] = { '%', 0, 0 };

	while (*p) {
		const unsigned char *run = p;

		/* copy runs of safe bytes at once */
		while (*p && href_safe(*p))
			p++;
		if (p > run)
			xml_buf_add(b, (const char *)run, (size_t)(p - run));
		if (*p == '\0')
			break;
		enc[1] = hex[*p >> 4];
		enc[2] = hex[*p & 15];
		xml_buf_add(b, enc, 3);
		p++;
	}
}

char *
xml_buf_take(struct xml_buf *b, size_t *len)
{
	char *p = b->p;

	if (b->oom) {
		xml_buf_free(b);
		return NULL;
	}
	if (p == NULL)
		p = calloc(1, 1);
	*len = b->len;
	memset(b, 0, sizeof *b);
	return p;
}

void
xml_buf_free(struct xml_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static const char *
ns_prefix(const char *ns)
{
	if (!strcmp(ns, XML_NS_DAV))
		return "D";
	if (!strcmp(ns, XML_NS_CALDAV))
		return "C";
	if (!strcmp(ns, XML_NS_CS))
		return "CS";
	if (!strcmp(ns, XML_NS_APPLE))
		return "A";
	return NULL;
}

void
xml_open_prop(struct xml_buf *b, const char *ns, const char *name)
{
	const char *pre = ns_prefix(ns);

	/* plain appends: this runs a few times per listed object */
	if (pre != NULL) {
		xml_buf_add(b, "<", 1);
		xml_buf_str(b, pre);
		xml_buf_add(b, ":", 1);
		xml_buf_str(b, name);
		return;
	}
	/* The empty namespace needs no declaration: no default is set. */
	if (*ns == '\0') {
		xml_buf_add(b, "<", 1);
		xml_buf_str(b, name);
		return;
	}
	xml_buf_str(b, "<X:");
	xml_buf_str(b, name);
	xml_buf_str(b, " xmlns:X=\"");
	xml_buf_esc(b, ns, strlen(ns));
	xml_buf_str(b, "\"");
}

void
xml_close_prop(struct xml_buf *b, const char *ns, const char *name)
{
	const char *pre = ns_prefix(ns);

	if (pre != NULL) {
		xml_buf_add(b, "</", 2);
		xml_buf_str(b, pre);
		xml_buf_add(b, ":", 1);
	} else if (*ns == '\0')
		xml_buf_add(b, "</", 2);
	else
		xml_buf_add(b, "</X:", 4);
	xml_buf_str(b, name);
	xml_buf_add(b, ">", 1);
}

/* ---- parsing -------------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init(void)
{
	xmlInitParser();
}

static int
too_deep(const xmlNode *n, int depth)
{
	if (depth > XML_MAX_DEPTH)
		return 1;
	for (const xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && too_deep(c, depth + 1))
			return 1;
	return 0;
}

xmlDoc *
xml_parse(const char *body, size_t len, char *err, size_t errlen)
{
	/*
	 * No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD or
	 * DTDATTR (nothing external is read), NONET as a second lock.
	 */
	int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING
	    | XML_PARSE_NOCDATA;
	xmlParserCtxt *ctxt;
	xmlDoc *doc;
	int bad;

	pthread_once(&xml_once, xml_init);
	if (len == 0 || len > INT32_MAX) {
		snprintf(err, errlen, "empty or oversized XML body");
		return NULL;
	}
	/* DAV bodies never need a DTD; refusing it rules out entity bombs
	 * and external entities before the parser sees them. */
	if (memmem(body, len, "<!DOCTYPE", 9) != NULL ||
	    memmem(body, len, "<!ENTITY", 8) != NULL) {
		snprintf(err, errlen, "DOCTYPE and entity declarations are "
		    "not accepted");
		return NULL;
	}
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL, opts);
	/* libxml2 recovers from namespace errors (xmlns:p=""); we don't. */
	bad = !ctxt->wellFormed || !ctxt->nsWellFormed;
	xmlFreeParserCtxt(ctxt);
	if (doc == NULL || bad || xmlDocGetRootElement(doc) == NULL) {
		snprintf(err, errlen, "the request body is not well-formed "
		    "XML");
		xmlFreeDoc(doc);
		return NULL;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL ||
	    too_deep(xmlDocGetRootElement(doc), 1)) {
		snprintf(err, errlen, "XML nested too deeply or with a DTD");
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

const char *
xml_ns(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

int
xml_is(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	    !strcmp((const char *)n->name, name) && !strcmp(xml_ns(n), ns);
}

xmlNode *
xml_next(const xmlNode *n)
{
	for (n = n->next; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return (xmlNode *)n;
	return NULL;
}

xmlNode *
xml_first(const xmlNode *parent)
{
	const xmlNode *n = parent->children;

	for (; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return (xmlNode *)n;
	return NULL;
}

xmlNode *
xml_child(const xmlNode *parent, const char *ns, const char *name)
{
	for (xmlNode *n = xml_first(parent); n; n = xml_next(n))
		if (xml_is(n, ns, name))
			return n;
	return NULL;
}

char *
xml_dump_element(xmlNode *node)
{
	xmlDoc *d = xmlNewDoc((const xmlChar *)"1.0");
	xmlNode *copy;
	xmlBuffer *b = NULL;
	char *out = NULL;

	if (d == NULL)
		return NULL;
	/* Copying into a new document declares, on the copy, every
	 * namespace the element used from its ancestors. */
	copy = xmlDocCopyNode(node, d, 1);
	if (copy == NULL)
		goto out;
	xmlDocSetRootElement(d, copy);
	xmlReconciliateNs(d, copy);
	b = xmlBufferCreate();
	if (b == NULL || xmlNodeDump(b, d, copy, 0, 0) < 0)
		goto out;
	out = strdup((const char *)xmlBufferContent(b));
out:
	if (b)
		xmlBufferFree(b);
	xmlFreeDoc(d);
	return out;
}
