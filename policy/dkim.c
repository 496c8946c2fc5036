/*
 * policy/dkim.c: verifies every DKIM-Signature of a message (RFC 6376),
 * with the algorithm rules of RFC 8301 (rsa-sha1 and RSA keys under 1024
 * bits never pass) and RFC 8463 (ed25519-sha256). Crypto is GnuTLS.
 * Reports one RFC 8601 result per signature; what a pass means for the
 * message (alignment, DMARC, the gate) is left to dmarc.c and gate.c.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "policy/dkim.h"

#define DKIM_MAX_KEY	2048	/* decoded p= bytes: RSA-8192 SPKI fits */
#define DKIM_MAX_B	1024	/* decoded b= bytes: RSA-8192 */
#define DKIM_MAX_H	128	/* names in h= */
#define DKIM_MAX_KEYRECS 4	/* TXT records tried per selector */
#define DKIM_MIN_RSA	1024	/* RFC 8301 3.2 */
#define DKIM_BODY_CACHE	4
#define DKIM_KEY_CACHE	16	/* parsed key records kept by a dkim_keys */

enum dkim_alg { ALG_RSA_SHA256, ALG_RSA_SHA1, ALG_ED25519 };

/* One signature's tags, parsed. Pointers are into the tag arrays. */
struct dkim_tagset {
	char *names[DKIM_MAX_TAGS];
	char *values[DKIM_MAX_TAGS];
	int n;
};

struct dkim_sigspec {
	enum dkim_alg alg;
	int hrelaxed, brelaxed;
	const char *d, *s, *i, *b, *bh, *h;
	long long l;		/* -1: no l= */
	long long t, x;		/* -1: absent */
	char *hnames[DKIM_MAX_H];	/* into hblock */
	size_t nh;
	char *hblock;
};

/* Body hashes computed once per message for each (canon, l, hash). */
struct dkim_body_hash {
	int used, relaxed, sha1;
	long long l;
	unsigned char digest[32];
	unsigned long long canon_len;
};

struct dkim_ctx {
	struct dkim_body_hash bodies[DKIM_BODY_CACHE];
	struct dkim_keys *keys;		/* or NULL */
};

const char *
dkim_res_str(enum dkim_res r)
{
	static const char *const w[] = { "pass", "fail", "neutral", "policy",
	    "temperror", "permerror" };
	return (unsigned)r < 6 ? w[r] : "permerror";
}

/* ---- tag lists (RFC 6376 3.2) ---- */

static int
dkim_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies [b, e) trimmed of FWS to *o as a string; advances *o. */
static char *
dkim_trimcopy(const char *b, const char *e, char **o)
{
	char *s = *o;

	while (b < e && dkim_fws((unsigned char)*b))
		b++;
	while (e > b && dkim_fws((unsigned char)e[-1]))
		e--;
	memcpy(s, b, (size_t)(e - b));
	s[e - b] = '\0';
	*o = s + (e - b) + 1;
	return s;
}

/* All names and values of one list share one allocation, names[0]. */
void
dkim_tags_free(char **names, char **values, int n)
{
	(void)values;
	if (n > 0)
		free(names[0]);
}

int
dkim_tags(const char *s, size_t len, char **names, char **values,
    char *err, size_t errlen)
{
	const char *p = s, *end = s + len;
	char *block, *o;
	int n = 0;

	/* every copy is a piece of s plus its NUL */
	block = o = malloc(len + 2 * DKIM_MAX_TAGS + 1);
	if (block == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (p < end) {
		const char *nb, *ne, *vb, *ve;

		while (p < end && dkim_fws((unsigned char)*p))
			p++;
		if (p == end)
			break;		/* trailing ";" is allowed */
		nb = p;
		while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
		ne = p;
		if (ne == nb || !isalpha((unsigned char)*nb)) {
			snprintf(err, errlen, "bad tag name at offset %zu",
			    (size_t)(nb - s));
			goto bad;
		}
		while (p < end && dkim_fws((unsigned char)*p))
			p++;
		if (p == end || *p != '=') {
			snprintf(err, errlen, "tag \"%.*s\" has no \"=\"",
			    (int)(ne - nb > 32 ? 32 : ne - nb), nb);
			goto bad;
		}
		vb = ++p;
		while (p < end && *p != ';')
			p++;
		ve = p;
		if (p < end)
			p++;
		if (n == DKIM_MAX_TAGS) {
			snprintf(err, errlen, "more than %d tags",
			    DKIM_MAX_TAGS);
			goto bad;
		}
		names[n] = dkim_trimcopy(nb, ne, &o);
		values[n] = dkim_trimcopy(vb, ve, &o);
		n++;
		for (int i = 0; i < n - 1; i++) {
			if (!strcmp(names[i], names[n - 1])) {
				/* RFC 6376 3.2: duplicate tag names make
				 * the whole list invalid. */
				snprintf(err, errlen, "duplicate tag \"%s\"",
				    names[i]);
				goto bad;
			}
		}
	}
	if (n == 0)
		free(block);
	return n;
bad:
	free(block);
	return -1;
}

static const char *
dkim_tag(const struct dkim_tagset *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->names[i], name))
			return t->values[i];
	return NULL;
}

/* ---- base64 ---- */

/* Base64 alphabet values; DKIM_B64_WS for FWS (skipped), DKIM_B64_PAD
 * for '=', DKIM_B64_BAD for anything else. */
#define DKIM_B64_BAD	64
#define DKIM_B64_WS	65
#define DKIM_B64_PAD	66

static unsigned char dkim_b64[256];

static void
dkim_b64_init(void)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";

	memset(dkim_b64, DKIM_B64_BAD, sizeof dkim_b64);
	for (int i = 0; i < 64; i++)
		dkim_b64[(unsigned char)a[i]] = (unsigned char)i;
	dkim_b64[' '] = dkim_b64['\t'] = DKIM_B64_WS;
	dkim_b64['\r'] = dkim_b64['\n'] = DKIM_B64_WS;
	dkim_b64['='] = DKIM_B64_PAD;
}

long
dkim_base64(const char *s, unsigned char *out, size_t outlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0, nchars = 0;

	pthread_once(&once, dkim_b64_init);
	for (; *s; s++) {
		unsigned v = dkim_b64[(unsigned char)*s];

		if (v < 64) {
			if (pad)
				return -1;	/* data after padding */
			nchars++;
			acc = (acc << 6) | v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (o == outlen)
					return -1;
				out[o++] = (unsigned char)(acc >> bits);
				acc &= (1u << bits) - 1;
			}
		} else if (v == DKIM_B64_PAD) {
			pad++;
		} else if (v == DKIM_B64_BAD) {
			return -1;
		}
	}
	if (pad > 2 || (nchars % 4 == 1) ||
	    (pad && (nchars + (size_t)pad) % 4 != 0))
		return -1;
	return (long)o;
}

/* ---- canonicalisation (RFC 6376 3.4) ---- */

struct dkim_sink {
	gnutls_hash_hd_t h;	/* or NULL: collect into mem */
	char buf[4096];
	size_t n;
	unsigned long long total;	/* canonical bytes seen */
	long long limit;		/* -1: hash everything */
	char *mem;
	size_t memlen, memcap;
	int oom;
};

static void
dkim_sink_flush(struct dkim_sink *k)
{
	if (k->n == 0)
		return;
	if (k->h != NULL) {
		gnutls_hash(k->h, k->buf, k->n);
	} else if (!k->oom) {
		if (k->memlen + k->n + 1 > k->memcap) {
			size_t cap = (k->memcap + k->n + 1) * 2;
			char *m = realloc(k->mem, cap);
			if (m == NULL) {
				k->oom = 1;
				k->n = 0;
				return;
			}
			k->mem = m;
			k->memcap = cap;
		}
		memcpy(k->mem + k->memlen, k->buf, k->n);
		k->memlen += k->n;
		k->mem[k->memlen] = '\0';
	}
	k->n = 0;
}

static void
dkim_sink_put(struct dkim_sink *k, const char *p, size_t len)
{
	while (len > 0) {
		size_t take = len, room;

		/* RFC 6376 3.5 l=: only the first l bytes are hashed. */
		if (k->limit >= 0) {
			if (k->total >= (unsigned long long)k->limit)
				take = 0;
			else if ((unsigned long long)k->limit - k->total <
			    take)
				take = (size_t)((unsigned long long)k->limit -
				    k->total);
		}
		if (take == 0) {
			k->total += len;
			return;
		}
		room = sizeof k->buf - k->n;
		if (take > room)
			take = room;
		memcpy(k->buf + k->n, p, take);
		k->n += take;
		k->total += take;
		p += take;
		len -= take;
		if (k->n == sizeof k->buf)
			dkim_sink_flush(k);
	}
}

static void
dkim_crlfs(struct dkim_sink *k, size_t n)
{
	for (; n > 0; n--)
		dkim_sink_put(k, "\r\n", 2);
}

/* 1 if relaxed canonicalisation leaves the line as it is: no tab, no
 * run of spaces (trailing ones are already cut). Eight bytes at a time:
 * this runs over every body line. */
static int
dkim_plain_line(const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, hi = ones * 0x80;
	const uint64_t low7 = ~hi;
	uint64_t carry = 0;
	size_t i = 0;

	if (memchr(p, '\t', n) != NULL)
		return 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, t, sp;
		memcpy(&x, p + i, 8);
		t = x ^ (ones * ' ');
		/* exact: 0x80 in every byte that is a space */
		sp = ~(((t & low7) + low7) | t | low7);
		if ((sp & ((sp << 8) | carry)) != 0)
			return 0;
		carry = sp >> 56;
	}
	for (int prev = carry != 0; i < n; i++) {
		int sp = p[i] == ' ';
		if (sp && prev)
			return 0;
		prev = sp;
	}
	return 1;
}

/* Emits one relaxed body line (RFC 6376 3.4.4: WSP runs to one SP, none
 * at the end) with its CRLF, after the empty lines pending before it.
 * Returns 0 if the line is empty after canonicalisation. Writes straight
 * into the sink's buffer: this loop sees every byte of every body. */
static int
dkim_relaxed_line(struct dkim_sink *k, const char *p, size_t len,
    size_t *pending)
{
	size_t e = len;
	int space = 0;

	while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	if (e == 0)
		return 0;
	dkim_crlfs(k, *pending);
	*pending = 0;
	if (dkim_plain_line(p, e)) {
		/* Most lines: nothing to change. */
		dkim_sink_put(k, p, e);
		dkim_sink_put(k, "\r\n", 2);
		return 1;
	}
	for (size_t i = 0; i < e; i++) {
		char c = p[i];
		if (c == ' ' || c == '\t') {
			space = 1;
			continue;
		}
		if (k->n + 2 > sizeof k->buf || k->limit >= 0) {
			if (space)
				dkim_sink_put(k, " ", 1);
			dkim_sink_put(k, &c, 1);
		} else {
			if (space)
				k->buf[k->n++] = ' ';
			k->buf[k->n++] = c;
			k->total += 1 + (unsigned)space;
		}
		space = 0;
	}
	dkim_sink_put(k, "\r\n", 2);
	return 1;
}

/* Hashes p[0..len) straight from where it lies, after what the sink
 * holds: for spans already in canonical form, no copy. */
static void
dkim_sink_direct(struct dkim_sink *k, const char *p, size_t len)
{
	size_t take = len;

	if (k->h == NULL) {
		dkim_sink_put(k, p, len);
		return;
	}
	if (k->limit >= 0) {
		if (k->total >= (unsigned long long)k->limit)
			take = 0;
		else if ((unsigned long long)k->limit - k->total < take)
			take = (size_t)((unsigned long long)k->limit -
			    k->total);
	}
	dkim_sink_flush(k);
	if (take > 0)
		gnutls_hash(k->h, p, take);
	k->total += len;
}

typedef signed char dkim_v16 __attribute__((vector_size(16)));

/* 1 if b[0..len) is its own canonical form up to trailing empty lines:
 * every LF after a CR, it ends in CRLF, and (relaxed) no tab, no SP
 * before SP or CR. Sixteen bytes at a time; most bodies qualify. */
static int
dkim_body_clean(const char *b, size_t len, int relaxed)
{
	const dkim_v16 sp = { ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	    ' ', ' ', ' ', ' ', ' ', ' ', ' ' };
	const dkim_v16 tab = sp - (' ' - '\t'), cr = sp - (' ' - '\r');
	const dkim_v16 lf = sp - (' ' - '\n');
	size_t i = 0;

	if (len < 2 || b[0] == '\n' || b[len - 2] != '\r' ||
	    b[len - 1] != '\n')
		return 0;
	for (; i + 17 <= len; i += 16) {
		dkim_v16 x, y, bad;
		uint64_t w[2];

		memcpy(&x, b + i, 16);
		memcpy(&y, b + i + 1, 16);
		bad = (y == lf) & (x != cr);
		if (relaxed)
			bad |= (x == tab) | ((x == sp) & ((y == sp) |
			    (y == cr)));
		memcpy(w, &bad, sizeof w);
		if ((w[0] | w[1]) != 0)
			return 0;
	}
	for (; i + 1 < len; i++) {
		char x = b[i], y = b[i + 1];
		if ((y == '\n' && x != '\r') || (relaxed && (x == '\t' ||
		    (x == ' ' && (y == ' ' || y == '\r')))))
			return 0;
	}
	return 1;
}

static void
dkim_canon_body_sink(const char *b, size_t len, int relaxed,
    struct dkim_sink *k)
{
	size_t pos = 0, pending = 0;
	int any = 0;

	if (dkim_body_clean(b, len, relaxed)) {
		/* RFC 6376 3.4.3/3.4.4: only trailing empty lines go; a
		 * body of nothing else is empty (relaxed) or one CRLF. */
		while (len >= 4 && !memcmp(b + len - 4, "\r\n\r\n", 4))
			len -= 2;
		if (len == 2)
			len = relaxed ? 0 : 2;
		dkim_sink_direct(k, b, len);
		dkim_sink_flush(k);
		return;
	}

	while (pos < len) {
		const char *nl = memchr(b + pos, '\n', len - pos);
		size_t e = nl ? (size_t)(nl - b) + 1 : len;
		size_t cl = e - pos;	/* content length without CRLF */

		if (nl != NULL && cl >= 2 && b[e - 2] == '\r')
			cl -= 2;
		else if (nl != NULL)
			cl -= 1;
		if (relaxed) {
			if (dkim_relaxed_line(k, b + pos, cl, &pending))
				any = 1;
			else
				pending++;
		} else if (cl == 0) {
			pending++;
		} else {
			dkim_crlfs(k, pending);
			pending = 0;
			dkim_sink_put(k, b + pos, cl);
			dkim_sink_put(k, "\r\n", 2);
			any = 1;
		}
		pos = e;
	}
	/* RFC 6376 3.4.3: an empty body is one CRLF under simple. */
	if (!relaxed && !any)
		dkim_sink_put(k, "\r\n", 2);
	dkim_sink_flush(k);
}

char *
dkim_canon_body(const char *body, size_t len, int relaxed, size_t *outlen)
{
	struct dkim_sink k;

	memset(&k, 0, sizeof k);
	k.limit = -1;
	dkim_canon_body_sink(body, len, relaxed, &k);
	if (k.oom || k.mem == NULL) {
		if (!k.oom && (k.mem = malloc(1)) != NULL) {
			k.mem[0] = '\0';
			*outlen = 0;
			return k.mem;
		}
		free(k.mem);
		return NULL;
	}
	*outlen = k.memlen;
	return k.mem;
}

/* One byte into the sink: the relaxed header loop's inner step. */
static inline void
dkim_sink_byte(struct dkim_sink *k, char c)
{
	if (k->limit < 0 && k->n < sizeof k->buf) {
		k->buf[k->n++] = c;
		k->total++;
		if (k->n == sizeof k->buf)
			dkim_sink_flush(k);
	} else {
		dkim_sink_put(k, &c, 1);
	}
}

/* Appends one header field, canonicalised, with its CRLF unless nocrlf. */
static void
dkim_canon_hdr_sink(const char *raw, size_t rawlen, size_t namelen,
    int relaxed, int nocrlf, struct dkim_sink *k)
{
	const char *v, *end = raw + rawlen;
	int space = 0, started = 0;

	if (!relaxed) {
		if (nocrlf && rawlen >= 2 && end[-1] == '\n' &&
		    end[-2] == '\r')
			rawlen -= 2;
		dkim_sink_put(k, raw, rawlen);
		return;
	}
	/* RFC 6376 3.4.2: lower-case name, unfold, WSP runs to one SP, no
	 * WSP at either end of the value or around the colon. */
	for (size_t i = 0; i < namelen; i++)
		dkim_sink_byte(k, (char)tolower((unsigned char)raw[i]));
	dkim_sink_byte(k, ':');
	v = memchr(raw, ':', rawlen);
	v = v ? v + 1 : end;
	for (; v < end; v++) {
		if (*v == '\r' || *v == '\n')
			continue;
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space && started)
			dkim_sink_byte(k, ' ');
		space = 0;
		started = 1;
		dkim_sink_byte(k, *v);
	}
	if (!nocrlf)
		dkim_sink_put(k, "\r\n", 2);
}

char *
dkim_canon_header(const struct msg_header *h, int relaxed)
{
	struct dkim_sink k;

	memset(&k, 0, sizeof k);
	k.limit = -1;
	dkim_canon_hdr_sink(h->raw, h->rawlen, h->namelen, relaxed, 0, &k);
	dkim_sink_flush(&k);
	if (k.oom) {
		free(k.mem);
		return NULL;
	}
	return k.mem ? k.mem : strdup("");
}

/* ---- signature fields ---- */

static void
dkim_set(struct dkim_sig *o, enum dkim_res r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
dkim_set(struct dkim_sig *o, enum dkim_res r, const char *fmt, ...)
{
	va_list ap;

	o->result = r;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
}

static int
dkim_digits(const char *s, long long *out)
{
	long long v = 0;

	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

static void
dkim_lower_copy(char *dst, size_t n, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static void
dkim_spec_free(struct dkim_sigspec *sp)
{
	free(sp->hblock);
	sp->hblock = NULL;
	sp->nh = 0;
}

/* Splits h= into names; 0, or -1 with the reason in o. */
static int
dkim_split_h(struct dkim_sigspec *sp, struct dkim_sig *o)
{
	const char *p = sp->h;
	char *w;

	/* the names are pieces of h= plus their NULs */
	sp->hblock = w = malloc(strlen(p) + DKIM_MAX_H + 1);
	if (w == NULL) {
		dkim_set(o, DKIM_TEMPERROR, "out of memory");
		return -1;
	}
	while (*p) {
		const char *e = strchr(p, ':');
		if (e == NULL)
			e = p + strlen(p);
		if (sp->nh == DKIM_MAX_H) {
			dkim_set(o, DKIM_PERMERROR, "more than %d names in h=",
			    DKIM_MAX_H);
			return -1;
		}
		sp->hnames[sp->nh] = dkim_trimcopy(p, e, &w);
		if (sp->hnames[sp->nh][0] == '\0') {
			dkim_set(o, DKIM_PERMERROR, "empty name in h=");
			return -1;
		}
		if (!strcasecmp(sp->hnames[sp->nh], "from"))
			o->covers_from = 1;
		sp->nh++;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* RFC 6376 3.5: checks the tags of one signature into sp. */
static int
dkim_parse_spec(const struct dkim_tagset *t, struct dkim_sigspec *sp,
    struct dkim_sig *o)
{
	const char *v = dkim_tag(t, "v"), *a = dkim_tag(t, "a");
	const char *c = dkim_tag(t, "c"), *q = dkim_tag(t, "q");
	const char *l = dkim_tag(t, "l"), *ts = dkim_tag(t, "t");
	const char *x = dkim_tag(t, "x");

	memset(sp, 0, sizeof *sp);
	sp->d = dkim_tag(t, "d");
	sp->s = dkim_tag(t, "s");
	sp->b = dkim_tag(t, "b");
	sp->bh = dkim_tag(t, "bh");
	sp->h = dkim_tag(t, "h");
	sp->i = dkim_tag(t, "i");
	if (sp->d != NULL && dns_name_ldh(sp->d))
		dkim_lower_copy(o->domain, sizeof o->domain, sp->d);
	if (sp->s != NULL && dns_name_ldh(sp->s))
		dkim_lower_copy(o->selector, sizeof o->selector, sp->s);
	if (v == NULL || a == NULL || sp->b == NULL || sp->bh == NULL ||
	    sp->d == NULL || sp->h == NULL || sp->s == NULL) {
		dkim_set(o, DKIM_PERMERROR, "missing required tag (v, a, b, "
		    "bh, d, h, s)");
		return -1;
	}
	if (strcmp(v, "1")) {
		dkim_set(o, DKIM_PERMERROR, "unsupported version v=%.16s", v);
		return -1;
	}
	if (o->domain[0] == '\0' || o->selector[0] == '\0') {
		dkim_set(o, DKIM_PERMERROR, "d= or s= is not a domain name");
		return -1;
	}
	if (!strcmp(a, "rsa-sha256"))
		sp->alg = ALG_RSA_SHA256;
	else if (!strcmp(a, "ed25519-sha256"))
		sp->alg = ALG_ED25519;
	else if (!strcmp(a, "rsa-sha1"))
		sp->alg = ALG_RSA_SHA1;
	else {
		dkim_set(o, DKIM_PERMERROR, "unknown algorithm a=%.32s", a);
		return -1;
	}
	if (c != NULL) {
		char hc[16] = "", bc[16] = "simple";
		const char *sl = strchr(c, '/');
		size_t hl = sl ? (size_t)(sl - c) : strlen(c);
		if (hl >= sizeof hc || (sl && strlen(sl + 1) >= sizeof bc)) {
			dkim_set(o, DKIM_PERMERROR, "bad c=");
			return -1;
		}
		memcpy(hc, c, hl);
		hc[hl] = '\0';
		if (sl)
			strcpy(bc, sl + 1);
		if ((strcmp(hc, "simple") && strcmp(hc, "relaxed")) ||
		    (strcmp(bc, "simple") && strcmp(bc, "relaxed"))) {
			dkim_set(o, DKIM_PERMERROR, "unknown c=%.32s", c);
			return -1;
		}
		sp->hrelaxed = !strcmp(hc, "relaxed");
		sp->brelaxed = !strcmp(bc, "relaxed");
	}
	if (q != NULL && strstr(q, "dns/txt") == NULL) {
		dkim_set(o, DKIM_PERMERROR, "unsupported q=%.32s", q);
		return -1;
	}
	sp->l = sp->t = sp->x = -1;
	if ((l && dkim_digits(l, &sp->l)) || (ts && dkim_digits(ts, &sp->t)) ||
	    (x && dkim_digits(x, &sp->x))) {
		dkim_set(o, DKIM_PERMERROR, "l=, t= or x= is not a number");
		return -1;
	}
	if (sp->t >= 0 && sp->x >= 0 && sp->x < sp->t) {
		dkim_set(o, DKIM_PERMERROR, "x= is before t=");
		return -1;
	}
	if (dkim_split_h(sp, o) != 0)
		return -1;
	if (!o->covers_from) {
		/* RFC 6376 5.4: From MUST be signed. */
		dkim_set(o, DKIM_PERMERROR, "From is not signed (h=)");
		return -1;
	}
	return 0;
}

/* RFC 6376 3.5 i=: its domain is d= or a subdomain of it. */
static int
dkim_check_i(const char *i, const char *d, int strict, struct dkim_sig *o)
{
	const char *at = strrchr(i, '@');
	size_t il, dl = strlen(d);

	if (at == NULL) {
		dkim_set(o, DKIM_PERMERROR, "i= has no \"@\"");
		return -1;
	}
	at++;
	il = strlen(at);
	if (!strcasecmp(at, d))
		return 0;
	if (!strict && il > dl && at[il - dl - 1] == '.' &&
	    !strcasecmp(at + il - dl, d))
		return 0;
	dkim_set(o, DKIM_PERMERROR, strict ? "i= domain is not d= and the key "
	    "has t=s" : "i= domain is not d= or a subdomain of it");
	return -1;
}

/* ---- hashing ---- */

static void
dkim_body_hash(const struct msg *m, const struct dkim_sigspec *sp,
    struct dkim_ctx *cx, struct dkim_body_hash **out)
{
	int sha1 = sp->alg == ALG_RSA_SHA1;
	struct dkim_body_hash *bh = NULL;
	struct dkim_sink k;

	for (int i = 0; i < DKIM_BODY_CACHE; i++) {
		struct dkim_body_hash *c = &cx->bodies[i];
		if (c->used && c->relaxed == sp->brelaxed && c->l == sp->l &&
		    c->sha1 == sha1) {
			*out = c;
			return;
		}
		if (!c->used && bh == NULL)
			bh = c;
	}
	if (bh == NULL)
		bh = &cx->bodies[0];	/* more combinations: recompute */
	memset(&k, 0, sizeof k);
	k.limit = sp->l;
	if (gnutls_hash_init(&k.h, sha1 ? GNUTLS_DIG_SHA1 :
	    GNUTLS_DIG_SHA256) != 0) {
		*out = NULL;
		return;
	}
	dkim_canon_body_sink(m->body, m->bodylen, sp->brelaxed, &k);
	gnutls_hash_deinit(k.h, bh->digest);
	bh->used = 1;
	bh->relaxed = sp->brelaxed;
	bh->l = sp->l;
	bh->sha1 = sha1;
	bh->canon_len = k.total;
	*out = bh;
}

/* The header hash input: the h= fields bottom-up, then this signature
 * with its b= value emptied (RFC 6376 3.7). Returns 0 and the digest. */
static int
dkim_header_hash(const struct msg *m, size_t idx,
    const struct dkim_sigspec *sp, unsigned char *digest)
{
	const struct msg_header *sig = &m->hdrs[idx];
	unsigned char used[MSG_MAX_HEADERS];
	struct dkim_sink k;
	const char *bv = NULL, *be = NULL, *p;

	memset(&k, 0, sizeof k);
	k.limit = -1;
	if (gnutls_hash_init(&k.h, sp->alg == ALG_RSA_SHA1 ?
	    GNUTLS_DIG_SHA1 : GNUTLS_DIG_SHA256) != 0)
		return -1;
	memset(used, 0, m->nhdrs < sizeof used ? m->nhdrs : sizeof used);
	/* RFC 6376 3.5 h=: the signature being verified did not exist when
	 * it was made; an h= that names DKIM-Signature means others. */
	used[idx] = 1;
	for (size_t i = 0; i < sp->nh; i++) {
		for (size_t j = m->nhdrs; j-- > 0;) {
			if (used[j] || !msg_is(&m->hdrs[j], sp->hnames[i]))
				continue;
			used[j] = 1;
			dkim_canon_hdr_sink(m->hdrs[j].raw, m->hdrs[j].rawlen,
			    m->hdrs[j].namelen, sp->hrelaxed, 0, &k);
			break;
		}
		/* not found: an over-signed name contributes nothing */
	}
	/* Find the b= tag's value in the raw field, tag boundaries only. */
	p = sig->value;
	for (const char *end = sig->value + sig->valuelen; p < end;) {
		const char *nb;
		while (p < end && dkim_fws((unsigned char)*p))
			p++;
		nb = p;
		while (p < end && *p != '=' && *p != ';' &&
		    !dkim_fws((unsigned char)*p))
			p++;
		if (p - nb == 1 && *nb == 'b') {
			while (p < end && dkim_fws((unsigned char)*p))
				p++;
			if (p < end && *p == '=') {
				bv = p + 1;
				be = memchr(bv, ';', (size_t)(end - bv));
				if (be == NULL)
					be = end;
				break;
			}
		}
		p = memchr(p, ';', (size_t)(end - p));
		if (p == NULL)
			break;
		p++;
	}
	if (bv == NULL) {
		gnutls_hash_deinit(k.h, digest);
		return -1;
	}
	{
		size_t a = (size_t)(bv - sig->raw), rest;
		size_t blen = sig->valuelen - (size_t)(be - sig->value);
		char stack[DKIM_MAX_SIG_LEN + 1];
		char *tmp = sig->rawlen < sizeof stack ? stack :
		    malloc(sig->rawlen + 1);
		if (tmp == NULL) {
			gnutls_hash_deinit(k.h, digest);
			return -1;
		}
		memcpy(tmp, sig->raw, a);
		rest = blen;
		memcpy(tmp + a, be, rest);
		dkim_canon_hdr_sink(tmp, a + rest, sig->namelen, sp->hrelaxed,
		    1, &k);
		if (tmp != stack)
			free(tmp);
	}
	dkim_sink_flush(&k);
	gnutls_hash_deinit(k.h, digest);
	return 0;
}

/* ---- keys (RFC 6376 3.6.1) ---- */

struct dkim_key {
	gnutls_pubkey_t pub;
	unsigned bits;
	int testing;		/* t=y */
	int strict;		/* t=s */
};

/* DER: reads a length at *p; returns it or -1. */
static long
dkim_der_len(const unsigned char **p, const unsigned char *end)
{
	long len;
	int n;

	if (*p >= end)
		return -1;
	len = *(*p)++;
	if (len < 0x80)
		return len <= end - *p ? len : -1;
	n = (int)(len & 0x7f);
	if (n == 0 || n > 3)
		return -1;
	for (len = 0; n > 0; n--) {
		if (*p >= end)
			return -1;
		len = (len << 8) | *(*p)++;
	}
	return len <= end - *p ? len : -1;
}

/* A bare PKCS#1 RSAPublicKey (some publish that instead of SPKI). */
static int
dkim_import_pkcs1(gnutls_pubkey_t pub, const unsigned char *der, size_t len)
{
	const unsigned char *p = der, *end = der + len;
	gnutls_datum_t n, e;
	long l;

	if (p >= end || *p++ != 0x30 || (l = dkim_der_len(&p, end)) < 0)
		return -1;
	end = p + l;
	if (p >= end || *p++ != 0x02 || (l = dkim_der_len(&p, end)) <= 0)
		return -1;
	n.data = (unsigned char *)p;
	n.size = (unsigned)l;
	p += l;
	if (p >= end || *p++ != 0x02 || (l = dkim_der_len(&p, end)) <= 0)
		return -1;
	e.data = (unsigned char *)p;
	e.size = (unsigned)l;
	if (p + l != end)
		return -1;
	return gnutls_pubkey_import_rsa_raw(pub, &n, &e) == 0 ? 0 : -1;
}

/* An RSA SubjectPublicKeyInfo (RFC 5280 4.1, RFC 3279 2.3.1), the usual
 * p= content, read directly: the algorithm must be exactly rsaEncryption
 * with NULL parameters. Anything else returns -1 and is left to
 * gnutls_pubkey_import (libtasn1 costs more than the rest of the key). */
static int
dkim_import_spki(gnutls_pubkey_t pub, const unsigned char *der, size_t len)
{
	static const unsigned char rsa_alg[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a,
	    0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00 };
	const unsigned char *p = der, *end = der + len;
	long l;

	if (p >= end || *p++ != 0x30 || (l = dkim_der_len(&p, end)) < 0 ||
	    p + l != end)
		return -1;
	if ((size_t)(end - p) < sizeof rsa_alg ||
	    memcmp(p, rsa_alg, sizeof rsa_alg) != 0)
		return -1;
	p += sizeof rsa_alg;
	if (p >= end || *p++ != 0x03 || (l = dkim_der_len(&p, end)) < 1 ||
	    p + l != end || *p++ != 0x00)
		return -1;	/* BIT STRING, no unused bits, to the end */
	return dkim_import_pkcs1(pub, p, (size_t)(end - p));
}

static int
dkim_list_has(const char *list, const char *word)
{
	const char *p = list;
	size_t wl = strlen(word);

	while (*p) {
		const char *e = strchr(p, ':');
		const char *b = p, *ee;
		if (e == NULL)
			e = p + strlen(p);
		ee = e;
		while (b < ee && dkim_fws((unsigned char)*b))
			b++;
		while (ee > b && dkim_fws((unsigned char)ee[-1]))
			ee--;
		if ((size_t)(ee - b) == wl && !strncasecmp(b, word, wl))
			return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* Parses and imports one key record; 0, or -1 with the reason in o. */
static int
dkim_parse_key(const char *rec, enum dkim_alg alg, struct dkim_key *key,
    struct dkim_sig *o)
{
	struct dkim_tagset t;
	const char *v, *k, *h, *s, *fl, *p;
	unsigned char der[DKIM_MAX_KEY];
	char err[96];
	long dl;
	int ret = -1;

	memset(key, 0, sizeof *key);
	t.n = dkim_tags(rec, strlen(rec), t.names, t.values, err, sizeof err);
	if (t.n < 0) {
		dkim_set(o, DKIM_PERMERROR, "key record: %s", err);
		return -1;
	}
	v = dkim_tag(&t, "v");
	k = dkim_tag(&t, "k");
	h = dkim_tag(&t, "h");
	s = dkim_tag(&t, "s");
	fl = dkim_tag(&t, "t");
	p = dkim_tag(&t, "p");
	if (v != NULL && (strcmp(t.names[0], "v") || strcmp(v, "DKIM1"))) {
		dkim_set(o, DKIM_PERMERROR, "key record: bad v=");
		goto out;
	}
	if (p == NULL) {
		dkim_set(o, DKIM_PERMERROR, "key record: no p=");
		goto out;
	}
	if (p[0] == '\0') {
		dkim_set(o, DKIM_PERMERROR, "key revoked (empty p=)");
		goto out;
	}
	if (k == NULL)
		k = "rsa";
	if ((alg == ALG_ED25519) != !strcmp(k, "ed25519") ||
	    (alg != ALG_ED25519 && strcmp(k, "rsa"))) {
		dkim_set(o, DKIM_PERMERROR, "key type k=%.16s does not match "
		    "a=", k);
		goto out;
	}
	if (h != NULL && !dkim_list_has(h, alg == ALG_RSA_SHA1 ? "sha1" :
	    "sha256")) {
		dkim_set(o, DKIM_PERMERROR, "key h= does not allow the hash");
		goto out;
	}
	if (s != NULL && !dkim_list_has(s, "*") && !dkim_list_has(s,
	    "email")) {
		dkim_set(o, DKIM_PERMERROR, "key s= is not for email");
		goto out;
	}
	if (fl != NULL) {
		key->testing = dkim_list_has(fl, "y");
		key->strict = dkim_list_has(fl, "s");
	}
	dl = dkim_base64(p, der, sizeof der);
	if (dl <= 0) {
		dkim_set(o, DKIM_PERMERROR, "key p= is not base64");
		goto out;
	}
	if (gnutls_pubkey_init(&key->pub) != 0) {
		dkim_set(o, DKIM_TEMPERROR, "out of memory");
		goto out;
	}
	if (alg == ALG_ED25519) {
		gnutls_datum_t x = { der, (unsigned)dl };
		if (dl != 32 || gnutls_pubkey_import_ecc_raw(key->pub,
		    GNUTLS_ECC_CURVE_ED25519, &x, NULL) != 0) {
			dkim_set(o, DKIM_PERMERROR, "bad ed25519 key");
			goto out;
		}
		key->bits = 256;
	} else {
		gnutls_datum_t d = { der, (unsigned)dl };
		unsigned bits = 0;
		if (dkim_import_spki(key->pub, der, (size_t)dl) != 0 &&
		    gnutls_pubkey_import(key->pub, &d, GNUTLS_X509_FMT_DER)
		    != 0 && dkim_import_pkcs1(key->pub, der, (size_t)dl)
		    != 0) {
			dkim_set(o, DKIM_PERMERROR, "bad RSA key");
			goto out;
		}
		if (gnutls_pubkey_get_pk_algorithm(key->pub, &bits) !=
		    GNUTLS_PK_RSA) {
			dkim_set(o, DKIM_PERMERROR, "key is not RSA");
			goto out;
		}
		key->bits = bits;
	}
	ret = 0;
out:
	if (ret != 0 && key->pub != NULL) {
		gnutls_pubkey_deinit(key->pub);
		key->pub = NULL;
	}
	dkim_tags_free(t.names, t.values, t.n);
	return ret;
}

/* Parsed key records, reused while their text stays the same: the keys
 * of busy senders are parsed (base64, DER, GnuTLS import) once, not once
 * a message. Keyed by the exact record and the signature's algorithm
 * (the record's k= and h= are checked against it); one per thread. */
struct dkim_keys {
	struct {
		char *rec;
		enum dkim_alg alg;
		struct dkim_key key;
	} e[DKIM_KEY_CACHE];
	unsigned next;		/* the slot to reuse when all are taken */
};

struct dkim_keys *
dkim_keys_new(void)
{
	return calloc(1, sizeof(struct dkim_keys));
}

void
dkim_keys_free(struct dkim_keys *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < DKIM_KEY_CACHE; i++) {
		free(c->e[i].rec);
		if (c->e[i].key.pub != NULL)
			gnutls_pubkey_deinit(c->e[i].key.pub);
	}
	free(c);
}

static struct dkim_key *
dkim_keys_get(struct dkim_keys *c, const char *rec, enum dkim_alg alg)
{
	if (c == NULL)
		return NULL;
	for (unsigned i = 0; i < DKIM_KEY_CACHE; i++)
		if (c->e[i].rec != NULL && c->e[i].alg == alg &&
		    strcmp(c->e[i].rec, rec) == 0)
			return &c->e[i].key;
	return NULL;
}

/* Keeps a freshly parsed key; returns where it now lives (the cache, or
 * still *k when there is no cache or no memory). */
static struct dkim_key *
dkim_keys_put(struct dkim_keys *c, const char *rec, enum dkim_alg alg,
    struct dkim_key *k)
{
	char *copy;
	unsigned i;

	if (c == NULL || (copy = strdup(rec)) == NULL)
		return k;
	i = c->next;
	c->next = (c->next + 1) % DKIM_KEY_CACHE;
	free(c->e[i].rec);
	if (c->e[i].key.pub != NULL)
		gnutls_pubkey_deinit(c->e[i].key.pub);
	c->e[i].rec = copy;
	c->e[i].alg = alg;
	c->e[i].key = *k;
	k->pub = NULL;		/* the cache owns it now */
	return &c->e[i].key;
}

/* Verifies the signature over digest; 1 if it verifies. */
static int
dkim_crypto(const struct dkim_key *key, enum dkim_alg alg,
    const unsigned char *digest, const unsigned char *sig, size_t siglen)
{
	gnutls_datum_t h = { (unsigned char *)digest,
	    alg == ALG_RSA_SHA1 ? 20 : 32 };
	gnutls_datum_t s = { (unsigned char *)sig, (unsigned)siglen };

	if (alg == ALG_ED25519)
		/* RFC 8463 3: Ed25519 signs the SHA-256 hash itself. */
		return gnutls_pubkey_verify_data2(key->pub,
		    GNUTLS_SIGN_EDDSA_ED25519, 0, &h, &s) >= 0;
	if (alg == ALG_RSA_SHA1)
		return gnutls_pubkey_verify_hash2(key->pub,
		    GNUTLS_SIGN_RSA_SHA1,
		    GNUTLS_VERIFY_ALLOW_SIGN_WITH_SHA1, &h, &s) >= 0;
	return gnutls_pubkey_verify_hash2(key->pub, GNUTLS_SIGN_RSA_SHA256, 0,
	    &h, &s) >= 0;
}

/* ---- one signature ---- */

/* Everything after the key: i=/t=s, hashes, crypto, then the rules that
 * make a verified signature unacceptable (RFC 8301, x=, t=y, l=). */
static void
dkim_with_key(const struct msg *m, size_t idx, const struct dkim_sigspec *sp,
    const char *rec, time_t now, struct dkim_ctx *cx, struct dkim_sig *o)
{
	struct dkim_key own, *kp;
	struct dkim_body_hash *bh;
	unsigned char bhv[32], b[DKIM_MAX_B], hd[32];
	size_t hlen = sp->alg == ALG_RSA_SHA1 ? 20 : 32;
	long bl, bhl;

	memset(&own, 0, sizeof own);
	if ((kp = dkim_keys_get(cx->keys, rec, sp->alg)) == NULL) {
		if (dkim_parse_key(rec, sp->alg, &own, o) != 0)
			return;
		kp = dkim_keys_put(cx->keys, rec, sp->alg, &own);
	}
	if (sp->i != NULL && dkim_check_i(sp->i, o->domain, kp->strict, o))
		goto out;
	bhl = dkim_base64(sp->bh, bhv, sizeof bhv);
	bl = dkim_base64(sp->b, b, sizeof b);
	if (bhl != (long)hlen || bl <= 0) {
		dkim_set(o, DKIM_PERMERROR, "bh= or b= is not valid base64");
		goto out;
	}
	dkim_body_hash(m, sp, cx, &bh);
	if (bh == NULL) {
		dkim_set(o, DKIM_TEMPERROR, "hash unavailable");
		goto out;
	}
	if (sp->l >= 0 && (unsigned long long)sp->l > bh->canon_len) {
		dkim_set(o, DKIM_PERMERROR, "l=%lld is longer than the body",
		    sp->l);
		goto out;
	}
	if (memcmp(bh->digest, bhv, hlen) != 0) {
		dkim_set(o, DKIM_FAIL, "body hash mismatch");
		goto out;
	}
	if (dkim_header_hash(m, idx, sp, hd) != 0) {
		dkim_set(o, DKIM_PERMERROR, "no b= tag");
		goto out;
	}
	if (sp->alg != ALG_ED25519 && kp->bits < DKIM_MIN_RSA) {
		/* RFC 8301 3.2: not even worth the RSA operation. */
		dkim_set(o, DKIM_POLICY, "RSA key of %u bits (RFC 8301 needs "
		    "1024)", kp->bits);
		goto out;
	}
	if (!dkim_crypto(kp, sp->alg, hd, b, (size_t)bl)) {
		dkim_set(o, DKIM_FAIL, "signature does not verify");
		goto out;
	}
	o->crypto_ok = 1;
	if (sp->alg == ALG_RSA_SHA1)
		dkim_set(o, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
	else if (sp->x >= 0 && (long long)now > sp->x)
		dkim_set(o, DKIM_POLICY, "signature expired (x=%lld)", sp->x);
	else if (kp->testing)
		dkim_set(o, DKIM_POLICY, "key is in testing mode (t=y)");
	else if (sp->l >= 0 && (unsigned long long)sp->l < bh->canon_len)
		/* RFC 6376 8.2: text past l= is unsigned; never show it as
		 * verified. */
		dkim_set(o, DKIM_POLICY, "l= leaves %llu body bytes unsigned",
		    bh->canon_len - (unsigned long long)sp->l);
	else
		dkim_set(o, DKIM_PASS, "%s", "");
out:
	if (own.pub != NULL)	/* not taken by the cache */
		gnutls_pubkey_deinit(own.pub);
}

/* Parses the signature; returns 0 with sp filled, or -1 (o says why). */
static int
dkim_prepare(const struct msg *m, size_t idx, struct dkim_tagset *t,
    struct dkim_sigspec *sp, struct dkim_sig *o)
{
	const struct msg_header *h = &m->hdrs[idx];
	char err[96];

	memset(o, 0, sizeof *o);
	t->n = 0;
	if (h->rawlen > DKIM_MAX_SIG_LEN) {
		dkim_set(o, DKIM_PERMERROR, "DKIM-Signature too long (%zu "
		    "bytes)", h->rawlen);
		return -1;
	}
	t->n = dkim_tags(h->value, h->valuelen, t->names, t->values, err,
	    sizeof err);
	if (t->n < 0) {
		t->n = 0;
		dkim_set(o, DKIM_PERMERROR, "%s", err);
		return -1;
	}
	if (dkim_parse_spec(t, sp, o) != 0)
		return -1;
	return 0;
}

static int
dkim_rank(enum dkim_res r)
{
	switch (r) {
	case DKIM_PASS:		return 5;
	case DKIM_POLICY:	return 4;
	case DKIM_FAIL:		return 3;
	case DKIM_TEMPERROR:	return 2;
	default:		return 1;
	}
}

/* The key lookup and everything after it, for a prepared signature. */
static void
dkim_keyed(struct dns *dns, const struct msg *m, size_t idx,
    const struct dkim_sigspec *sp, time_t now, struct dkim_ctx *cx,
    struct dkim_sig *o)
{
	char name[600], **txt = NULL;
	size_t n = 0;
	enum dns_status st;

	snprintf(name, sizeof name, "%s._domainkey.%s", o->selector,
	    o->domain);
	st = dns_txt(dns, name, &txt, &n);
	if (st == DNS_TEMPFAIL) {
		dkim_set(o, DKIM_TEMPERROR, "key lookup failed (SERVFAIL or "
		    "timeout)");
		goto out;
	}
	if (st != DNS_OK) {
		dkim_set(o, DKIM_PERMERROR, "no key at %s (%s)", name,
		    dns_status_str(st));
		goto out;
	}
	/* RFC 6376 6.1.2: with several key records, try each. */
	for (size_t i = 0; i < n && i < DKIM_MAX_KEYRECS; i++) {
		struct dkim_sig try = *o;
		dkim_with_key(m, idx, sp, txt[i], now, cx, &try);
		if (i == 0 || dkim_rank(try.result) > dkim_rank(o->result))
			*o = try;
		if (o->result == DKIM_PASS)
			break;
	}
out:
	dns_txt_free(txt, n);
}

static void
dkim_one(struct dns *dns, const struct msg *m, size_t idx, const char *rec,
    time_t now, struct dkim_ctx *cx, struct dkim_sig *o)
{
	struct dkim_tagset t;
	struct dkim_sigspec sp;

	memset(&sp, 0, sizeof sp);
	if (dkim_prepare(m, idx, &t, &sp, o) == 0) {
		if (rec != NULL)
			dkim_with_key(m, idx, &sp, rec, now, cx, o);
		else
			dkim_keyed(dns, m, idx, &sp, now, cx, o);
	}
	dkim_spec_free(&sp);
	dkim_tags_free(t.names, t.values, t.n);
}

void
dkim_prefetch(struct dns *dns, const struct msg *m)
{
	size_t seen = 0;

	for (size_t i = 0; i < m->nhdrs && seen < DKIM_MAX_SIGS; i++) {
		struct dkim_tagset t;
		struct dkim_sigspec sp;
		struct dkim_sig o;
		char name[600];

		if (!msg_is(&m->hdrs[i], "DKIM-Signature"))
			continue;
		seen++;
		memset(&sp, 0, sizeof sp);
		if (dkim_prepare(m, i, &t, &sp, &o) == 0) {
			snprintf(name, sizeof name, "%s._domainkey.%s",
			    o.selector, o.domain);
			dns_prefetch(dns, name);
		}
		dkim_spec_free(&sp);
		dkim_tags_free(t.names, t.values, t.n);
	}
}

void
dkim_verify_key(struct dkim_keys *keys, const struct msg *m, size_t idx,
    const char *keyrec, time_t now, struct dkim_sig *out)
{
	struct dkim_ctx cx;

	memset(&cx, 0, sizeof cx);
	cx.keys = keys;
	dkim_one(NULL, m, idx, keyrec, now, &cx, out);
}

/* A signature parsed once, between its key prefetch and its check. */
struct dkim_prepared {
	struct dkim_tagset t;
	struct dkim_sigspec sp;
	int ok;
};

void
dkim_verify(struct dns *dns, struct dkim_keys *keys, const struct msg *m,
    time_t now, struct dkim_result *out)
{
	struct dkim_ctx cx;
	struct dkim_prepared *pre;
	size_t idx[DKIM_MAX_SIGS];

	memset(out, 0, sizeof *out);
	memset(&cx, 0, sizeof cx);
	cx.keys = keys;
	for (size_t i = 0; i < m->nhdrs; i++) {
		if (!msg_is(&m->hdrs[i], "DKIM-Signature"))
			continue;
		if (out->nsigs == DKIM_MAX_SIGS) {
			out->nignored++;
			continue;
		}
		idx[out->nsigs++] = i;
	}
	pre = calloc(out->nsigs ? out->nsigs : 1, sizeof *pre);
	if (pre == NULL) {
		/* parse each twice (dkim_prefetch did once), no worse */
		for (size_t k = 0; k < out->nsigs; k++)
			dkim_one(dns, m, idx[k], NULL, now, &cx,
			    &out->sigs[k]);
		return;
	}
	/* Every key lookup in flight before the first wait, as
	 * dkim_prefetch does, without parsing the signatures again. */
	for (size_t k = 0; k < out->nsigs; k++) {
		struct dkim_sig *o = &out->sigs[k];
		char name[600];

		pre[k].ok = dkim_prepare(m, idx[k], &pre[k].t, &pre[k].sp,
		    o) == 0;
		if (pre[k].ok) {
			snprintf(name, sizeof name, "%s._domainkey.%s",
			    o->selector, o->domain);
			dns_prefetch(dns, name);
		}
	}
	for (size_t k = 0; k < out->nsigs; k++) {
		if (pre[k].ok)
			dkim_keyed(dns, m, idx[k], &pre[k].sp, now, &cx,
			    &out->sigs[k]);
		dkim_spec_free(&pre[k].sp);
		dkim_tags_free(pre[k].t.names, pre[k].t.values, pre[k].t.n);
	}
	free(pre);
}
