/*
 * policy/dmarc.h: DMARC (RFC 7489) for one From domain, given the DKIM
 * results and an optional trusted SPF result.
 */
#ifndef CALGATE_DMARC_H
#define CALGATE_DMARC_H

#include <libpsl.h>

#include "policy/dkim.h"
#include "policy/dns.h"

enum dmarc_res {
	DMARC_NONE = 0,		/* no record (see dmarc_result.authoritative) */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,	/* a lookup or an aligned key lookup failed */
	DMARC_PERMERROR,	/* a record is published but unusable */
};

enum dmarc_policy {
	DMARC_P_UNSET = -1,
	DMARC_P_NONE = 0,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
};

struct dmarc_record {
	enum dmarc_policy p, sp;	/* sp: DMARC_P_UNSET if absent */
	int adkim_strict, aspf_strict;
};

struct dmarc_result {
	enum dmarc_res result;
	enum dmarc_policy policy;	/* the one that applies, or UNSET */
	int authoritative_none;		/* NONE from NXDOMAIN/NODATA/no
					 * v=DMARC1 at the From and the
					 * organizational domain */
	char org_domain[256];
	char record_domain[256];	/* where the record was, or "" */
	char reason[640];
	int dkim_aligned[DKIM_MAX_SIGS];/* d= aligns under the record's
					 * adkim (relaxed without one) */
};

/*
 * The organizational domain of domain (RFC 7489 3.2) by the Public Suffix
 * List: its registrable domain, or domain itself when it is a public
 * suffix or unknown to the list. Writes it lower case into out.
 */
void dmarc_org_domain(const psl_ctx_t *, const char *domain, char *out,
    size_t outlen);

/* 1 if a and b are aligned: equal (strict), or same org domain. */
int dmarc_aligned(const psl_ctx_t *, const char *a, const char *b,
    int strict);

/*
 * Parses a DMARC record. Returns 1 for a valid record, 0 for text that is
 * not a DMARC record (no leading v=DMARC1), -1 for a DMARC record with a
 * syntax error (reason in err). Unknown tags are ignored (RFC 7489 6.3).
 */
int dmarc_parse(const char *txt, struct dmarc_record *, char *err,
    size_t errlen);

/*
 * Evaluates DMARC for from_domain (lower case). spf_domain is the domain of
 * a trusted SPF pass, or NULL. Fills out; never fails.
 */
void dmarc_evaluate(struct dns *, const psl_ctx_t *, const char *from_domain,
    const struct dkim_result *, const char *spf_domain,
    struct dmarc_result *out);

/* Starts the record lookups dmarc_evaluate may need (From, org domain). */
void dmarc_prefetch(struct dns *, const psl_ctx_t *, const char *from_domain);

const char *dmarc_res_str(enum dmarc_res);
const char *dmarc_policy_str(enum dmarc_policy);	/* NULL for UNSET */

#endif
