/*
 * policy/dkim.h: DKIM verification (RFC 6376, RFC 8301, RFC 8463).
 */
#ifndef CALGATE_DKIM_H
#define CALGATE_DKIM_H

#include <stddef.h>
#include <time.h>

#include "policy/dns.h"
#include "policy/msg.h"

#define DKIM_MAX_SIGS		10	/* signatures checked per message */
#define DKIM_MAX_SIG_LEN	8192	/* one DKIM-Signature field */

/* RFC 8601 2.7.1 result words. */
enum dkim_res {
	DKIM_PASS = 0,
	DKIM_FAIL,		/* signature or body hash does not verify */
	DKIM_NEUTRAL,
	DKIM_POLICY,		/* verifies, but not acceptable: rsa-sha1,
				 * short key, expired, t=y, partial l= */
	DKIM_TEMPERROR,		/* key lookup SERVFAIL or timeout */
	DKIM_PERMERROR,		/* unusable signature or key; no key */
};

struct dkim_sig {
	char domain[256];	/* d=, lower case; "" if unusable */
	char selector[256];	/* s= */
	enum dkim_res result;
	char reason[160];	/* why, for the log; "" on pass */
	int crypto_ok;		/* the signature itself verified */
	int covers_from;	/* h= lists From */
};

struct dkim_result {
	struct dkim_sig sigs[DKIM_MAX_SIGS];
	size_t nsigs;
	size_t nignored;	/* signatures beyond DKIM_MAX_SIGS */
};

/*
 * Parsed key records kept between messages (one per thread, like its
 * struct dns): a record whose text is unchanged is not parsed again.
 * dkim_keys_new returns NULL when out of memory; NULL is also a valid
 * "no cache" everywhere.
 */
struct dkim_keys;
struct dkim_keys *dkim_keys_new(void);
void dkim_keys_free(struct dkim_keys *);

/*
 * Verifies every DKIM-Signature of m (the first DKIM_MAX_SIGS, top down)
 * at time now, fetching keys through dns and parsing them through keys
 * (or NULL). Fills out; never fails: every problem is a per-signature
 * result. Only DKIM_PASS counts as a pass. Starts every key lookup before
 * waiting for the first.
 */
void dkim_verify(struct dns *, struct dkim_keys *keys, const struct msg *m,
    time_t now, struct dkim_result *out);

/* Starts the key lookups of every signature dkim_verify will check. */
void dkim_prefetch(struct dns *, const struct msg *m);

/*
 * Verifies the DKIM-Signature field m->hdrs[idx] against the key record
 * keyrec (the joined TXT text) instead of DNS, parsing it through keys
 * (or NULL). For tests and tools.
 */
void dkim_verify_key(struct dkim_keys *keys, const struct msg *m,
    size_t idx, const char *keyrec, time_t now, struct dkim_sig *out);

/* "pass", "fail", "neutral", "policy", "temperror", "permerror". */
const char *dkim_res_str(enum dkim_res);

/*
 * Parses a tag=value list (RFC 6376 3.2). Returns the number of tags, or
 * -1 on a syntax error or duplicate tag (sentence in err). names and
 * values receive malloc'd strings (values with whitespace kept inside,
 * trimmed at the ends); free them with dkim_tags_free. Exposed for the
 * key record and DMARC record parsers and the unit tests.
 */
#define DKIM_MAX_TAGS	64
int dkim_tags(const char *s, size_t len, char **names, char **values,
    char *err, size_t errlen);
void dkim_tags_free(char **names, char **values, int n);

/*
 * Decodes base64 in s (whitespace ignored, padding checked). Returns the
 * length written to out, or -1 for a bad character, bad padding or more
 * than outlen bytes.
 */
long dkim_base64(const char *s, unsigned char *out, size_t outlen);

/*
 * Canonicalises for tests: relaxed (1) or simple (0). body: the body with
 * trailing empty lines removed as RFC 6376 3.4.3/3.4.4 say; header: one
 * field. Returns a malloc'd string; caller frees.
 */
char *dkim_canon_body(const char *body, size_t len, int relaxed,
    size_t *outlen);
char *dkim_canon_header(const struct msg_header *, int relaxed);

#endif
