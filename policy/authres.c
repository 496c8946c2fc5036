/*
 * policy/authres.c: RFC 8601 Authentication-Results parsing, only as far
 * as calgate needs it: the authserv-id, and the spf method's result with
 * smtp.mailfrom / smtp.helo. Comments (nested, with quoted-pairs) and
 * quoted strings are handled; anything malformed makes the field unusable.
 * Which field to trust is the operator's choice (trusted_authserv_id);
 * what SPF means for DMARC is dmarc.c's business.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/authres.h"

#define AR_TOKEN	256

struct ar_lex {
	const char *p, *end;
};

/* Skips whitespace and comments; -1 on an unterminated comment. */
static int
ar_cfws(struct ar_lex *L)
{
	while (L->p < L->end) {
		if (*L->p == ' ' || *L->p == '\t' || *L->p == '\r' ||
		    *L->p == '\n') {
			L->p++;
		} else if (*L->p == '(') {
			int depth = 0;
			do {
				if (*L->p == '\\' && L->p + 1 < L->end)
					L->p++;
				else if (*L->p == '(')
					depth++;
				else if (*L->p == ')')
					depth--;
				L->p++;
			} while (depth > 0 && L->p < L->end);
			if (depth > 0)
				return -1;
		} else {
			break;
		}
	}
	return 0;
}

/* Reads a token or quoted string into buf; stops at CFWS and ; = /.
 * Returns its length, 0 if there is none, -1 on a syntax error. */
static int
ar_word(struct ar_lex *L, char *buf, size_t n)
{
	size_t o = 0;

	if (ar_cfws(L) != 0)
		return -1;
	if (L->p < L->end && *L->p == '"') {
		L->p++;
		while (L->p < L->end && *L->p != '"') {
			if (*L->p == '\\' && L->p + 1 < L->end)
				L->p++;
			if (o + 1 < n)
				buf[o++] = *L->p;
			L->p++;
		}
		if (L->p == L->end)
			return -1;
		L->p++;
		buf[o] = '\0';
		return o ? (int)o : -1;	/* "" is not a value we use */
	}
	while (L->p < L->end && !strchr(" \t\r\n();=/\"", *L->p)) {
		if (o + 1 < n)
			buf[o++] = *L->p;
		L->p++;
	}
	buf[o] = '\0';
	return (int)o;
}

static int
ar_punct(struct ar_lex *L, char c)
{
	if (ar_cfws(L) != 0)
		return -1;
	if (L->p < L->end && *L->p == c) {
		L->p++;
		return 1;
	}
	return 0;
}

static void
ar_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* One resinfo after its ";": method[/version]=result, reason, props. */
static int
ar_resinfo(struct ar_lex *L, struct authres_spf *spf, int *have_spf)
{
	char method[AR_TOKEN], result[AR_TOKEN], w[AR_TOKEN], v[AR_TOKEN];
	char mailfrom[AR_TOKEN] = "", helo[AR_TOKEN] = "";
	int is_spf;

	if (ar_word(L, method, sizeof method) <= 0)
		return -1;
	if (ar_punct(L, '/') == 1 && ar_word(L, w, sizeof w) <= 0)
		return -1;
	if (ar_punct(L, '=') != 1 || ar_word(L, result, sizeof result) <= 0)
		return -1;
	ar_lower(method);
	ar_lower(result);
	is_spf = !strcmp(method, "spf") && !*have_spf;
	for (;;) {
		int r = ar_word(L, w, sizeof w);
		if (r < 0)
			return -1;
		if (r == 0)
			break;		/* ";" or the end */
		if (ar_punct(L, '=') != 1)
			return -1;
		r = ar_word(L, v, sizeof v);
		if (r < 0)
			return -1;
		ar_lower(w);
		if (!strcmp(w, "smtp.mailfrom"))
			snprintf(mailfrom, sizeof mailfrom, "%s", v);
		else if (!strcmp(w, "smtp.helo"))
			snprintf(helo, sizeof helo, "%s", v);
	}
	if (is_spf) {
		const char *d = mailfrom[0] ? mailfrom : helo;
		const char *at = strrchr(d, '@');
		*have_spf = 1;
		snprintf(spf->result, sizeof spf->result, "%.15s", result);
		snprintf(spf->domain, sizeof spf->domain, "%s", at ? at + 1 :
		    d);
		ar_lower(spf->domain);
	}
	return 0;
}

int
authres_parse(const char *value, size_t len, char *id, size_t idlen,
    struct authres_spf *spf)
{
	struct ar_lex L = { value, value + len };
	char w[AR_TOKEN];
	int have_spf = 0, r;

	memset(spf, 0, sizeof *spf);
	strcpy(spf->result, "none");
	if (len > AUTHRES_MAX_LEN || ar_word(&L, w, sizeof w) <= 0)
		return -1;
	ar_lower(w);
	snprintf(id, idlen, "%s", w);
	snprintf(spf->source, sizeof spf->source, "%s", w);
	/* optional authres-version */
	r = ar_word(&L, w, sizeof w);
	if (r < 0)
		return -1;
	if (r > 0) {
		for (const char *c = w; *c; c++)
			if (!isdigit((unsigned char)*c))
				return -1;
	}
	for (;;) {
		r = ar_punct(&L, ';');
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (ar_cfws(&L) != 0)
			return -1;
		if (L.p == L.end)
			break;
		{
			/* "none": no results (RFC 8601 2.2) */
			const char *save = L.p;
			if (ar_word(&L, w, sizeof w) > 0 &&
			    !strcasecmp(w, "none") && ar_punct(&L, '=') == 0)
				continue;
			L.p = save;
		}
		if (ar_resinfo(&L, spf, &have_spf) != 0)
			return -1;
	}
	if (ar_cfws(&L) != 0 || L.p != L.end)
		return -1;
	return 0;
}

int
authres_spf(const struct msg *m, const char *trusted_id,
    struct authres_spf *spf)
{
	char id[AR_TOKEN];
	int r;

	if (trusted_id == NULL || trusted_id[0] == '\0')
		return 0;
	for (size_t i = 0; i < m->nhdrs; i++) {
		struct authres_spf tmp;
		if (!msg_is(&m->hdrs[i], "Authentication-Results"))
			continue;
		id[0] = '\0';
		r = authres_parse(m->hdrs[i].value, m->hdrs[i].valuelen, id,
		    sizeof id, &tmp);
		if (strcasecmp(id, trusted_id) != 0)
			continue;
		/* RFC 8601 5: the topmost field from the trusted ADMD, and
		 * only it: a broken one is not replaced by an older one
		 * further down, which the sender may have written. */
		if (r != 0) {
			memset(&tmp, 0, sizeof tmp);
			strcpy(tmp.result, "none");
			snprintf(tmp.source, sizeof tmp.source, "%s", id);
		}
		*spf = tmp;
		return 1;
	}
	return 0;
}
