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

#endif
