/*
 * policy/gate.h: the inbound gate. A raw message and DNS in, a verdict out.
 * Pure: never touches the store. The operator's policy settings are declared
 * here because the gate is what gives them meaning; server/config.c fills
 * them from [policy] and per-user policy.* keys.
 */
#ifndef CALGATE_GATE_H
#define CALGATE_GATE_H

#include <stddef.h>

enum gate_require {
	GATE_REQUIRE_DMARC = 0,		/* default: DMARC pass */
	GATE_REQUIRE_DKIM,		/* DMARC pass, or DKIM-only when no record */
	GATE_REQUIRE_NONE,		/* no sender authentication at all */
};

enum gate_new_events {
	GATE_NEW_ANYONE = 0,		/* default */
	GATE_NEW_KNOWN,			/* only known_senders / known organizers */
};

enum gate_spf {
	GATE_SPF_OFF = 0,		/* default: DMARC rests on DKIM alone */
	GATE_SPF_AUTHRES,		/* trusted Authentication-Results */
};

/* dkim_signers keywords, as bits; explicit domains are listed separately. */
#define GATE_SIGNER_ALIGNED	0x1u
#define GATE_SIGNER_GOOGLE	0x2u	/* google-workspace */
#define GATE_SIGNER_ANY		0x4u

/*
 * One policy, global or a user's effective one. Strings and arrays are
 * borrowed from the config that made it (struct config owns them).
 */
struct gate_policy {
	enum gate_require require;
	unsigned signers;		/* GATE_SIGNER_* */
	char **signer_domains;		/* explicit signer domains, lower case */
	size_t nsigner_domains;
	int dkim_domains_any;		/* dkim_domains = * */
	char **dkim_domains;		/* else: From domains, lower case */
	size_t ndkim_domains;
	int organizer_must_match_from;
	enum gate_new_events new_events_from;
	enum gate_spf spf;
	char *trusted_authserv_id;	/* "" when unset */
};

/* ---- the gate ---- */

#include <stdio.h>
#include <time.h>

#include "policy/authres.h"
#include "policy/dkim.h"
#include "policy/dmarc.h"
#include "policy/ics.h"

enum gate_decision {
	GATE_ACCEPT = 0,	/* may be merged (after the merge engine's own
				 * checks: stored ORGANIZER, new_events_from) */
	GATE_SKIP,		/* not merged; the message stays as it is */
	GATE_DEFER,		/* temporary failure (DNS): try again later */
	GATE_IGNORE,		/* no iMIP content */
};

/*
 * One decision and everything it rests on. Every pointer is owned by the
 * verdict and released by gate_verdict_free.
 */
struct gate_verdict {
	enum gate_decision decision;
	char reason[32];	/* short code: dmarc-none, dkim-fail, ... */
	char hint[512];		/* the setting that would change it, or why
				 * none would; "" for accept and ignore */
	char detail[640];	/* a sentence for the log and status page */
	char from[320];		/* the From address, lower case, or "" */
	char from_domain[256];
	struct dkim_result dkim;	/* per signature */
	int dkim_aligned[DKIM_MAX_SIGS];/* d= aligns with the From domain */
	int spf_checked;		/* spf = authentication-results */
	struct authres_spf spf;
	int dmarc_checked;
	struct dmarc_result dmarc;
	int unauthenticated;		/* accepted under require = none */
	double dkim_ms;			/* DKIM verification, key lookups
					   included; 0 if not reached */
	double dns_ms;			/* waited on uncached DNS answers */

	int have_itip;			/* the chosen calendar part: */
	struct ics_info itip;		/* METHOD, UID, ORGANIZER, ... */
	char *ics;			/* its decoded text, NUL-terminated */
	size_t ics_len;
};

struct gate;

/*
 * A gate with its own DNS resolver (dns_addr@dns_port, or the system's
 * when dns_addr is NULL; timeout_ms per lookup) and the system Public
 * Suffix List. Thread-safe: one gate serves every thread. Returns NULL
 * with a sentence in err; free with gate_free.
 */
struct gate *gate_new(const char *dns_addr, int dns_port, int timeout_ms,
    char *err, size_t errlen);
void gate_free(struct gate *);		/* accepts NULL */

/*
 * Runs the inbound gate (DESIGN.md steps 1-7 and 9) on the raw message
 * msg[0..len) under policy. Always fills *out with a decision (bad input
 * is a skip with a reason, never an accept); returns 0, or -1 only when
 * out of memory (then *out is a defer). Free with gate_verdict_free.
 * gate_decide_at takes the time to check x= against (tests).
 */
int gate_decide(struct gate *, const struct gate_policy *, const char *msg,
    size_t len, struct gate_verdict *out);
int gate_decide_at(struct gate *, const struct gate_policy *,
    const char *msg, size_t len, time_t now, struct gate_verdict *out);
void gate_verdict_free(struct gate_verdict *);

/* "accept", "skip", "defer", "ignore". */
const char *gate_decision_str(enum gate_decision);

/*
 * The explain JSON object of DESIGN.md (exactly its keys) with a final
 * newline. Returns a malloc'd string (caller frees), NULL when out of
 * memory.
 */
char *gate_verdict_json(const struct gate_verdict *);

/* Logs the one INFO line of the decision; user may be NULL. */
void gate_log(const struct gate_verdict *, const char *user);

/*
 * 1 if a DKIM d= is a domain shared by many unrelated senders (Google,
 * Microsoft 365 tenants, bulk senders): never enough for aligned or
 * google-workspace.
 */
int gate_shared_signer(const char *domain);

/*
 * 1 if addr (an address, any case, without mailto:) is listed in known:
 * entries are addresses or "@domain" (that domain exactly), as in a
 * user's known_senders. For the merge engine's new_events_from = known.
 */
int gate_known_sender(char *const *known, size_t n, const char *addr);

/* 1 if d is from_domain's Google Workspace tenant label:
 * <from with dots as dashes>.<8 digits>.gappssmtp.com. */
int gate_google_tenant(const char *d, const char *from_domain);

#endif
