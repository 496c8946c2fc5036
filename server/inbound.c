/*
 * server/inbound.c: the inbound path for one message: gate, merge-engine
 * checks and merge, record, log line. Nothing here judges mail itself:
 * policy/ decides authentication, server/itip.c decides what the user's
 * calendars allow; this file joins them and keeps the record honest.
 */
#include "server/inbound.h"

#include <libetpan/libetpan.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap-poller/poller.h"
#include "policy/msg.h"
#include "server/log.h"
#include "server/metrics.h"

#define INBOUND_MAX_SUBJECT	998	/* RFC 5322 line limit */
#define DEFER_MAX_STEP		(6 * 3600)

void
inbound_clear(struct inbound *in)
{
	if (in == NULL)
		return;
	gate_verdict_free(&in->v);
	memset(in, 0, sizeof *in);
}

/* The hint for a refusal by the merge engine: what would change it. */
static void
merge_hint(struct inbound *in, const struct user_conf *u)
{
	const char *r = in->merge.reason;
	char *h = in->v.hint;
	size_t n = sizeof in->v.hint;

	if (!strcmp(r, "unknown-organizer"))
		snprintf(h, n, "policy.new_events_from = known for user %s: "
		    "add %s (or @its-domain) to known_senders, or set "
		    "policy.new_events_from = anyone, to accept new events "
		    "from this organizer.", u->name,
		    in->v.from[0] ? in->v.from : "the organizer");
	else if (!strcmp(r, "organizer-changed"))
		snprintf(h, n, "The event is already in %s's calendar with "
		    "another organizer; only that organizer can change it. "
		    "No setting changes this.", u->name);
	else
		snprintf(h, n, "%s No setting changes this.",
		    in->merge.detail);
}

/* The merge engine's part, on an accepted verdict (see inbound.h). */
static int
merge_step(struct store *st, const struct user_conf *u, int dry_run,
    struct inbound *out)
{
	if (out->v.decision != GATE_ACCEPT || st == NULL || u == NULL ||
	    !out->v.have_itip)
		return 0;
	if (itip_apply(st, u, out->v.from, out->v.ics, out->v.ics_len,
	    dry_run, &out->merge) != 0)
		return -1;
	out->merged = 1;
	switch (out->merge.outcome) {
	case ITIP_APPLIED:
		break;			/* the gate's reason says why */
	case ITIP_NOOP:
		/* Accepted, but nothing changed: say why. */
		snprintf(out->v.reason, sizeof out->v.reason, "%.31s",
		    out->merge.reason);
		snprintf(out->v.hint, sizeof out->v.hint, "%s",
		    out->merge.detail);
		break;
	case ITIP_REFUSED:
		out->v.decision = GATE_SKIP;
		snprintf(out->v.reason, sizeof out->v.reason, "%.31s",
		    out->merge.reason);
		snprintf(out->v.detail, sizeof out->v.detail, "%s",
		    out->merge.detail);
		merge_hint(out, u);
		break;
	}
	return 0;
}

int
inbound_decide(struct gate *g, struct store *st, const struct config *cfg,
    const struct user_conf *u, const char *raw, size_t len, int dry_run,
    struct inbound *out)
{
	memset(out, 0, sizeof *out);
	gate_decide(g, u ? &u->policy : &cfg->policy, raw, len, &out->v);
	return merge_step(st, u, dry_run, out);
}

/* The first header called name, unfolded and RFC 2047-decoded; malloc'd. */
static char *
header_text(const struct msg *m, const char *name, int decode)
{
	for (size_t i = 0; i < m->nhdrs; i++) {
		char *v, *dec = NULL;
		size_t idx = 0;

		if (!msg_is(&m->hdrs[i], name))
			continue;
		v = msg_value(&m->hdrs[i]);
		if (v == NULL)
			return NULL;
		if (strlen(v) > INBOUND_MAX_SUBJECT)
			v[INBOUND_MAX_SUBJECT] = '\0';
		if (decode && mailmime_encoded_phrase_parse("utf-8", v,
		    strlen(v), &idx, "utf-8", &dec) == MAILIMF_NO_ERROR &&
		    dec != NULL) {
			free(v);
			return dec;
		}
		return v;
	}
	return NULL;
}

/* Retry bookkeeping for a defer: next try, or give up. */
static void
defer_schedule(struct inbound *in, const struct config *cfg, int64_t first,
    int attempts, int64_t now, int64_t *next)
{
	int64_t step = cfg->defer_retry;

	if (now - first >= cfg->defer_max) {
		in->v.decision = GATE_SKIP;
		snprintf(in->v.reason, sizeof in->v.reason, "defer-expired");
		snprintf(in->v.hint, sizeof in->v.hint, "The check kept "
		    "failing temporarily (DNS) for %lld seconds ([server] "
		    "defer_max). Use \"Check again\" once DNS answers.",
		    (long long)(now - first));
		*next = 0;
		return;
	}
	/* [server] defer_retry, then doubling with every retry. */
	for (int i = 0; i < attempts && step < DEFER_MAX_STEP; i++)
		step *= 2;
	if (step > DEFER_MAX_STEP)
		step = DEFER_MAX_STEP;
	*next = now + step;
	if (*next > first + cfg->defer_max)
		*next = first + cfg->defer_max;
}

int
inbound_process(struct server *srv, const struct config *cfg,
    const struct user_conf *u, const char *raw, size_t len,
    const struct inbound_origin *origin, int64_t *log_id)
{
	struct store_imip rec;
	struct store_imip_raw old;
	struct inbound in;
	struct msg m;
	char *subject = NULL, *msgid = NULL, *json = NULL, err[128];
	int64_t now = (int64_t)time(NULL), first = now;
	int attempts = 0, rc = -1, have_msg;

	memset(&old, 0, sizeof old);
	if (origin && origin->log_id) {
		if (store_imip_raw(srv->store, origin->log_id, &old) != 0)
			return -1;
		first = old.ts;
		attempts = old.attempts + 1;
		store_imip_raw_clear(&old);
	}
	/* The gate's DNS lookups run before the write lock is taken. */
	memset(&in, 0, sizeof in);
	gate_decide(srv->gate, &u->policy, raw, len, &in.v);
	if (store_begin(srv->store)) {
		inbound_clear(&in);
		return -1;
	}
	if (merge_step(srv->store, u, 0, &in) != 0)
		goto out;
	memset(&rec, 0, sizeof rec);
	if (in.v.decision == GATE_DEFER)
		defer_schedule(&in, cfg, first, attempts, now,
		    &rec.next_retry);
	have_msg = msg_parse(raw, len, &m, err, sizeof err) == 0;
	if (have_msg) {
		subject = header_text(&m, "Subject", 1);
		msgid = header_text(&m, "Message-ID", 0);
	}
	msg_free(&m);		/* even when the parse failed */
	json = gate_verdict_json(&in.v);
	rec.id = origin ? origin->log_id : 0;
	rec.user_id = u->store_id;
	rec.uidvalidity = origin ? origin->uidvalidity : 0;
	rec.imap_uid = origin ? origin->imap_uid : 0;
	rec.message_id = msgid;
	rec.from_addr = in.v.from[0] ? in.v.from : NULL;
	rec.subject = subject;
	if (in.v.have_itip) {
		rec.method = in.v.itip.method;
		rec.ical_uid = in.v.itip.uid;
		rec.summary = in.v.itip.summary;
		rec.dtstart = in.v.itip.dtstart;
	}
	rec.decision = gate_decision_str(in.v.decision);
	rec.reason = in.v.reason;
	rec.hint = in.v.hint;
	rec.detail = json;
	/* Keep the message only while someone may want to check it again. */
	if (in.v.decision == GATE_SKIP || in.v.decision == GATE_DEFER) {
		rec.raw = raw;
		rec.raw_len = len;
	}
	rec.attempts = attempts;
	if (rec.id) {
		if (store_imip_update(srv->store, &rec) != 0)
			goto out;
	} else if (store_imip_insert(srv->store, &rec, &rec.id) != 0)
		goto out;
	if (log_id)
		*log_id = rec.id;
	if (origin && origin->bookkeep &&
	    origin->bookkeep(origin->bookkeep_ctx, rec.id) != 0)
		goto out;
	rc = (int)in.v.decision;
out:
	if (rc < 0) {
		store_rollback(srv->store);
	} else if (store_commit(srv->store) != 0) {
		rc = -1;
	} else {
		gate_log(&in.v, u->name);
		metrics_decision(gate_decision_str(in.v.decision),
		    in.v.reason);
		if (in.v.dkim_ms > 0)
			metrics_dkim_ms(in.v.dkim_ms);
		if (in.v.dns_ms > 0)
			metrics_dns_ms(in.v.dns_ms);
	}
	free(subject);
	free(msgid);
	free(json);
	inbound_clear(&in);
	return rc;
}

int
inbound_recheck(struct server *srv, const struct user_conf *u,
    int64_t log_id, char *err, size_t errlen)
{
	struct inbound_origin origin;
	struct store_imip_raw old;
	struct config *cfg;
	int rc;

	if (store_imip_raw(srv->store, log_id, &old) != 0 ||
	    old.user_id != u->store_id) {
		snprintf(err, errlen, "no such invitation");
		store_imip_raw_clear(&old);
		return -1;
	}
	if (old.raw == NULL) {
		snprintf(err, errlen, "the message was not kept; it can only "
		    "be checked when it arrives again");
		store_imip_raw_clear(&old);
		return -1;
	}
	memset(&origin, 0, sizeof origin);
	origin.log_id = log_id;
	origin.uidvalidity = old.uidvalidity;
	origin.imap_uid = old.imap_uid;
	cfg = server_config_get(srv);
	rc = inbound_process(srv, cfg, u, old.raw, old.len, &origin, NULL);
	server_config_put(srv, cfg);
	store_imip_raw_clear(&old);
	if (rc < 0) {
		snprintf(err, errlen, "the store could not be updated");
		return -1;
	}
	return 0;
}

enum poller_verdict
inbound_hook(void *arg, struct server *srv, const struct user_conf *u,
    const struct poller_msg *m)
{
	struct inbound_origin origin;
	struct config *cfg;
	int rc;

	(void)arg;
	memset(&origin, 0, sizeof origin);
	origin.uidvalidity = m->uidvalidity;
	origin.imap_uid = m->uid;
	origin.log_id = m->retry_log_id;
	origin.bookkeep = m->bookkeep;
	origin.bookkeep_ctx = m->bookkeep_ctx;
	cfg = server_config_get(srv);
	rc = inbound_process(srv, cfg, u, m->raw, m->len, &origin, NULL);
	server_config_put(srv, cfg);
	if (rc < 0)
		return POLLER_RETRY;
	return rc == GATE_DEFER ? POLLER_DEFER : POLLER_DONE;
}
