/*
 * policy/dmarc.c: DMARC (RFC 7489): record discovery at _dmarc.<From
 * domain>, then at the organizational domain (Public Suffix List via
 * libpsl), alignment of DKIM d= and SPF domains under adkim/aspf, and the
 * policy that applies (p, or sp for a subdomain). A lookup that fails
 * temporarily is a temperror, never "no record": the gate's relaxation
 * depends on the difference. What to do with the result is gate.c's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/dmarc.h"

const char *
dmarc_res_str(enum dmarc_res r)
{
	static const char *const w[] = { "none", "pass", "fail", "temperror",
	    "permerror" };
	return (unsigned)r < 5 ? w[r] : "permerror";
}

const char *
dmarc_policy_str(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE:		return "none";
	case DMARC_P_QUARANTINE:	return "quarantine";
	case DMARC_P_REJECT:		return "reject";
	default:			return NULL;
	}
}

void
dmarc_org_domain(const psl_ctx_t *psl, const char *domain, char *out,
    size_t outlen)
{
	char low[256];
	const char *reg = NULL;
	size_t i;

	for (i = 0; domain[i] && i + 1 < sizeof low; i++)
		low[i] = (char)tolower((unsigned char)domain[i]);
	low[i] = '\0';
	if (psl != NULL)
		reg = psl_registrable_domain(psl, low);
	snprintf(out, outlen, "%s", reg ? reg : low);
}

int
dmarc_aligned(const psl_ctx_t *psl, const char *a, const char *b,
    int strict)
{
	char oa[256], ob[256];

	if (a == NULL || b == NULL || !*a || !*b)
		return 0;
	if (!strcasecmp(a, b))
		return 1;
	if (strict)
		return 0;
	dmarc_org_domain(psl, a, oa, sizeof oa);
	dmarc_org_domain(psl, b, ob, sizeof ob);
	return !strcmp(oa, ob);
}

static int
dmarc_pval(const char *v, enum dmarc_policy *p)
{
	if (!strcasecmp(v, "none"))
		*p = DMARC_P_NONE;
	else if (!strcasecmp(v, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (!strcasecmp(v, "reject"))
		*p = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

/* RFC 7489 6.6.3: a record starts with "v" "=" "DMARC1". */
static int
dmarc_is_record(const char *t)
{
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t++ != 'v')
		return 0;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t++ != '=')
		return 0;
	while (*t == ' ' || *t == '\t')
		t++;
	if (strncmp(t, "DMARC1", 6))
		return 0;
	t += 6;
	while (*t == ' ' || *t == '\t')
		t++;
	return *t == ';' || *t == '\0';
}

int
dmarc_parse(const char *txt, struct dmarc_record *r, char *err,
    size_t errlen)
{
	char *n[DKIM_MAX_TAGS], *v[DKIM_MAX_TAGS], e[96];
	int cnt, ret = -1, have_p = 0;

	r->p = DMARC_P_NONE;
	r->sp = DMARC_P_UNSET;
	r->adkim_strict = r->aspf_strict = 0;
	if (!dmarc_is_record(txt))
		return 0;
	cnt = dkim_tags(txt, strlen(txt), n, v, e, sizeof e);
	if (cnt < 0) {
		snprintf(err, errlen, "%s", e);
		return -1;
	}
	for (int i = 1; i < cnt; i++) {
		if (!strcmp(n[i], "p")) {
			if (dmarc_pval(v[i], &r->p) != 0) {
				snprintf(err, errlen, "bad p=%.32s", v[i]);
				goto out;
			}
			have_p = 1;
		} else if (!strcmp(n[i], "sp")) {
			if (dmarc_pval(v[i], &r->sp) != 0) {
				snprintf(err, errlen, "bad sp=%.32s", v[i]);
				goto out;
			}
		} else if (!strcmp(n[i], "adkim") || !strcmp(n[i], "aspf")) {
			int *s = n[i][1] == 'd' ? &r->adkim_strict :
			    &r->aspf_strict;
			if (strcasecmp(v[i], "r") && strcasecmp(v[i], "s")) {
				snprintf(err, errlen, "bad %s=%.16s", n[i],
				    v[i]);
				goto out;
			}
			*s = !strcasecmp(v[i], "s");
		}
		/* pct, rua, ruf, fo, rf, ri and unknown tags: ignored */
	}
	if (!have_p) {
		/* RFC 7489 6.3: p is required. We do not guess "none" for a
		 * domain that did publish something. */
		snprintf(err, errlen, "no p= tag");
		goto out;
	}
	ret = 1;
out:
	dkim_tags_free(n, v, cnt);
	return ret;
}

/* Looks up one _dmarc name. Returns the number of records found (0 or 1),
 * or -1 (temperror / permerror in out). */
static int
dmarc_fetch(struct dns *dns, const char *domain, struct dmarc_record *rec,
    struct dmarc_result *out)
{
	char name[300], **txt = NULL, err[96];
	size_t n = 0;
	int found = 0, r;
	enum dns_status st;

	snprintf(name, sizeof name, "_dmarc.%s", domain);
	st = dns_txt(dns, name, &txt, &n);
	if (st == DNS_TEMPFAIL) {
		out->result = DMARC_TEMPERROR;
		snprintf(out->reason, sizeof out->reason, "lookup of %s failed "
		    "(SERVFAIL or timeout)", name);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct dmarc_record tmp;
		r = dmarc_parse(txt[i], &tmp, err, sizeof err);
		if (r == 0)
			continue;
		if (r < 0 || found) {
			/* RFC 7489 6.6.3 says several records mean no
			 * DMARC; treating that as "no record" would open
			 * the relaxation to a domain that publishes one. */
			out->result = DMARC_PERMERROR;
			snprintf(out->reason, sizeof out->reason, "%s: %s",
			    name, r < 0 ? err : "several DMARC records");
			snprintf(out->record_domain, sizeof out->record_domain,
			    "%s", domain);
			dns_txt_free(txt, n);
			return -1;
		}
		*rec = tmp;
		found = 1;
	}
	dns_txt_free(txt, n);
	if (found)
		snprintf(out->record_domain, sizeof out->record_domain, "%s",
		    domain);
	return found;
}

void
dmarc_prefetch(struct dns *dns, const psl_ctx_t *psl, const char *from)
{
	char name[300], org[256];

	snprintf(name, sizeof name, "_dmarc.%s", from);
	dns_prefetch(dns, name);
	dmarc_org_domain(psl, from, org, sizeof org);
	if (strcmp(org, from) != 0) {
		snprintf(name, sizeof name, "_dmarc.%s", org);
		dns_prefetch(dns, name);
	}
}

void
dmarc_evaluate(struct dns *dns, const psl_ctx_t *psl, const char *from,
    const struct dkim_result *dk, const char *spf_domain,
    struct dmarc_result *out)
{
	struct dmarc_record rec;
	int found, at_org = 0, temp_aligned = 0;

	memset(out, 0, sizeof *out);
	out->policy = DMARC_P_UNSET;
	dmarc_org_domain(psl, from, out->org_domain, sizeof out->org_domain);
	for (size_t i = 0; i < dk->nsigs; i++)
		out->dkim_aligned[i] = dmarc_aligned(psl, dk->sigs[i].domain,
		    from, 0);

	found = dmarc_fetch(dns, from, &rec, out);
	if (found < 0)
		return;
	if (found == 0 && strcmp(out->org_domain, from) != 0) {
		found = dmarc_fetch(dns, out->org_domain, &rec, out);
		if (found < 0)
			return;
		at_org = 1;
	}
	if (found == 0) {
		out->result = DMARC_NONE;
		out->authoritative_none = 1;
		snprintf(out->reason, sizeof out->reason, "no DMARC record at "
		    "_dmarc.%s%s%s", from, strcmp(out->org_domain, from) ?
		    " or _dmarc." : "", strcmp(out->org_domain, from) ?
		    out->org_domain : "");
		return;
	}
	out->policy = at_org && rec.sp != DMARC_P_UNSET ? rec.sp : rec.p;
	for (size_t i = 0; i < dk->nsigs; i++) {
		const struct dkim_sig *s = &dk->sigs[i];
		out->dkim_aligned[i] = dmarc_aligned(psl, s->domain, from,
		    rec.adkim_strict);
		if (!out->dkim_aligned[i])
			continue;
		if (s->result == DKIM_PASS) {
			out->result = DMARC_PASS;
			snprintf(out->reason, sizeof out->reason, "aligned DKIM "
			    "pass d=%s", s->domain);
			return;
		}
		if (s->result == DKIM_TEMPERROR)
			temp_aligned = 1;
	}
	if (spf_domain != NULL && dmarc_aligned(psl, spf_domain, from,
	    rec.aspf_strict)) {
		out->result = DMARC_PASS;
		snprintf(out->reason, sizeof out->reason, "aligned SPF pass "
		    "%s", spf_domain);
		return;
	}
	if (temp_aligned) {
		/* RFC 7489 6.6.2 would say fail; but the key lookup that
		 * failed could have made it pass: try again later. */
		out->result = DMARC_TEMPERROR;
		snprintf(out->reason, sizeof out->reason, "an aligned "
		    "signature's key lookup failed");
		return;
	}
	out->result = DMARC_FAIL;
	snprintf(out->reason, sizeof out->reason, "no aligned DKIM%s pass "
	    "(record at _dmarc.%s, adkim=%c)", spf_domain ? " or SPF" : "",
	    out->record_domain, rec.adkim_strict ? 's' : 'r');
}
