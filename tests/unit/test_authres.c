/*
 * tests/unit/test_authres.c: RFC 8601 Authentication-Results parsing and
 * the choice of the trusted field.
 */
#include <stdio.h>
#include <string.h>

#include "policy/authres.h"
#include "policy/msg.h"
#include "tests/unit/check.h"

static void
test_parse(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *id, *result, *domain;
	} cases[] = {
		{ " mx.example.org; spf=pass smtp.mailfrom=bob@x.org", 0,
		    "mx.example.org", "pass", "x.org" },
		{ "mx.example.org 1; spf=fail smtp.mailfrom=x.org", 0,
		    "mx.example.org", "fail", "x.org" },
		{ "MX.Example.ORG; SPF=Pass (ip 192.0.2.1 (nested)) "
		    "smtp.mailfrom=\"bob@x.org\"", 0, "mx.example.org", "pass",
		    "x.org" },
		{ "mx (comment; with semicolon); dkim=pass header.d=x.org; "
		    "spf=softfail smtp.helo=mail.y.org", 0, "mx", "softfail",
		    "mail.y.org" },
		{ "mx; none", 0, "mx", "none", "" },
		{ "mx; dkim=pass header.i=@x.org", 0, "mx", "none", "" },
		{ "mx; spf=pass reason=\"good ip\" smtp.mailfrom=a@b.org; "
		    "spf=fail smtp.mailfrom=c@d.org", 0, "mx", "pass", "b.org" },
		{ "\"quoted.id\"; spf=pass smtp.mailfrom=q.org", 0,
		    "quoted.id", "pass", "q.org" },
		{ "mx; spf=pass smtp.mailfrom=a@b.org (unterminated", -1,
		    "mx", NULL, NULL },
		{ "mx; spf=", -1, "mx", NULL, NULL },
		{ "mx; =pass", -1, "mx", NULL, NULL },
		{ "mx; spf=pass smtp.mailfrom", -1, "mx", NULL, NULL },
		{ "mx x1; spf=pass", -1, "mx", NULL, NULL },
		{ "", -1, "", NULL, NULL },
		{ "mx; spf=pass smtp.mailfrom=\"unterminated", -1, "mx", NULL,
		    NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char id[256] = "";
		struct authres_spf s;
		int r = authres_parse(cases[i].in, strlen(cases[i].in), id,
		    sizeof id, &s);
		check(r == cases[i].ret, "authres %zu: ret %d", i, r);
		check(!strcmp(id, cases[i].id), "authres %zu: id %s", i, id);
		if (r == 0) {
			check(!strcmp(s.result, cases[i].result),
			    "authres %zu: result %s", i, s.result);
			check(!strcmp(s.domain, cases[i].domain),
			    "authres %zu: domain %s", i, s.domain);
		}
	}
}

static void
test_trusted(void)
{
	/* Topmost trusted field wins; an untrusted one above it and a
	 * forged trusted one below are ignored; a broken topmost trusted
	 * field is not replaced by the one below. */
	const char *m1 =
	    "Authentication-Results: evil.org; spf=pass smtp.mailfrom=x.org\r\n"
	    "Authentication-Results: mx.me; spf=fail smtp.mailfrom=x.org\r\n"
	    "Authentication-Results: mx.me; spf=pass smtp.mailfrom=x.org\r\n"
	    "From: a@x.org\r\n\r\nbody\r\n";
	const char *m2 =
	    "Authentication-Results: mx.me; spf=pass (broken\r\n"
	    "Authentication-Results: mx.me; spf=pass smtp.mailfrom=x.org\r\n"
	    "From: a@x.org\r\n\r\nbody\r\n";
	struct msg m;
	struct authres_spf s;
	char err[128];

	check(msg_parse(m1, strlen(m1), &m, err, sizeof err) == 0, "parse");
	check(authres_spf(&m, "mx.me", &s) == 1 && !strcmp(s.result, "fail"),
	    "topmost trusted: %s", s.result);
	check(!strcmp(s.source, "mx.me"), "source %s", s.source);
	check(authres_spf(&m, "MX.ME", &s) == 1, "id case-insensitive");
	check(authres_spf(&m, "other", &s) == 0, "untrusted: none");
	check(authres_spf(&m, "", &s) == 0, "empty trusted id");
	msg_free(&m);
	check(msg_parse(m2, strlen(m2), &m, err, sizeof err) == 0, "parse");
	check(authres_spf(&m, "mx.me", &s) == 1 && !strcmp(s.result, "none"),
	    "broken topmost: %s", s.result);
	msg_free(&m);
}

int
main(void)
{
	test_parse();
	test_trusted();
	return check_done();
}
