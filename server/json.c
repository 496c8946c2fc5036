/*
 * server/json.c: the JSON writer and copier of json.h. It only writes;
 * json_copy parses just enough to re-emit a value, so text stored by one
 * part of calgate (the gate's `explain` detail) cannot break or inject into
 * a response built by another.
 */
#include "server/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
json_init(struct json *j)
{
	memset(j, 0, sizeof *j);
	j->first[0] = 1;
}

void
json_discard(struct json *j)
{
	free(j->buf);
	json_init(j);
}

char *
json_finish(struct json *j, size_t *len)
{
	char *out = j->buf;

	if (j->failed || j->depth != 0 || out == NULL) {
		json_discard(j);
		return NULL;
	}
	out[j->len] = '\0';
	if (len)
		*len = j->len;
	json_init(j);
	return out;
}

static void
put(struct json *j, const char *s, size_t n)
{
	if (j->failed)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 1024;
		char *b;

		while (cap < j->len + n + 1)
			cap *= 2;
		b = realloc(j->buf, cap);
		if (b == NULL) {
			j->failed = 1;
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void
putc_(struct json *j, char c)
{
	put(j, &c, 1);
}

/* Before any value or key: the comma that separates it from the last. */
static void
sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (!j->first[j->depth])
		putc_(j, ',');
	j->first[j->depth] = 0;
}

static void
open_(struct json *j, char c)
{
	sep(j);
	if (j->depth >= JSON_MAX_DEPTH) {
		j->failed = 1;
		return;
	}
	putc_(j, c);
	j->first[++j->depth] = 1;
}

static void
close_(struct json *j, char c)
{
	if (j->depth == 0 || j->after_key) {
		j->failed = 1;
		return;
	}
	j->depth--;
	putc_(j, c);
}

void json_obj_begin(struct json *j) { open_(j, '{'); }
void json_obj_end(struct json *j) { close_(j, '}'); }
void json_arr_begin(struct json *j) { open_(j, '['); }
void json_arr_end(struct json *j) { close_(j, ']'); }

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes), or 0.
 * RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

static void
put_string(struct json *j, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t i = 0, run = 0;

	putc_(j, '"');
	while (i < n) {
		unsigned char c = p[i];
		size_t l = utf8_len(p + i, n - i);
		const char *rep = NULL;

		if (l > 1) {
			/* U+2028/2029 end a line in older JavaScript. */
			if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				snprintf(esc, sizeof esc, "\\u202%c",
				    p[i + 2] == 0xa8 ? '8' : '9');
				rep = esc;
			} else {
				i += l;
				run += l;
				continue;
			}
		} else if (l == 0)
			rep = "\xef\xbf\xbd";		/* U+FFFD */
		else if (c == '"')
			rep = "\\\"";
		else if (c == '\\')
			rep = "\\\\";
		else if (c == '\n')
			rep = "\\n";
		else if (c == '\r')
			rep = "\\r";
		else if (c == '\t')
			rep = "\\t";
		else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' ||
		    c == '&') {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			rep = esc;
		}
		if (rep == NULL) {
			i++;
			run++;
			continue;
		}
		put(j, (const char *)p + i - run, run);
		run = 0;
		put(j, rep, strlen(rep));
		i += l ? l : 1;
	}
	put(j, (const char *)p + i - run, run);
	putc_(j, '"');
}

void
json_key(struct json *j, const char *name)
{
	if (j->depth == 0 || j->after_key) {
		j->failed = 1;
		return;
	}
	sep(j);
	put_string(j, name, strlen(name));
	putc_(j, ':');
	j->after_key = 1;
}

void
json_strn(struct json *j, const char *s, size_t n)
{
	sep(j);
	put_string(j, s, n);
}

void
json_str(struct json *j, const char *s)
{
	if (s == NULL)
		json_null(j);
	else
		json_strn(j, s, strlen(s));
}

void
json_int(struct json *j, int64_t v)
{
	char b[32];

	sep(j);
	put(j, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)v));
}

void
json_double(struct json *j, double v)
{
	char b[40];

	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	sep(j);
	put(j, b, (size_t)snprintf(b, sizeof b, "%.17g", v));
}

void
json_bool(struct json *j, int v)
{
	sep(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void
json_null(struct json *j)
{
	sep(j);
	put(j, "null", 4);
}

void
json_kstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void
json_kint(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void
json_kbool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	json_bool(j, v);
}

void
json_knull(struct json *j, const char *key)
{
	json_key(j, key);
	json_null(j);
}

/* ---- json_copy: a recursive-descent parser that writes as it goes ---- */

struct parser {
	const char *p, *end;
	struct json *out;		/* NULL: only validate */
	int depth, max_depth;
};

static void
ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
	    *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | cp >> 6);
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | cp >> 12);
		d[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | cp >> 18);
	d[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	d[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A \u escape at p (after the backslash-u); lone surrogates -> U+FFFD. */
static int
unicode_escape(struct parser *ps, unsigned *cp)
{
	unsigned hi, lo;

	if (ps->end - ps->p < 4 || hex4(ps->p, &hi))
		return -1;
	ps->p += 4;
	*cp = hi;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		*cp = 0xfffd;
	else if (hi >= 0xd800 && hi <= 0xdbff) {
		*cp = 0xfffd;
		if (ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
		    ps->p[1] == 'u' && hex4(ps->p + 2, &lo) == 0 &&
		    lo >= 0xdc00 && lo <= 0xdfff) {
			ps->p += 6;
			*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
		}
	}
	return 0;
}

/* A string at ps->p (on the quote); as a key when key != 0. */
static int
parse_string(struct parser *ps, int key)
{
	const char *start = ++ps->p;
	char *buf, *d;
	int rc = -1;

	/* Decoded text is never longer than its escaped source. */
	buf = malloc((size_t)(ps->end - start) + 1);
	if (buf == NULL)
		return -1;
	d = buf;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p++;
		unsigned cp;

		if (c < 0x20)
			goto out;
		if (c != '\\') {
			*d++ = (char)c;
			continue;
		}
		if (ps->p >= ps->end)
			goto out;
		c = (unsigned char)*ps->p++;
		switch (c) {
		case '"': case '\\': case '/': *d++ = (char)c; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			if (unicode_escape(ps, &cp))
				goto out;
			d += put_utf8(d, cp);
			break;
		default:
			goto out;
		}
	}
	if (ps->p >= ps->end)
		goto out;
	ps->p++;
	*d = '\0';
	if (ps->out && key)
		json_key(ps->out, buf);
	else if (ps->out)
		json_strn(ps->out, buf, (size_t)(d - buf));
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
digits(struct parser *ps)
{
	const char *s = ps->p;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > s ? 0 : -1;
}

static int
parse_number(struct parser *ps)
{
	const char *s = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (digits(ps))
		return -1;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (digits(ps))
			return -1;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (digits(ps))
			return -1;
	}
	if (ps->out) {
		sep(ps->out);
		put(ps->out, s, (size_t)(ps->p - s));
	}
	return 0;
}

static int
literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return -1;
	ps->p += n;
	if (ps->out) {
		sep(ps->out);
		put(ps->out, word, n);
	}
	return 0;
}

static int parse_value(struct parser *);

/* An object or array at ps->p (on the bracket). */
static int
parse_container(struct parser *ps)
{
	int obj = *ps->p == '{';
	char close = obj ? '}' : ']';

	if (++ps->depth > ps->max_depth)
		return -1;
	ps->p++;
	if (ps->out)
		(obj ? json_obj_begin : json_arr_begin)(ps->out);
	ws(ps);
	if (ps->p < ps->end && *ps->p == close)
		goto done;
	for (;;) {
		ws(ps);
		if (obj) {
			if (ps->p >= ps->end || *ps->p != '"' ||
			    parse_string(ps, 1))
				return -1;
			ws(ps);
			if (ps->p >= ps->end || *ps->p++ != ':')
				return -1;
		}
		if (parse_value(ps))
			return -1;
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close)
			break;
		return -1;
	}
done:
	ps->p++;
	ps->depth--;
	if (ps->out)
		(obj ? json_obj_end : json_arr_end)(ps->out);
	return 0;
}

static int
parse_value(struct parser *ps)
{
	ws(ps);
	if (ps->p >= ps->end)
		return -1;
	switch (*ps->p) {
	case '{': case '[': return parse_container(ps);
	case '"': return parse_string(ps, 0);
	case 't': return literal(ps, "true");
	case 'f': return literal(ps, "false");
	case 'n': return literal(ps, "null");
	default: return parse_number(ps);
	}
}

static int
parse_all(struct parser *ps, const char *in, size_t len)
{
	ps->p = in;
	ps->end = in + len;
	ps->depth = 0;
	if (parse_value(ps))
		return -1;
	ws(ps);
	return ps->p == ps->end ? 0 : -1;
}

int
json_copy(struct json *j, const char *in, size_t len)
{
	struct parser ps = { 0 };

	/* Validate first so that a bad text writes nothing at all. */
	ps.max_depth = JSON_MAX_DEPTH - j->depth;
	if (in == NULL || parse_all(&ps, in, len))
		return -1;
	ps.out = j;
	return parse_all(&ps, in, len);
}
