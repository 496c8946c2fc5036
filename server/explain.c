/*
 * server/explain.c: `calgate explain -c FILE [--user NAME] MESSAGE.eml`.
 * Runs the same gate_decide() the poller runs, changes nothing, prints the
 * verdict as JSON. Argument parsing is main.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/gate.h"
#include "server/explain.h"

/* Reads the whole file, refusing more than EXPLAIN_MAX_MSG bytes. */
static char *
explain_read(const char *path, size_t *len, FILE *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL) {
		fprintf(err, "calgate: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t r;
		if (n == cap) {
			char *nb;
			if (cap > EXPLAIN_MAX_MSG) {
				fprintf(err, "calgate: %s: larger than %u "
				    "bytes\n", path, EXPLAIN_MAX_MSG);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				fprintf(err, "calgate: out of memory\n");
				goto fail;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(err, "calgate: %s: read error\n", path);
		goto fail;
	}
	if (n > EXPLAIN_MAX_MSG) {
		fprintf(err, "calgate: %s: larger than %u bytes\n", path,
		    EXPLAIN_MAX_MSG);
		goto fail;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

int
explain_run(const struct config *cfg, const char *user, const char *path,
    FILE *out, FILE *err)
{
	const struct gate_policy *pol = &cfg->policy;
	struct gate_verdict v;
	struct gate *g;
	char e[256], *msg, *json;
	size_t len = 0;

	if (user != NULL) {
		const struct user_conf *u = config_user(cfg, user);
		if (u == NULL) {
			fprintf(err, "calgate: no [user %s] in %s\n", user,
			    cfg->path ? cfg->path : "the configuration");
			return 1;
		}
		pol = &u->policy;
	}
	msg = explain_read(path, &len, err);
	if (msg == NULL)
		return 1;
	g = gate_new(cfg->dns_addr, cfg->dns_port, cfg->dns_timeout_ms, e,
	    sizeof e);
	if (g == NULL) {
		fprintf(err, "calgate: %s\n", e);
		free(msg);
		return 1;
	}
	gate_decide(g, pol, msg, len, &v);
	/* merge-engine checks (steps 7-8 for known UIDs, new_events_from)
	 * hook here: with --user, run the iTIP engine read-only on v (stored
	 * ORGANIZER of v.itip.uid, known_senders) and let it turn an accept
	 * into a skip before printing. */
	json = gate_verdict_json(&v);
	if (json != NULL) {
		fputs(json, out);
		free(json);
	}
	gate_verdict_free(&v);
	gate_free(g);
	free(msg);
	if (json == NULL) {
		fprintf(err, "calgate: out of memory\n");
		return 1;
	}
	return 0;
}
