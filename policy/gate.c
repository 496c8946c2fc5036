/*
 * policy/gate.c: the inbound gate (DESIGN.md "The inbound gate", steps
 * 1-7 and 9). A raw message and DNS in, a verdict out: the decision, its
 * reason, the setting that would change it, and what the iTIP merge engine
 * needs (method, UID, organizer, From, the calendar text). Checks that need
 * the user's calendars (the stored ORGANIZER of a known UID, and
 * new_events_from) are the merge engine's; this file never touches the
 * store.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>
#include <libpsl.h>

#include "policy/dns.h"
#include "policy/gate.h"
#include "policy/mime.h"
#include "policy/msg.h"
#include "server/json.h"
#include "server/log.h"

#define GATE_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dafsa"

struct gate {
	struct dns *dns;
	psl_ctx_t *psl;
	struct dkim_keys *keys;	/* parsed DKIM keys */
};

/* How sender authentication came out, before the sender match. */
enum gate_auth { AUTH_PASS, AUTH_FAIL, AUTH_TEMP };

/*
 * DKIM d= domains shared by unrelated senders: a pass from them proves
 * only that someone with an account there sent the message.
 */
static const char *const gate_shared[] = {
	"google.com", "googlemail.com", "gmail.com", "gappssmtp.com",
	"onmicrosoft.com", "outlook.com", "hotmail.com", "live.com",
	"office365.com", "yahoo.com", "icloud.com", "me.com", "aol.com",
	"amazonses.com", "sendgrid.net", "sendgrid.info", "mailgun.org",
	"mailgun.net", "mcsv.net", "mcdlv.net", "mandrillapp.com",
	"sparkpostmail.com", "mailchimpapp.net", "rsgsv.net",
	"zendesk.com", "hubspotemail.net", "exacttarget.com",
	"salesforce.com", "sendinblue.com", "brevo.com", "postmarkapp.com",
	"mtasv.net", "zoho.com", "zohomail.com", "gmx.net", "mail.ru",
	"yandex.ru", "fastmail.com", "messagingengine.com",
};

const char *
gate_decision_str(enum gate_decision d)
{
	switch (d) {
	case GATE_ACCEPT:	return "accept";
	case GATE_SKIP:		return "skip";
	case GATE_DEFER:	return "defer";
	default:		return "ignore";
	}
}

struct gate *
gate_new(const char *dns_addr, int dns_port, int timeout_ms, char *err,
    size_t errlen)
{
	struct gate *g = calloc(1, sizeof *g);

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ics_init();
	g->dns = dns_new(dns_addr, dns_port, timeout_ms, err, errlen);
	if (g->dns == NULL) {
		free(g);
		return NULL;
	}
	/* The newest of the system list and libpsl's built-in one. */
	g->psl = psl_latest(NULL);
	if (g->psl == NULL)
		g->psl = psl_load_file(GATE_PSL_FILE);
	if (g->psl == NULL) {
		snprintf(err, errlen, "cannot load the Public Suffix List "
		    "(%s)", GATE_PSL_FILE);
		dns_free(g->dns);
		free(g);
		return NULL;
	}
	g->keys = dkim_keys_new();	/* NULL: every key parsed each time */
	return g;
}

void
gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	dns_free(g->dns);
	psl_free(g->psl);
	dkim_keys_free(g->keys);
	free(g);
}

void
gate_verdict_free(struct gate_verdict *v)
{
	if (v == NULL)
		return;
	ics_free(&v->itip);
	free(v->ics);
	v->ics = NULL;
	v->have_itip = 0;
}

static void
gate_set(struct gate_verdict *v, enum gate_decision d, const char *reason,
    const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void
gate_set(struct gate_verdict *v, enum gate_decision d, const char *reason,
    const char *hint, const char *fmt, ...)
{
	va_list ap;

	v->decision = d;
	snprintf(v->reason, sizeof v->reason, "%s", reason);
	snprintf(v->hint, sizeof v->hint, "%s", hint ? hint : "");
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof v->detail, fmt, ap);
	va_end(ap);
}

int
gate_shared_signer(const char *d)
{
	size_t dl = strlen(d);

	for (size_t i = 0; i < sizeof gate_shared / sizeof gate_shared[0];
	    i++) {
		size_t sl = strlen(gate_shared[i]);
		if (!strcasecmp(d, gate_shared[i]))
			return 1;
		if (dl > sl && d[dl - sl - 1] == '.' &&
		    !strcasecmp(d + dl - sl, gate_shared[i]))
			return 1;
	}
	return 0;
}

int
gate_known_sender(char *const *known, size_t n, const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	if (at == NULL || at == addr)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *k = known[i];
		if (k[0] == '@' ? !strcasecmp(k + 1, at + 1) :
		    !strcasecmp(k, addr))
			return 1;
	}
	return 0;
}

int
gate_google_tenant(const char *d, const char *from)
{
	static const char tail[] = ".gappssmtp.com";
	size_t fl = strlen(from), dl = strlen(d), tl = sizeof tail - 1;

	/* <label>.<8 digits>.gappssmtp.com */
	if (fl == 0 || dl != fl + 1 + 8 + tl)
		return 0;
	for (size_t i = 0; i < fl; i++) {
		char want = from[i] == '.' ? '-' :
		    (char)tolower((unsigned char)from[i]);
		if ((char)tolower((unsigned char)d[i]) != want)
			return 0;
	}
	if (d[fl] != '.')
		return 0;
	for (size_t i = fl + 1; i < fl + 9; i++)
		if (!isdigit((unsigned char)d[i]))
			return 0;
	return !strcasecmp(d + fl + 9, tail);
}

/* ---- From (step 2) ---- */

/* Exactly one From field holding exactly one address with a domain. */
static int
gate_from(const struct msg *m, struct gate_verdict *v)
{
	const struct msg_header *h = NULL;
	struct mailimf_mailbox_list *mbl = NULL;
	struct mailimf_mailbox *mb;
	char *val, *at;
	size_t idx = 0, nfrom = 0;
	int r, ret = -1;

	for (size_t i = 0; i < m->nhdrs; i++)
		if (msg_is(&m->hdrs[i], "From")) {
			h = &m->hdrs[i];
			nfrom++;
		}
	if (nfrom != 1) {
		gate_set(v, GATE_SKIP, "from-invalid", "none: the message "
		    "must have exactly one From field",
		    "%zu From fields", nfrom);
		return -1;
	}
	val = msg_value(h);
	if (val == NULL)
		return -1;
	r = mailimf_mailbox_list_parse(val, strlen(val), &idx, &mbl);
	if (r != MAILIMF_NO_ERROR || idx != strlen(val) || mbl == NULL ||
	    clist_count(mbl->mb_list) != 1) {
		gate_set(v, GATE_SKIP, "from-invalid", "none: the From field "
		    "must hold exactly one address", "From is not one "
		    "address");
		goto out;
	}
	mb = clist_content(clist_begin(mbl->mb_list));
	at = mb->mb_addr_spec ? strrchr(mb->mb_addr_spec, '@') : NULL;
	if (at == NULL || at == mb->mb_addr_spec ||
	    strlen(mb->mb_addr_spec) >= sizeof v->from ||
	    !dns_name_ldh(at + 1)) {
		gate_set(v, GATE_SKIP, "from-invalid", "none: the From "
		    "address has no usable domain", "From has no domain");
		goto out;
	}
	for (size_t i = 0; mb->mb_addr_spec[i]; i++)
		v->from[i] = (char)tolower((unsigned char)mb->mb_addr_spec[i]);
	v->from[strlen(mb->mb_addr_spec)] = '\0';
	snprintf(v->from_domain, sizeof v->from_domain, "%s",
	    strrchr(v->from, '@') + 1);
	ret = 0;
out:
	if (mbl != NULL)
		mailimf_mailbox_list_free(mbl);
	free(val);
	return ret;
}

/* ---- the calendar part (steps 1 and ical-invalid) ---- */

static int
gate_same_object(const struct ics_info *a, const struct ics_info *b)
{
	return !strcmp(a->method, b->method) && !strcmp(a->uid, b->uid) &&
	    a->sequence == b->sequence &&
	    (a->organizer == NULL) == (b->organizer == NULL) &&
	    (a->organizer == NULL || !strcasecmp(a->organizer, b->organizer));
}

/* Picks the one iMIP object: every part must parse and agree; the first
 * text/calendar part (else the first part) is kept. */
static int
gate_pick(struct mime_parts *parts, struct gate_verdict *v)
{
	struct ics_info info[MIME_MAX_PARTS];
	char err[160];
	size_t chosen = 0;
	int ret = -1;

	memset(info, 0, sizeof info);
	for (size_t i = 0; i < parts->n; i++) {
		size_t same = i;
		/* The usual inline part + invite.ics pair: identical bytes,
		 * one parse. */
		for (size_t k = 0; k < i && same == i; k++)
			if (parts->part[k].len == parts->part[i].len &&
			    !memcmp(parts->part[k].text, parts->part[i].text,
			    parts->part[i].len))
				same = k;
		if (same != i)
			continue;
		if (ics_parse(parts->part[i].text, &info[i], err,
		    sizeof err) != 0) {
			gate_set(v, GATE_SKIP, "ical-invalid", "none: the "
			    "calendar cannot be read", "calendar part %zu: "
			    "%s", i + 1, err);
			goto out;
		}
		if (i > 0 && info[0].method != NULL &&
		    !gate_same_object(&info[0], &info[i])) {
			gate_set(v, GATE_SKIP, "imip-conflict", "none: the "
			    "message carries several different iMIP objects",
			    "calendar parts 1 and %zu differ (METHOD, UID, "
			    "SEQUENCE or ORGANIZER)", i + 1);
			goto out;
		}
	}
	for (size_t i = 0; i < parts->n; i++)
		if (parts->part[i].text_calendar && info[i].method != NULL) {
			chosen = i;
			break;
		}
	if (info[chosen].method == NULL) {
		/* a text/calendar copy of an earlier part: take that one */
		for (size_t k = 0; k < parts->n; k++)
			if (info[k].method != NULL && parts->part[k].len ==
			    parts->part[chosen].len &&
			    !memcmp(parts->part[k].text,
			    parts->part[chosen].text, parts->part[k].len)) {
				chosen = k;
				break;
			}
	}
	v->itip = info[chosen];
	memset(&info[chosen], 0, sizeof info[chosen]);
	v->have_itip = 1;
	v->ics = parts->part[chosen].text;
	v->ics_len = parts->part[chosen].len;
	parts->part[chosen].text = NULL;
	ret = 0;
out:
	for (size_t i = 0; i < parts->n; i++)
		ics_free(&info[i]);
	return ret;
}

/* ---- sender authentication (steps 3-6) ---- */

static int
gate_domain_listed(const struct gate_policy *p, const char *from_domain)
{
	if (p->dkim_domains_any)
		return 1;
	for (size_t i = 0; i < p->ndkim_domains; i++)
		if (!strcasecmp(p->dkim_domains[i], from_domain))
			return 1;
	return 0;
}

static int
gate_usable(enum dkim_res r, int temp_as_pass)
{
	return r == DKIM_PASS || (temp_as_pass && r == DKIM_TEMPERROR);
}

/* Does signature i satisfy dkim_signers? With temp_as_pass, as if every
 * key lookup that failed had succeeded. Writes the signer word. */
static int
gate_signer_ok(const struct gate *g, const struct gate_policy *p,
    const struct gate_verdict *v, size_t i, int temp_as_pass,
    char *word, size_t wlen)
{
	const struct dkim_sig *s = &v->dkim.sigs[i];
	const char *d = s->domain;

	if (!gate_usable(s->result, temp_as_pass) || !*d)
		return 0;
	for (size_t k = 0; k < p->nsigner_domains; k++)
		if (!strcasecmp(p->signer_domains[k], d)) {
			snprintf(word, wlen, "%s", d);
			return 1;
		}
	if ((p->signers & GATE_SIGNER_ALIGNED) && !gate_shared_signer(d) &&
	    dmarc_aligned(g->psl, d, v->from_domain, 0)) {
		snprintf(word, wlen, "aligned");
		return 1;
	}
	if ((p->signers & GATE_SIGNER_GOOGLE) &&
	    gate_google_tenant(d, v->from_domain)) {
		for (size_t j = 0; j < v->dkim.nsigs; j++) {
			if (j != i && !strcmp(v->dkim.sigs[j].domain,
			    "google.com") && gate_usable(v->dkim.sigs[j].result,
			    temp_as_pass)) {
				snprintf(word, wlen, "google-workspace");
				return 1;
			}
		}
	}
	if (p->signers & GATE_SIGNER_ANY) {
		snprintf(word, wlen, "any");
		return 1;
	}
	return 0;
}

/* require = dkim when DMARC found no record: step 6's relaxation. */
static enum gate_auth
gate_relax(const struct gate *g, const struct gate_policy *p,
    const struct gate_verdict *v, char *reason, size_t rlen, char *why,
    size_t wlen)
{
	char word[256];
	int npass = 0;

	if (!gate_domain_listed(p, v->from_domain)) {
		snprintf(reason, rlen, "dmarc-none");
		snprintf(why, wlen, "no DMARC record, and %s is not in "
		    "dkim_domains", v->from_domain);
		return AUTH_FAIL;
	}
	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		npass += v->dkim.sigs[i].result == DKIM_PASS;
		if (gate_signer_ok(g, p, v, i, 0, word, sizeof word)) {
			snprintf(reason, rlen, "dkim-relaxed");
			snprintf(why, wlen, "no DMARC record; DKIM pass d=%s "
			    "accepted as %s", v->dkim.sigs[i].domain, word);
			return AUTH_PASS;
		}
	}
	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		if (gate_signer_ok(g, p, v, i, 1, word, sizeof word)) {
			snprintf(reason, rlen, "dkim-temperror");
			snprintf(why, wlen, "no DMARC record; a key lookup "
			    "that could satisfy dkim_signers failed");
			return AUTH_TEMP;
		}
	}
	if (v->dkim.nsigs == 0) {
		snprintf(reason, rlen, "dkim-none");
		snprintf(why, wlen, "no DMARC record and no DKIM signature");
	} else if (npass == 0) {
		snprintf(reason, rlen, "dkim-fail");
		snprintf(why, wlen, "no DMARC record and no DKIM signature "
		    "passes");
	} else {
		snprintf(reason, rlen, "dkim-signer");
		snprintf(why, wlen, "no DMARC record; no passing signature is "
		    "from a signer in dkim_signers");
	}
	return AUTH_FAIL;
}

/* DMARC could not be looked up. Step 9: defer only if the answer could
 * change the outcome; if no answer could make the message pass, skip. */
static enum gate_auth
gate_auth_temp(const struct gate *g, const struct gate_policy *p,
    const struct gate_verdict *v, char *reason, size_t rlen, char *why,
    size_t wlen)
{
	int possible = 0, npass = 0;
	enum gate_auth r = AUTH_FAIL;

	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		enum dkim_res x = v->dkim.sigs[i].result;
		npass += x == DKIM_PASS;
		/* relaxed alignment: the most any record could allow */
		if ((x == DKIM_PASS || x == DKIM_TEMPERROR) &&
		    dmarc_aligned(g->psl, v->dkim.sigs[i].domain,
		    v->from_domain, 0))
			possible = 1;
	}
	if (v->spf_checked && !strcmp(v->spf.result, "pass") &&
	    dmarc_aligned(g->psl, v->spf.domain, v->from_domain, 0))
		possible = 1;
	if (p->require == GATE_REQUIRE_DKIM) {
		/* What "no record" would have given. */
		struct gate_verdict *h = malloc(sizeof *h);
		if (h == NULL) {
			possible = 1;
		} else {
			*h = *v;
			h->dmarc.result = DMARC_NONE;
			h->dmarc.authoritative_none = 1;
			r = gate_relax(g, p, h, reason, rlen, why, wlen);
			free(h);
		}
	}
	if (possible || r != AUTH_FAIL) {
		snprintf(reason, rlen, "dmarc-temperror");
		snprintf(why, wlen, "%s", v->dmarc.reason);
		return AUTH_TEMP;
	}
	if (p->require == GATE_REQUIRE_DMARC) {
		snprintf(reason, rlen, "%s", v->dkim.nsigs == 0 ? "dkim-none" :
		    npass == 0 ? "dkim-fail" : "dkim-unaligned");
		snprintf(why, wlen, "DMARC lookup failed, but no aligned "
		    "signature could make DMARC pass");
	}
	return AUTH_FAIL;
}

static enum gate_auth
gate_auth(const struct gate *g, const struct gate_policy *p,
    const struct gate_verdict *v, char *reason, size_t rlen, char *why,
    size_t wlen)
{
	const struct dmarc_result *d = &v->dmarc;

	if (p->require == GATE_REQUIRE_NONE) {
		snprintf(reason, rlen, "no-auth-required");
		snprintf(why, wlen, "policy.require=none: the sender is not "
		    "authenticated (calendar spam risk)");
		return AUTH_PASS;
	}
	switch (d->result) {
	case DMARC_PASS:
		snprintf(reason, rlen, "dmarc-pass");
		snprintf(why, wlen, "%s", d->reason);
		return AUTH_PASS;
	case DMARC_FAIL:
		snprintf(reason, rlen, "dmarc-fail");
		snprintf(why, wlen, "%s", d->reason);
		return AUTH_FAIL;
	case DMARC_PERMERROR:
		snprintf(reason, rlen, "dmarc-permerror");
		snprintf(why, wlen, "%s", d->reason);
		return AUTH_FAIL;
	case DMARC_TEMPERROR:
		return gate_auth_temp(g, p, v, reason, rlen, why, wlen);
	default:
		break;
	}
	if (p->require == GATE_REQUIRE_DMARC || !d->authoritative_none) {
		snprintf(reason, rlen, "dmarc-none");
		snprintf(why, wlen, "%s", d->reason);
		return AUTH_FAIL;
	}
	return gate_relax(g, p, v, reason, rlen, why, wlen);
}

/* The smallest change of require/dkim_signers/dkim_domains that would
 * accept, for a message that failed authentication. */
static void
gate_auth_hint(const struct gate *g, const struct gate_policy *p,
    const struct gate_verdict *v, char *hint, size_t hlen)
{
	struct gate_policy t = *p;
	char r[32], w[640], dom[300] = "";
	const char *sig_word[3] = { "aligned", "google-workspace", NULL };
	unsigned bits[2] = { GATE_SIGNER_ALIGNED, GATE_SIGNER_GOOGLE };
	char *one[1];

	if (v->dmarc.result == DMARC_FAIL || v->dmarc.result ==
	    DMARC_PERMERROR) {
		snprintf(hint, hlen, "none: _dmarc.%s publishes a DMARC "
		    "record%s%s and this message %s it; no relaxation "
		    "overrides a published record", v->dmarc.record_domain,
		    dmarc_policy_str(v->dmarc.policy) ? " with p=" : "",
		    dmarc_policy_str(v->dmarc.policy) ?
		    dmarc_policy_str(v->dmarc.policy) : "",
		    v->dmarc.result == DMARC_FAIL ? "fails" : "cannot use");
		return;
	}
	t.require = GATE_REQUIRE_DKIM;
	if (!gate_domain_listed(p, v->from_domain)) {
		one[0] = (char *)v->from_domain;
		t.dkim_domains = one;
		t.ndkim_domains = 1;
		snprintf(dom, sizeof dom, " and %s in dkim_domains",
		    v->from_domain);
	}
	if (gate_auth(g, &t, v, r, sizeof r, w, sizeof w) == AUTH_PASS) {
		if (p->require == GATE_REQUIRE_DMARC)
			snprintf(hint, hlen, "policy.require=dkim%s would "
			    "accept", dom);
		else
			snprintf(hint, hlen, "%s in dkim_domains would accept",
			    v->from_domain);
		return;
	}
	for (int k = 0; k < 2; k++) {
		t.signers = bits[k];
		t.nsigner_domains = 0;
		if (gate_auth(g, &t, v, r, sizeof r, w, sizeof w) ==
		    AUTH_PASS) {
			snprintf(hint, hlen, "policy.require=dkim with "
			    "dkim_signers=%s%s would accept", sig_word[k],
			    dom);
			return;
		}
	}
	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		const struct dkim_sig *s = &v->dkim.sigs[i];
		if (s->result != DKIM_PASS || gate_shared_signer(s->domain))
			continue;
		snprintf(hint, hlen, "policy.require=dkim with dkim_signers=%s"
		    "%s would accept (an explicit signer)", s->domain, dom);
		return;
	}
	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		if (v->dkim.sigs[i].result == DKIM_PASS) {
			snprintf(hint, hlen, "policy.require=dkim with "
			    "dkim_signers=any%s would accept (any signature: "
			    "proves only that the mail was not altered)", dom);
			return;
		}
	}
	snprintf(hint, hlen, "none: no DKIM signature passes; only "
	    "policy.require=none (no sender authentication) would accept");
}

/* ---- sender match (step 7) ---- */

static int
gate_sender_match(const struct gate_policy *p, struct gate_verdict *v)
{
	const char *m = v->itip.method;
	char addr[320];

	if (!p->organizer_must_match_from)
		return 0;
	if (!strcmp(m, "REPLY") || !strcmp(m, "COUNTER") ||
	    !strcmp(m, "REFRESH")) {
		/* RFC 5546 3.2.3: the replying attendee is the sender. */
		if (v->itip.nattendees == 0) {
			gate_set(v, GATE_SKIP, "attendee-mismatch",
			    "organizer_must_match_from=no would accept",
			    "%s without an ATTENDEE", m);
			return -1;
		}
		for (size_t i = 0; i < v->itip.nattendees; i++) {
			if (ics_address(v->itip.attendees[i], addr,
			    sizeof addr) != 0 || strcmp(addr, v->from)) {
				gate_set(v, GATE_SKIP, "attendee-mismatch",
				    "organizer_must_match_from=no would accept",
				    "%s ATTENDEE is not the From address", m);
				return -1;
			}
		}
		return 0;
	}
	if (v->itip.organizer == NULL ||
	    ics_address(v->itip.organizer, addr, sizeof addr) != 0 ||
	    strcmp(addr, v->from) != 0) {
		gate_set(v, GATE_SKIP, "organizer-mismatch",
		    "organizer_must_match_from=no would accept",
		    "%s ORGANIZER is not the From address", m);
		return -1;
	}
	return 0;
}

/* ---- the decision ---- */

static void
gate_authenticate(struct gate *g, const struct gate_policy *p,
    const struct msg *m, time_t now, struct gate_verdict *v)
{
	const char *spf_domain = NULL;
	struct timespec t0, t1;

	/* Every lookup in flight at once: one round trip, not four. */
	(void)dns_take_wait_ms();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dmarc_prefetch(g->dns, g->psl, v->from_domain);
	dkim_verify(g->dns, g->keys, m, now, &v->dkim);	/* prefetches its keys */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	v->dkim_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (p->spf == GATE_SPF_AUTHRES) {
		v->spf_checked = 1;
		if (!authres_spf(m, p->trusted_authserv_id, &v->spf)) {
			memset(&v->spf, 0, sizeof v->spf);
			strcpy(v->spf.result, "none");
		}
		if (!strcmp(v->spf.result, "pass") && v->spf.domain[0])
			spf_domain = v->spf.domain;
	}
	dmarc_evaluate(g->dns, g->psl, v->from_domain, &v->dkim, spf_domain,
	    &v->dmarc);
	v->dmarc_checked = 1;
	for (size_t i = 0; i < v->dkim.nsigs; i++)
		v->dkim_aligned[i] = v->dmarc.dkim_aligned[i];
	v->dns_ms = dns_take_wait_ms();
}

int
gate_decide_at(struct gate *g, const struct gate_policy *p, const char *raw,
    size_t len, time_t now, struct gate_verdict *v)
{
	struct mime_parts parts;
	struct msg m;
	char err[160], reason[32], why[640];
	enum gate_auth a;
	int ret = 0;

	memset(v, 0, sizeof *v);
	memset(&m, 0, sizeof m);
	if (len > MSG_MAX_SIZE) {
		gate_set(v, GATE_SKIP, "message-invalid", "none: the message "
		    "is too big", "message of %zu bytes", len);
		return 0;
	}
	/* Step 1: no iMIP content, nothing to decide. */
	if (mime_calendars(raw, len, &parts, err, sizeof err) != MIME_OK) {
		gate_set(v, GATE_SKIP, "mime-invalid", "none: the MIME "
		    "structure cannot be read safely", "%s", err);
		return 0;
	}
	if (parts.n == 0) {
		gate_set(v, GATE_IGNORE, "no-calendar", "", "no text/calendar "
		    "part and no application/ics with a METHOD");
		goto out;
	}
	if (msg_parse(raw, len, &m, err, sizeof err) != 0) {
		if (!strcmp(err, "out of memory")) {
			/* not the message's fault: try again later */
			gate_set(v, GATE_DEFER, "out-of-memory", "none: "
			    "retried later", "%s", err);
			ret = -1;
			goto out;
		}
		gate_set(v, GATE_SKIP, "message-invalid", "none: the header "
		    "section cannot be read", "%s", err);
		goto out;
	}
	/* Step 2, then the calendar itself: no DNS needed for these. */
	if (gate_from(&m, v) != 0 || gate_pick(&parts, v) != 0)
		goto out;
	gate_authenticate(g, p, &m, now, v);
	a = gate_auth(g, p, v, reason, sizeof reason, why, sizeof why);
	if (a == AUTH_FAIL) {
		char hint[512];
		gate_auth_hint(g, p, v, hint, sizeof hint);
		gate_set(v, GATE_SKIP, reason, hint, "%s", why);
		goto out;
	}
	/* Step 7; a mismatch skips whatever a retried lookup would say. */
	if (gate_sender_match(p, v) != 0)
		goto out;
	if (a == AUTH_TEMP) {
		/* Step 9: the failed lookup could change the outcome. */
		gate_set(v, GATE_DEFER, reason, "none: a DNS lookup failed "
		    "temporarily; the message is tried again later", "%s",
		    why);
		goto out;
	}
	v->unauthenticated = p->require == GATE_REQUIRE_NONE;
	gate_set(v, GATE_ACCEPT, reason, "", "%s", why);
out:
	mime_parts_free(&parts);
	msg_free(&m);
	return ret;
}

int
gate_decide(struct gate *g, const struct gate_policy *p, const char *msg,
    size_t len, struct gate_verdict *out)
{
	return gate_decide_at(g, p, msg, len, time(NULL), out);
}

/* ---- output ---- */

/*
 * The explain JSON of DESIGN.md, with server/json.c's writer (the one
 * escaper in the project: control characters escaped, invalid UTF-8 from a
 * calendar that lied about its charset replaced, so the JSON stays valid).
 */
char *
gate_verdict_json(const struct gate_verdict *v)
{
	struct json j;
	char *out, *nl;
	size_t len;

	json_init(&j);
	json_obj_begin(&j);
	json_kstr(&j, "decision", gate_decision_str(v->decision));
	json_kstr(&j, "reason", v->reason);
	json_kstr(&j, "hint", v->hint);
	json_kstr(&j, "from", v->from);
	json_kstr(&j, "from_domain", v->from_domain);
	json_key(&j, "dkim");
	json_arr_begin(&j);
	for (size_t i = 0; i < v->dkim.nsigs; i++) {
		const struct dkim_sig *s = &v->dkim.sigs[i];

		json_obj_begin(&j);
		json_kstr(&j, "domain", s->domain);
		json_kstr(&j, "selector", s->selector);
		json_kstr(&j, "result", dkim_res_str(s->result));
		json_kbool(&j, "aligned", v->dkim_aligned[i]);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "spf");
	if (v->spf_checked) {
		json_obj_begin(&j);
		json_kstr(&j, "result", v->spf.result);
		json_kstr(&j, "domain", v->spf.domain);
		json_kstr(&j, "source", v->spf.source);
		json_obj_end(&j);
	} else
		json_null(&j);
	json_key(&j, "dmarc");
	json_obj_begin(&j);
	json_kstr(&j, "result", v->dmarc_checked ?
	    dmarc_res_str(v->dmarc.result) : "none");
	json_kstr(&j, "policy", v->dmarc_checked ?
	    dmarc_policy_str(v->dmarc.policy) : NULL);
	json_obj_end(&j);
	json_key(&j, "itip");
	if (v->have_itip) {
		json_obj_begin(&j);
		json_kstr(&j, "method", v->itip.method);
		json_kstr(&j, "uid", v->itip.uid);
		json_kstr(&j, "organizer", v->itip.organizer);
		json_obj_end(&j);
	} else
		json_null(&j);
	json_obj_end(&j);
	out = json_finish(&j, &len);
	if (out == NULL)
		return NULL;
	nl = realloc(out, len + 2);	/* one object per line */
	if (nl == NULL) {
		free(out);
		return NULL;
	}
	nl[len] = '\n';
	nl[len + 1] = '\0';
	return nl;
}

void
gate_log(const struct gate_verdict *v, const char *user)
{
	char dk[1200] = "", qf[400], qu[200], qd[1300], qh[700], qr[64];
	size_t o = 0;

	for (size_t i = 0; i < v->dkim.nsigs && o < sizeof dk; i++) {
		int n = snprintf(dk + o, sizeof dk - o, "%s%s:%s:%s",
		    i ? "," : "", dkim_res_str(v->dkim.sigs[i].result),
		    v->dkim.sigs[i].domain[0] ? v->dkim.sigs[i].domain : "-",
		    v->dkim_aligned[i] ? "aligned" : "unaligned");
		if (n < 0)
			break;
		o += (size_t)n;
	}
	log_info("imip decision=%s reason=%s user=%s from=%s dkim=%s "
	    "dmarc=%s hint=%s", gate_decision_str(v->decision),
	    log_q(qr, sizeof qr, v->reason), log_q(qu, sizeof qu, user),
	    log_q(qf, sizeof qf, v->from), log_q(qd, sizeof qd, dk),
	    v->dmarc_checked ? dmarc_res_str(v->dmarc.result) : "-",
	    log_q(qh, sizeof qh, v->unauthenticated ? "policy.require=none: "
	    "sender not authenticated (calendar spam risk)" : v->hint));
}
