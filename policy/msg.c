/*
 * policy/msg.c: splits a raw message into header fields and body (RFC 5322
 * section 2.2), after turning bare LF line endings into CRLF as an IMAP
 * server would deliver them. Leaves MIME to mime.c and the meaning of the
 * fields to their users.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/msg.h"

void
msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	free(m->buf);
	free(m->hdrs);
	memset(m, 0, sizeof *m);
}

typedef signed char msg_v16 __attribute__((vector_size(16)));

/* 1 if some LF in raw[0..len) is not preceded by CR. Sixteen bytes at a
 * time: mail from IMAP is nearly always CRLF already. */
static int
msg_bare_lf(const char *raw, size_t len)
{
	const msg_v16 lf = { '\n', '\n', '\n', '\n', '\n', '\n', '\n',
	    '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n' };
	const msg_v16 cr = lf + ('\r' - '\n');
	size_t i = 0;

	if (len > 0 && raw[0] == '\n')
		return 1;
	for (; i + 17 <= len; i += 16) {
		msg_v16 x, y, bad;
		uint64_t w[2];

		memcpy(&x, raw + i, 16);
		memcpy(&y, raw + i + 1, 16);
		bad = (y == lf) & (x != cr);
		memcpy(w, &bad, sizeof w);
		if ((w[0] | w[1]) != 0)
			return 1;
	}
	for (; i + 1 < len; i++)
		if (raw[i + 1] == '\n' && raw[i] != '\r')
			return 1;
	return 0;
}

/* Copies raw, turning every LF not preceded by CR into CRLF. */
static char *
msg_crlf(const char *raw, size_t len, size_t *outlen)
{
	const char *p = raw, *end = raw + len, *nl;
	size_t extra = 0, o = 0;
	int bare = msg_bare_lf(raw, len);
	char *b;

	while (bare && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (nl == raw || nl[-1] != '\r')
			extra++;
		p = nl + 1;
	}
	b = malloc(len + extra + 1);
	if (b == NULL)
		return NULL;
	if (extra == 0) {
		memcpy(b, raw, len);
		o = len;
	} else {
		for (p = raw; (nl = memchr(p, '\n', (size_t)(end - p)));
		    p = nl + 1) {
			memcpy(b + o, p, (size_t)(nl - p));
			o += (size_t)(nl - p);
			if (nl == raw || nl[-1] != '\r')
				b[o++] = '\r';
			b[o++] = '\n';
		}
		memcpy(b + o, p, (size_t)(end - p));
		o += (size_t)(end - p);
	}
	b[o] = '\0';
	*outlen = o;
	return b;
}

/* Index just past the CRLF ending the line at p, or len. */
static size_t
msg_eol(const char *b, size_t p, size_t len)
{
	const char *nl = memchr(b + p, '\n', len - p);
	return nl ? (size_t)(nl - b) + 1 : len;
}

static int
msg_add(struct msg *m, size_t start, size_t end, char *err, size_t errlen)
{
	struct msg_header *h;
	const char *colon, *name_end;
	size_t vend = end;

	if (m->nhdrs >= MSG_MAX_HEADERS) {
		snprintf(err, errlen, "more than %u header fields",
		    MSG_MAX_HEADERS);
		return -1;
	}
	if (end - start > MSG_MAX_FIELD) {
		snprintf(err, errlen, "header field of %zu bytes (limit %u)",
		    end - start, MSG_MAX_FIELD);
		return -1;
	}
	colon = memchr(m->buf + start, ':', end - start);
	if (colon == NULL || colon == m->buf + start) {
		snprintf(err, errlen, "header line %zu is not a field",
		    m->nhdrs + 1);
		return -1;
	}
	/* RFC 5322 4.5 (obsolete syntax): whitespace before the colon. */
	name_end = colon;
	while (name_end > m->buf + start &&
	    (name_end[-1] == ' ' || name_end[-1] == '\t'))
		name_end--;
	if (name_end == m->buf + start) {
		snprintf(err, errlen, "header line %zu has no field name",
		    m->nhdrs + 1);
		return -1;
	}
	for (const char *c = m->buf + start; c < name_end; c++) {
		/* RFC 5322 2.2: ftext is printable US-ASCII except colon. */
		if (*c <= ' ' || *c > '~') {
			snprintf(err, errlen, "header line %zu has a bad "
			    "field name", m->nhdrs + 1);
			return -1;
		}
	}
	h = &m->hdrs[m->nhdrs++];
	h->name = m->buf + start;
	h->namelen = (size_t)(name_end - h->name);
	h->raw = m->buf + start;
	h->rawlen = end - start;
	if (vend >= start + 2 && m->buf[vend - 1] == '\n' &&
	    m->buf[vend - 2] == '\r')
		vend -= 2;
	h->value = colon + 1;
	h->valuelen = (size_t)(m->buf + vend - h->value);
	return 0;
}

int
msg_parse(const char *raw, size_t len, struct msg *m, char *err,
    size_t errlen)
{
	size_t p = 0, start = 0, cap = 64;
	int have = 0;

	memset(m, 0, sizeof *m);
	if (len > MSG_MAX_SIZE) {
		snprintf(err, errlen, "message of %zu bytes (limit %u)", len,
		    MSG_MAX_SIZE);
		return -1;
	}
	m->buf = msg_crlf(raw, len, &m->len);
	m->hdrs = malloc(cap * sizeof *m->hdrs);
	if (m->buf == NULL || m->hdrs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->body = m->buf + m->len;
	while (p < m->len) {
		size_t e = msg_eol(m->buf, p, m->len);
		int blank = (e - p == 2 && m->buf[p] == '\r');
		int cont = m->buf[p] == ' ' || m->buf[p] == '\t';

		if (have && !cont) {
			if (m->nhdrs == cap) {
				struct msg_header *n;
				cap *= 2;
				n = realloc(m->hdrs, cap * sizeof *n);
				if (n == NULL) {
					snprintf(err, errlen, "out of memory");
					return -1;
				}
				m->hdrs = n;
			}
			if (msg_add(m, start, p, err, errlen) != 0)
				return -1;
			have = 0;
		}
		if (blank) {
			m->body = m->buf + e;
			break;
		}
		if (!have) {
			if (cont) {
				snprintf(err, errlen, "message starts with "
				    "a continuation line");
				return -1;
			}
			start = p;
			have = 1;
		} else if (p - start > MSG_MAX_FIELD) {
			snprintf(err, errlen, "header field longer than %u "
			    "bytes", MSG_MAX_FIELD);
			return -1;
		}
		p = e;
	}
	/* Truncated: the header section ran to the end without a blank
	 * line; the last field still counts, and the body is empty. */
	if (have) {
		if (m->nhdrs == cap) {
			struct msg_header *n = realloc(m->hdrs,
			    (cap + 1) * sizeof *n);
			if (n == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			m->hdrs = n;
		}
		if (msg_add(m, start, m->len, err, errlen) != 0)
			return -1;
	}
	m->bodylen = (size_t)(m->buf + m->len - m->body);
	return 0;
}

int
msg_is(const struct msg_header *h, const char *name)
{
	size_t n = strlen(name);
	return h->namelen == n && strncasecmp(h->name, name, n) == 0;
}

char *
msg_value(const struct msg_header *h)
{
	char *s = malloc(h->valuelen + 1);
	size_t o = 0, b = 0, e;

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < h->valuelen; i++)
		if (h->value[i] != '\r' && h->value[i] != '\n')
			s[o++] = h->value[i];
	while (b < o && (s[b] == ' ' || s[b] == '\t'))
		b++;
	e = o;
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	memmove(s, s + b, e - b);
	s[e - b] = '\0';
	return s;
}
