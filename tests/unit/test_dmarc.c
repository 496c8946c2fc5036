/*
 * tests/unit/test_dmarc.c: DMARC record parsing, organizational domains
 * from the system Public Suffix List, alignment.
 */
#include <stdio.h>
#include <string.h>

#include <libpsl.h>

#include "policy/dmarc.h"
#include "tests/unit/check.h"

static void
test_parse(void)
{
	static const struct {
		const char *in;
		int ret;
		enum dmarc_policy p, sp;
		int adkim_s, aspf_s;
	} cases[] = {
		{ "v=DMARC1; p=reject", 1, DMARC_P_REJECT, DMARC_P_UNSET, 0, 0 },
		{ "v=DMARC1;p=none;sp=quarantine;adkim=s;aspf=r", 1,
		    DMARC_P_NONE, DMARC_P_QUARANTINE, 1, 0 },
		{ "v = DMARC1 ; p = quarantine ;", 1, DMARC_P_QUARANTINE,
		    DMARC_P_UNSET, 0, 0 },
		/* junk tags are ignored (RFC 7489 6.3) */
		{ "v=DMARC1; p=none; foo=bar; rua=mailto:x@y; zz=1", 1,
		    DMARC_P_NONE, DMARC_P_UNSET, 0, 0 },
		{ "v=spf1 -all", 0, 0, 0, 0, 0 },
		{ "v=DMARC2; p=none", 0, 0, 0, 0, 0 },
		{ "p=none; v=DMARC1", 0, 0, 0, 0, 0 },
		{ "v=DMARC1", -1, 0, 0, 0, 0 },			/* no p= */
		{ "v=DMARC1; p=bogus", -1, 0, 0, 0, 0 },
		{ "v=DMARC1; p=none; sp=maybe", -1, 0, 0, 0, 0 },
		{ "v=DMARC1; p=none; adkim=x", -1, 0, 0, 0, 0 },
		{ "v=DMARC1; p=none; p=reject", -1, 0, 0, 0, 0 },
		{ "v=DMARC1; p=none; junk", -1, 0, 0, 0, 0 },
		{ "v=DMARC1; p=none; \001=x", -1, 0, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dmarc_record r;
		char err[96];
		int ret = dmarc_parse(cases[i].in, &r, err, sizeof err);
		check(ret == cases[i].ret, "dmarc \"%s\": %d", cases[i].in,
		    ret);
		if (ret == 1)
			check(r.p == cases[i].p && r.sp == cases[i].sp &&
			    r.adkim_strict == cases[i].adkim_s &&
			    r.aspf_strict == cases[i].aspf_s,
			    "dmarc \"%s\": fields", cases[i].in);
	}
}

static void
test_psl(void)
{
	static const struct { const char *in, *org; } cases[] = {
		{ "example.com", "example.com" },
		{ "mail.example.com", "example.com" },
		{ "A.B.Example.COM", "example.com" },
		{ "mail.shop.co.uk", "shop.co.uk" },
		{ "shop.co.uk", "shop.co.uk" },
		{ "co.uk", "co.uk" },			/* a public suffix */
		{ "x.y.city.kawasaki.jp", "city.kawasaki.jp" },
		{ "tenant.onmicrosoft.com", "onmicrosoft.com" },
	};
	psl_ctx_t *psl = psl_latest(NULL);

	check(psl != NULL, "system PSL loads");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char org[256];
		dmarc_org_domain(psl, cases[i].in, org, sizeof org);
		check(!strcmp(org, cases[i].org), "org(%s) = %s, want %s",
		    cases[i].in, org, cases[i].org);
	}
	check(dmarc_aligned(psl, "example.com", "mail.example.com", 0),
	    "relaxed subdomain aligns");
	check(!dmarc_aligned(psl, "example.com", "mail.example.com", 1),
	    "strict subdomain does not");
	check(dmarc_aligned(psl, "Example.com", "example.COM", 1),
	    "strict is case-insensitive");
	check(!dmarc_aligned(psl, "a.co.uk", "b.co.uk", 0),
	    "co.uk siblings do not align");
	check(!dmarc_aligned(psl, "", "b.co.uk", 0), "empty never aligns");
	psl_free(psl);
}

int
main(void)
{
	test_parse();
	test_psl();
	return check_done();
}
