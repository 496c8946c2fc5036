/*
 * policy/mime.c: the MIME walk (libetpan's parser). Collects text/calendar
 * parts at any depth, and application/ics attachments whose text has a
 * METHOD (RFC 6047 2.4: iMIP is the part with method=), decoding base64 /
 * quoted-printable and converting the charset to UTF-8. The structure is
 * bounded before libetpan sees it: its parser recurses per level. Which
 * part is the invitation, and whether several disagree, is gate.c's call.
 */
#include <ctype.h>
#include <iconv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "policy/mime.h"

void
mime_parts_free(struct mime_parts *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->part[i].text);
	memset(p, 0, sizeof *p);
}

/* Counts multipart and message/rfc822 markers: an upper bound on the
 * number of containers, hence on libetpan's recursion. */
static size_t
mime_containers(const char *m, size_t len)
{
	const char *p = m, *end = m + len, *sl;
	size_t n = 0;

	/* Look at each "/" (rarer than any letter) and what surrounds it. */
	while ((sl = memchr(p, '/', (size_t)(end - p))) != NULL) {
		size_t before = (size_t)(sl - m);
		if ((before >= 9 && !strncasecmp(sl - 9, "multipart", 9)) ||
		    (before >= 7 && (size_t)(end - sl) > 6 &&
		    !strncasecmp(sl - 7, "message", 7) &&
		    !strncasecmp(sl + 1, "rfc822", 6)))
			n++;
		p = sl + 1;
	}
	return n;
}

static int
mime_is(const struct mailmime_content *ct, int type, const char *sub)
{
	const struct mailmime_type *t;

	if (ct == NULL || ct->ct_type == NULL || ct->ct_subtype == NULL)
		return 0;
	t = ct->ct_type;
	return t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE &&
	    t->tp_data.tp_discrete_type != NULL &&
	    t->tp_data.tp_discrete_type->dt_type == type &&
	    !strcasecmp(ct->ct_subtype, sub);
}

/* RFC 5545 3.7.2: a METHOD property line in the calendar text. */
static int
mime_has_method(const char *s, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++) {
		if ((i == 0 || s[i - 1] == '\n') &&
		    !strncasecmp(s + i, "METHOD", 6) &&
		    (s[i + 6] == ':' || s[i + 6] == ';'))
			return 1;
	}
	return 0;
}

/* Converts in[0..len) from charset to UTF-8; malloc'd result or NULL. */
static char *
mime_utf8(const char *in, size_t len, const char *charset, size_t *outlen)
{
	iconv_t cd;
	char *out, *op, *ip = (char *)in;
	size_t cap = len * 4 + 4, il = len, ol;

	if (charset == NULL || !strcasecmp(charset, "utf-8") ||
	    !strcasecmp(charset, "utf8") || !strcasecmp(charset, "us-ascii")) {
		out = malloc(len + 1);
		if (out == NULL)
			return NULL;
		memcpy(out, in, len);
		out[len] = '\0';
		*outlen = len;
		return out;
	}
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return NULL;
	out = malloc(cap);
	if (out == NULL) {
		iconv_close(cd);
		return NULL;
	}
	op = out;
	ol = cap - 1;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
		iconv_close(cd);
		free(out);
		return NULL;
	}
	iconv_close(cd);
	*op = '\0';
	*outlen = (size_t)(op - out);
	return out;
}

/* One entity (the message, a body part, an enclosed message): its header
 * block and its body, found without copying anything. */
struct mime_ent {
	const char *hdr, *body;
	size_t hdrlen, bodylen;
	int bodyless;		/* no empty line: truncated, no content */
};

/* Splits p[0..len) at the first empty line (CRLF or bare LF). Without
 * one the whole text is header and there is no body at all. */
static void
mime_split(const char *p, size_t len, struct mime_ent *e)
{
	const char *end = p + len, *nl;

	e->hdr = p;
	e->bodyless = 0;
	if (len > 0 && (p[0] == '\n' || (len > 1 && p[0] == '\r' &&
	    p[1] == '\n'))) {
		e->hdrlen = 0;
		e->body = p + (p[0] == '\n' ? 1 : 2);
		e->bodylen = (size_t)(end - e->body);
		return;
	}
	for (nl = p; (nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL;
	    nl++) {
		const char *q = nl + 1;
		if (q < end && *q == '\r')
			q++;
		if (q < end && *q == '\n') {
			e->hdrlen = (size_t)(nl + 1 - p);
			e->body = q + 1;
			e->bodylen = (size_t)(end - e->body);
			return;
		}
	}
	e->hdrlen = len;
	e->body = end;
	e->bodylen = 0;
	e->bodyless = 1;
}

/* The unfolded value of the first field called name in the header block,
 * malloc'd, or NULL. Only Content-Type and Content-Transfer-Encoding are
 * ever asked for: the rest of the header is never parsed. */
static char *
mime_field(const char *h, size_t hlen, const char *name)
{
	const char *end = h + hlen, *p = h;
	size_t nl = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol + 1 : end, *c = p;

		while (c < le && *c != ':' && *c != ' ' && *c != '\t')
			c++;
		if ((size_t)(c - p) == nl && !strncasecmp(p, name, nl)) {
			const char *v, *fe = le;
			char *out, *o;

			while (c < le && (*c == ' ' || *c == '\t'))
				c++;	/* obsolete WSP before the colon */
			if (c == le || *c != ':')
				goto next;
			v = c + 1;
			/* libetpan's value parsers take no leading WSP */
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			/* continuation lines start with WSP */
			while (fe < end && (*fe == ' ' || *fe == '\t')) {
				const char *n = memchr(fe, '\n',
				    (size_t)(end - fe));
				fe = n ? n + 1 : end;
			}
			out = o = malloc((size_t)(fe - v) + 1);
			if (out == NULL)
				return NULL;
			for (; v < fe; v++)
				if (*v != '\r' && *v != '\n')
					*o++ = *v;
			*o = '\0';
			return out;
		}
next:
		p = le;
	}
	return NULL;
}

enum mime_kind { KIND_OTHER, KIND_MULTIPART, KIND_MESSAGE, KIND_CALENDAR,
	KIND_ICS };

static enum mime_kind
mime_kind(const struct mailmime_content *ct)
{
	const struct mailmime_type *t = ct->ct_type;

	if (t == NULL || ct->ct_subtype == NULL)
		return KIND_OTHER;
	if (t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE &&
	    t->tp_data.tp_composite_type != NULL) {
		int c = t->tp_data.tp_composite_type->ct_type;
		if (c == MAILMIME_COMPOSITE_TYPE_MULTIPART)
			return KIND_MULTIPART;
		if (c == MAILMIME_COMPOSITE_TYPE_MESSAGE &&
		    !strcasecmp(ct->ct_subtype, "rfc822"))
			return KIND_MESSAGE;
		return KIND_OTHER;
	}
	if (mime_is(ct, MAILMIME_DISCRETE_TYPE_TEXT, "calendar"))
		return KIND_CALENDAR;
	if (mime_is(ct, MAILMIME_DISCRETE_TYPE_APPLICATION, "ics"))
		return KIND_ICS;
	return KIND_OTHER;
}

/* The Content-Transfer-Encoding as a MAILMIME_MECHANISM_*; 7bit when
 * absent or unreadable (RFC 2045 6.1). */
static int
mime_encoding(const struct mime_ent *e)
{
	struct mailmime_mechanism *mech = NULL;
	char *v = mime_field(e->hdr, e->hdrlen, "Content-Transfer-Encoding");
	size_t idx = 0;
	int enc = MAILMIME_MECHANISM_7BIT;

	if (v != NULL && mailmime_encoding_parse(v, strlen(v), &idx, &mech) ==
	    MAILIMF_NO_ERROR && mech != NULL) {
		enc = mech->enc_type;
		mailmime_mechanism_free(mech);
	}
	free(v);
	return enc;
}

static int
mime_take(const struct mime_ent *e, const struct mailmime_content *ct,
    int tc, struct mime_parts *out, char *err, size_t errlen)
{
	char *dec = NULL, *text, *method, *charset;
	size_t idx = 0, declen = e->bodylen, tlen;
	const char *src = e->body;
	int enc = mime_encoding(e), r;

	if (enc == MAILMIME_MECHANISM_BASE64 ||
	    enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
		r = mailmime_part_parse(src, declen, &idx, enc, &dec, &declen);
		if (r != MAILIMF_NO_ERROR) {
			snprintf(err, errlen, "calendar part cannot be "
			    "decoded");
			return -1;
		}
		src = dec;
	}
	if (declen > MIME_MAX_ICS) {
		snprintf(err, errlen, "calendar part of %zu bytes (limit %d)",
		    declen, MIME_MAX_ICS);
		goto fail;
	}
	charset = mailmime_content_charset_get((struct mailmime_content *)ct);
	text = mime_utf8(src, declen, charset, &tlen);
	if (text == NULL) {
		snprintf(err, errlen, "calendar part in charset %.40s cannot "
		    "be converted", charset ? charset : "?");
		goto fail;
	}
	if (dec != NULL)
		mailmime_decoded_part_free(dec);
	if ((!tc && !mime_has_method(text, tlen)) ||
	    out->n == MIME_MAX_PARTS || memchr(text, '\0', tlen) != NULL) {
		/* not iMIP; more parts than anyone sends; or NULs */
		free(text);
		return 0;
	}
	out->part[out->n].text = text;
	out->part[out->n].len = tlen;
	out->part[out->n].text_calendar = tc;
	method = mailmime_content_param_get((struct mailmime_content *)ct,
	    "method");
	if (method != NULL) {
		size_t i;
		for (i = 0; method[i] && i + 1 < sizeof out->part[0].method;
		    i++)
			out->part[out->n].method[i] =
			    (char)toupper((unsigned char)method[i]);
		out->part[out->n].method[i] = '\0';
	}
	out->n++;
	return 0;
fail:
	if (dec != NULL)
		mailmime_decoded_part_free(dec);
	return -1;
}

/* A delimiter line at p (RFC 2046 5.1.1): "--" boundary, "--" if it is
 * the last, transport padding, end of line. Returns 0 if p is not one,
 * else 1 (2 for the close delimiter) and where the next line starts. */
static int
mime_delim(const char *p, const char *end, const char *b, size_t blen,
    const char **next)
{
	int close = 0;

	if ((size_t)(end - p) < blen + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, b, blen) != 0)
		return 0;
	p += blen + 2;
	if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
		close = 1;
		p += 2;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '\r')
		p++;
	if (p < end && *p != '\n')
		return 0;
	*next = p < end ? p + 1 : end;
	return 1 + close;
}

/* The next delimiter line in [p, end) that starts a line (or is at
 * line_start); NULL if none. Sets *kind and *next as mime_delim does.
 * dash is "--" boundary: searching for all of it, not for "--" or for
 * line starts, keeps this at memmem's speed over large parts. */
static const char *
mime_next_delim(const char *p, const char *end, const char *line_start,
    const char *dash, size_t dlen, int *kind, const char **next)
{
	const char *q = p;

	while ((size_t)(end - q) >= dlen) {
		q = memmem(q, (size_t)(end - q), dash, dlen);
		if (q == NULL)
			return NULL;
		if ((q == line_start || q[-1] == '\n') &&
		    (*kind = mime_delim(q, end, dash + 2, dlen - 2, next)) != 0)
			return q;
		q++;
	}
	return NULL;
}

static int mime_entity(const char *p, size_t len, int digest, int depth,
    struct mime_parts *out, char *err, size_t errlen);

/* The body parts of a multipart body; the preamble and epilogue are not
 * content (RFC 2046 5.1.1). */
static int
mime_multipart(const struct mime_ent *e, const char *boundary, int digest,
    int depth, struct mime_parts *out, char *err, size_t errlen)
{
	const char *end = e->body + e->bodylen, *d, *next, *start;
	size_t blen = strlen(boundary);
	char *dash;
	int kind, r = 0;

	if (blen == 0)
		return 0;
	dash = malloc(blen + 3);
	if (dash == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(dash, "--", 2);
	memcpy(dash + 2, boundary, blen + 1);
	d = mime_next_delim(e->body, end, e->body, dash, blen + 2, &kind,
	    &next);
	while (d != NULL && kind == 1) {
		const char *pe;
		start = next;
		d = mime_next_delim(start, end, start, dash, blen + 2, &kind,
		    &next);
		/* the line break before a delimiter belongs to it; with
		 * the close delimiter missing, the end stands for it */
		pe = d != NULL ? d : end;
		if (pe > start && pe[-1] == '\n') {
			pe--;
			if (pe > start && pe[-1] == '\r')
				pe--;
		}
		if (mime_entity(start, (size_t)(pe - start), digest,
		    depth + 1, out, err, errlen) != 0) {
			r = -1;
			break;
		}
	}
	free(dash);
	return r;
}

/* One entity: a calendar leaf is taken, containers are walked. */
static int
mime_entity(const char *p, size_t len, int digest, int depth,
    struct mime_parts *out, char *err, size_t errlen)
{
	struct mailmime_content *ct = NULL;
	struct mime_ent e;
	char *v;
	size_t idx = 0;
	int r = 0;

	if (depth > MIME_MAX_CONTAINERS) {
		snprintf(err, errlen, "MIME tree deeper than %d",
		    MIME_MAX_CONTAINERS);
		return -1;
	}
	mime_split(p, len, &e);
	if (e.bodyless)
		return 0;	/* a cut-off header: nothing to take */
	v = mime_field(e.hdr, e.hdrlen, "Content-Type");
	if (v != NULL && mailmime_content_parse(v, strlen(v), &idx, &ct) !=
	    MAILIMF_NO_ERROR)
		ct = NULL;	/* unreadable: the default type */
	free(v);
	if (ct == NULL) {
		/* RFC 2046 5.1.5: in a digest, parts are messages */
		if (digest)
			r = mime_entity(e.body, e.bodylen, 0, depth + 1, out,
			    err, errlen);
		return r;
	}
	switch (mime_kind(ct)) {
	case KIND_MULTIPART: {
		char *b = mailmime_content_param_get(ct, "boundary");
		if (b != NULL)
			r = mime_multipart(&e, b, !strcasecmp(ct->ct_subtype,
			    "digest"), depth, out, err, errlen);
		break;
	}
	case KIND_MESSAGE: {
		int enc = mime_encoding(&e);
		if (enc != MAILMIME_MECHANISM_BASE64 &&
		    enc != MAILMIME_MECHANISM_QUOTED_PRINTABLE)
			r = mime_entity(e.body, e.bodylen, 0, depth + 1, out,
			    err, errlen);
		break;
	}
	case KIND_CALENDAR:
		r = mime_take(&e, ct, 1, out, err, errlen);
		break;
	case KIND_ICS:
		r = mime_take(&e, ct, 0, out, err, errlen);
		break;
	default:
		break;
	}
	mailmime_content_free(ct);
	return r;
}

enum mime_status
mime_calendars(const char *msg, size_t len, struct mime_parts *out,
    char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (mime_containers(msg, len) > MIME_MAX_CONTAINERS) {
		snprintf(err, errlen, "more than %d multipart or message "
		    "parts", MIME_MAX_CONTAINERS);
		return MIME_INVALID;
	}
	if (mime_entity(msg, len, 0, 0, out, err, errlen) != 0) {
		mime_parts_free(out);
		return MIME_INVALID;
	}
	return MIME_OK;
}
