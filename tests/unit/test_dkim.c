/*
 * tests/unit/test_dkim.c: DKIM without DNS: tag lists, base64,
 * canonicalisation, the RFC 8463 Appendix A example with its keys given
 * directly, and hostile input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/file.h"
#include "policy/dkim.h"
#include "policy/msg.h"
#include "tests/unit/check.h"
#include "tests/unit/rfc8463.h"


/* A fixture, whole (server/file.c's reader, bounded at 64 MiB). */
static char *
slurp(const char *path, size_t *len)
{
	char err[300];

	return file_read(path, 64u << 20, len, err, sizeof err);
}

static void
test_tags(void)
{
	static const struct { const char *in; int want; } cases[] = {
		{ "v=1; a=rsa-sha256; d=x.org; s=s1", 4 },
		{ "v=1; a=rsa-sha256;", 2 },
		{ " v = 1 ;\r\n\ta=rsa-sha256", 2 },
		{ "", 0 },
		{ "v=1; v=1", -1 },			/* duplicate */
		{ "v=1; d=a.org; d=b.org", -1 },
		{ "v1; a=b", -1 },			/* no = */
		{ "=x", -1 },
		{ "9a=x", -1 },
		{ "v=1;;", -1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *n[DKIM_MAX_TAGS], *v[DKIM_MAX_TAGS], err[96];
		int r = dkim_tags(cases[i].in, strlen(cases[i].in), n, v, err,
		    sizeof err);
		check(r == cases[i].want, "tags \"%s\": %d, want %d",
		    cases[i].in, r, cases[i].want);
		if (r > 0)
			dkim_tags_free(n, v, r);
	}
	{
		char *n[DKIM_MAX_TAGS], *v[DKIM_MAX_TAGS], err[96];
		const char *s = "h=from : to\r\n : subject ; b= ab cd\r\n ef";
		int r = dkim_tags(s, strlen(s), n, v, err, sizeof err);
		check(r == 2 && !strcmp(n[0], "h") &&
		    !strcmp(v[0], "from : to\r\n : subject") &&
		    !strcmp(v[1], "ab cd\r\n ef"), "tag values trimmed");
		if (r > 0)
			dkim_tags_free(n, v, r);
	}
}

static void
test_base64(void)
{
	static const struct { const char *in; long want; } cases[] = {
		{ "", 0 }, { "Zg==", 1 }, { "Zm8=", 2 }, { "Zm9v", 3 },
		{ "Zm 9v\r\n YmFy", 6 }, { "Zm9v!", -1 }, { "Z", -1 },
		{ "Zg===", -1 }, { "Zg==Zg==", -1 }, { "Zm9=v", -1 },
		{ "%%%%", -1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unsigned char out[16];
		long r = dkim_base64(cases[i].in, out, sizeof out);
		check(r == cases[i].want, "base64 \"%s\": %ld, want %ld",
		    cases[i].in, r, cases[i].want);
	}
	{
		unsigned char out[2];
		check(dkim_base64("Zm9v", out, sizeof out) == -1,
		    "base64 output bounded");
	}
}

static void
test_canon(void)
{
	/* RFC 6376 3.4.5's example. */
	static const struct { const char *in; int relaxed; const char *want; }
	    body[] = {
		{ " C \r\nD \t E\r\n\r\n\r\n", 1, " C\r\nD E\r\n" },
		{ " C \r\nD \t E\r\n\r\n\r\n", 0, " C \r\nD \t E\r\n" },
		{ "", 0, "\r\n" },
		{ "", 1, "" },
		{ "\r\n\r\n", 1, "" },
		{ "\r\n\r\n", 0, "\r\n" },
		{ "abc", 0, "abc\r\n" },
		{ "abc  ", 1, "abc\r\n" },
		{ "a\r\n \t \r\nb\r\n", 1, "a\r\n\r\nb\r\n" },
		/* space runs across the 8-byte words of the fast path */
		{ "1234567  x\r\n", 1, "1234567 x\r\n" },
		{ "12345678  x\r\n", 1, "12345678 x\r\n" },
		{ "123456789012345 \t6\r\n", 1, "123456789012345 6\r\n" },
		{ "1234567 12345678 x y z\r\n", 1,
		    "1234567 12345678 x y z\r\n" },
		{ "        lead\r\n", 1, " lead\r\n" },
		{ "x\r\n\r\n\r\ny \r\n\r\n", 1, "x\r\n\r\n\r\ny\r\n" },
	};
	for (size_t i = 0; i < sizeof body / sizeof body[0]; i++) {
		size_t n;
		char *c = dkim_canon_body(body[i].in, strlen(body[i].in),
		    body[i].relaxed, &n);
		check(c != NULL && n == strlen(body[i].want) &&
		    !memcmp(c, body[i].want, n), "body canon %zu", i);
		free(c);
	}
	{
		const char *raw = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n";
		struct msg m;
		char err[128], *a, *b;
		check(msg_parse(raw, strlen(raw), &m, err, sizeof err) == 0,
		    "parse canon headers");
		a = dkim_canon_header(&m.hdrs[0], 1);
		b = dkim_canon_header(&m.hdrs[1], 1);
		check(a && !strcmp(a, "a:X\r\n"), "relaxed A: %s", a);
		check(b && !strcmp(b, "b:Y Z\r\n"), "relaxed B: %s", b);
		free(a);
		free(b);
		b = dkim_canon_header(&m.hdrs[1], 0);
		check(b && !strcmp(b, "B : Y\t\r\n\tZ  \r\n"), "simple B");
		free(b);
		msg_free(&m);
	}
}

static void
test_rfc8463(void)
{
	size_t len;
	char *raw = slurp("tests/data/rfc8463.eml", &len), err[128];
	struct msg m;
	struct dkim_sig s;

	check(raw != NULL, "read tests/data/rfc8463.eml");
	if (raw == NULL)
		return;
	check(msg_parse(raw, len, &m, err, sizeof err) == 0, "parse: %s", err);
	dkim_verify_key(NULL, &m, 0, RFC8463_ED, T_2018, &s);
	check(s.result == DKIM_PASS, "RFC 8463 ed25519: %s (%s)",
	    dkim_res_str(s.result), s.reason);
	check(!strcmp(s.domain, "football.example.com") &&
	    !strcmp(s.selector, "brisbane"), "d= and s=");
	dkim_verify_key(NULL, &m, 1, RFC8463_RSA, T_2018, &s);
	check(s.result == DKIM_PASS, "RFC 8463 rsa-sha256: %s (%s)",
	    dkim_res_str(s.result), s.reason);
	/* wrong key type, revoked, not base64, testing, service */
	dkim_verify_key(NULL, &m, 0, RFC8463_RSA, T_2018, &s);
	check(s.result == DKIM_PERMERROR, "k=rsa for ed25519: %s",
	    dkim_res_str(s.result));
	dkim_verify_key(NULL, &m, 0, "v=DKIM1; k=ed25519; p=", T_2018, &s);
	check(s.result == DKIM_PERMERROR && strstr(s.reason, "revoked"),
	    "revoked: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, "v=DKIM1; k=ed25519; p=not*base64!", T_2018,
	    &s);
	check(s.result == DKIM_PERMERROR, "non-base64 key: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, RFC8463_ED "; t=y", T_2018, &s);
	check(s.result == DKIM_POLICY && s.crypto_ok, "t=y: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, RFC8463_ED "; s=other", T_2018, &s);
	check(s.result == DKIM_PERMERROR, "s=other: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, RFC8463_ED "; h=sha1", T_2018, &s);
	check(s.result == DKIM_PERMERROR, "h=sha1: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, "k=ed25519; v=DKIM1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	    T_2018, &s);
	check(s.result == DKIM_PERMERROR, "v= not first: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, "v=DKIM1; k=ed25519; k=rsa; p=AAAA", T_2018,
	    &s);
	check(s.result == DKIM_PERMERROR, "duplicate key tag: %s", s.reason);
	dkim_verify_key(NULL, &m, 0, "v=DKIM1; k=ed25519; p=AAAA", T_2018, &s);
	check(s.result == DKIM_PERMERROR, "short ed25519 key: %s", s.reason);
	msg_free(&m);

	/* Body changed after signing. */
	{
		char *mod = strdup(raw), *p = strstr(mod, "We lost");
		p[3] = 'w';
		check(msg_parse(mod, len, &m, err, sizeof err) == 0, "parse");
		dkim_verify_key(NULL, &m, 0, RFC8463_ED, T_2018, &s);
		check(s.result == DKIM_FAIL, "body changed: %s", s.reason);
		msg_free(&m);
		strcpy(mod, raw);
		p = strstr(mod, "Joe SixPack");
		p[0] = 'J';
		p[1] = 'O';
		check(msg_parse(mod, len, &m, err, sizeof err) == 0, "parse");
		dkim_verify_key(NULL, &m, 0, RFC8463_ED, T_2018, &s);
		check(s.result == DKIM_FAIL, "From changed: %s", s.reason);
		dkim_verify_key(NULL, &m, 1, RFC8463_RSA, T_2018, &s);
		check(s.result == DKIM_FAIL, "From changed rsa: %s", s.reason);
		msg_free(&m);
		free(mod);
	}
	free(raw);
}

/* Each signature field: the result we want with the RFC 8463 ed25519 key. */
static void
test_bad_sigs(void)
{
	static const struct { const char *sig; enum dkim_res want; } cases[] = {
		{ "v=1; a=ed25519-sha256; d=x.org; d=y.org; s=s; h=from; "
		    "bh=AAAA; b=AAAA", DKIM_PERMERROR },	/* duplicate */
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=from; bh=!!!!; "
		    "b=AAAA", DKIM_PERMERROR },		/* garbage base64 */
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=to; bh=AAAA; "
		    "b=AAAA", DKIM_PERMERROR },		/* From unsigned */
		{ "v=2; a=ed25519-sha256; d=x.org; s=s; h=from; bh=AAAA; "
		    "b=AAAA", DKIM_PERMERROR },
		{ "v=1; a=rsa-md5; d=x.org; s=s; h=from; bh=AAAA; b=AAAA",
		    DKIM_PERMERROR },
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=from; bh=AAAA",
		    DKIM_PERMERROR },			/* no b= */
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=from; bh=AAAA; "
		    "b=AAAA; i=joe@evil.org", DKIM_PERMERROR },
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=from; bh=AAAA; "
		    "b=AAAA; l=-5", DKIM_PERMERROR },
		{ "v=1; a=ed25519-sha256; d=x.org; s=s; h=from; bh=AAAA; "
		    "b=AAAA; t=20; x=10", DKIM_PERMERROR },
		{ "v=1; a=ed25519-sha256; d=x\001.org; s=s; h=from; bh=AAAA; "
		    "b=AAAA", DKIM_PERMERROR },
		{ "garbage", DKIM_PERMERROR },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char raw[1024], err[128];
		struct msg m;
		struct dkim_sig s;
		snprintf(raw, sizeof raw, "DKIM-Signature: %s\r\nFrom: a@x.org"
		    "\r\n\r\nbody\r\n", cases[i].sig);
		check(msg_parse(raw, strlen(raw), &m, err, sizeof err) == 0,
		    "parse %zu", i);
		dkim_verify_key(NULL, &m, 0, RFC8463_ED, T_2018, &s);
		check(s.result == cases[i].want, "bad sig %zu: %s (%s)", i,
		    dkim_res_str(s.result), s.reason);
		msg_free(&m);
	}
}

static void
test_bad_messages(void)
{
	struct msg m;
	char err[128];
	size_t big = 1024 * 1024;
	char *raw = malloc(big + 64);
	int r;

	/* a 1 MB header line */
	memcpy(raw, "X-Long: ", 8);
	memset(raw + 8, 'a', big);
	strcpy(raw + 8 + big, "\r\nFrom: a@x.org\r\n\r\nhi\r\n");
	r = msg_parse(raw, strlen(raw), &m, err, sizeof err);
	check(r == -1 && strstr(err, "header field"), "1 MB header: %s", err);
	msg_free(&m);
	/* a 1 MB DKIM-Signature is refused by the DKIM limit too */
	free(raw);

	/* truncated header section: no blank line, last field cut */
	r = msg_parse("From: a@x.org\r\nSubj", 19, &m, err, sizeof err);
	check(r == -1, "truncated field without colon: %d", r);
	msg_free(&m);
	r = msg_parse("From: a@x.org\r\nSubject: hi", 27, &m, err,
	    sizeof err);
	check(r == 0 && m.nhdrs == 2 && m.bodylen == 0,
	    "truncated header section parses, empty body");
	msg_free(&m);
	r = msg_parse(" folded\r\nFrom: a\r\n\r\n", 20, &m, err, sizeof err);
	check(r == -1, "leading continuation");
	msg_free(&m);
	r = msg_parse("From: a@x.org\nTo: b\n\nbody\n", 26, &m, err,
	    sizeof err);
	check(r == 0 && m.nhdrs == 2 && m.bodylen == 6 &&
	    !memcmp(m.body, "body\r\n", 6), "LF becomes CRLF");
	msg_free(&m);
}

/* The per-thread key cache: a record parsed once answers later messages
 * exactly as a fresh parse would, whatever the order, the algorithm asking
 * and evictions. */
static void
test_key_cache(void)
{
	size_t len;
	char *raw = slurp("tests/data/rfc8463.eml", &len), err[128];
	struct dkim_keys *keys = dkim_keys_new();
	struct msg m;
	struct dkim_sig s;

	check(raw != NULL && keys != NULL, "fixture and cache");
	if (raw == NULL || keys == NULL || msg_parse(raw, len, &m, err,
	    sizeof err) != 0) {
		free(raw);
		dkim_keys_free(keys);
		return;
	}
	for (int round = 0; round < 2; round++) {
		dkim_verify_key(keys, &m, 1, RFC8463_RSA, T_2018, &s);
		check(s.result == DKIM_PASS, "cached rsa, round %d: %s",
		    round, s.reason);
		/* the same record asked for by the ed25519 signature */
		dkim_verify_key(keys, &m, 0, RFC8463_RSA, T_2018, &s);
		check(s.result == DKIM_PERMERROR, "cached rsa key for "
		    "ed25519, round %d: %s", round, dkim_res_str(s.result));
		dkim_verify_key(keys, &m, 0, RFC8463_ED, T_2018, &s);
		check(s.result == DKIM_PASS, "cached ed25519, round %d: %s",
		    round, s.reason);
		dkim_verify_key(keys, &m, 0, RFC8463_ED "; t=y", T_2018, &s);
		check(s.result == DKIM_POLICY, "cached t=y, round %d: %s",
		    round, dkim_res_str(s.result));
		dkim_verify_key(keys, &m, 0, "v=DKIM1; k=ed25519; p=", T_2018,
		    &s);
		check(s.result == DKIM_PERMERROR, "revoked after cached, "
		    "round %d", round);
	}
	/* More records than the cache holds: evicted ones parse again. */
	for (int i = 0; i < 40; i++) {
		char rec[200];
		snprintf(rec, sizeof rec, "%s; n=%d%s", RFC8463_ED, i % 20,
		    i % 20 == 7 ? "; t=y" : "");
		dkim_verify_key(keys, &m, 0, rec, T_2018, &s);
		check(s.result == (i % 20 == 7 ? DKIM_POLICY : DKIM_PASS),
		    "record %d of 20: %s", i % 20, dkim_res_str(s.result));
	}
	msg_free(&m);
	free(raw);
	dkim_keys_free(keys);
}

int
main(void)
{
	test_tags();
	test_base64();
	test_canon();
	test_rfc8463();
	test_key_cache();
	test_bad_sigs();
	test_bad_messages();
	return check_done();
}
