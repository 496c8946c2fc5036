/*
 * tests/tools/poll_driver.c: runs the IMAP pollers alone, for the
 * integration tests (not a unit test; `make build/tools/poll_driver`).
 *
 *   poll_driver -c CONF -o RECORD [-v VERDICT_FILE]
 *
 * Loads CONF, opens its store, starts a poller per [user] with imap, with a
 * hook that stands in for the gate and the merge engine: it writes one
 * imip_log row (decision "accept", or "defer" with next_retry in
 * $POLL_DRIVER_DEFER_S seconds, default 2) and appends a line
 *   USER UIDVALIDITY UID SHA256-OF-RAW RETRY_LOG_ID
 * to RECORD. VERDICT_FILE, read at every call, says what to return: "done"
 * (default), "defer", "defer SECONDS" (next_retry that far from now, may
 * be negative) or "retry". SIGHUP reloads CONF; SIGTERM stops.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imap-poller/poller.h"
#include "server/config.h"
#include "server/http.h"
#include "server/log.h"
#include "server/store.h"

struct driver {
	const char *record;
	const char *verdict_file;
	pthread_mutex_t mu;
};

/* "done", "retry", or "defer [SECONDS]" (next_retry = now + SECONDS). */
static enum poller_verdict
read_verdict(const char *path, int *defer_s)
{
	char buf[32] = "";
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return POLLER_DONE;
	if (fgets(buf, sizeof buf, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	if (!strncmp(buf, "defer", 5)) {
		if (buf[5] == ' ')
			*defer_s = atoi(buf + 6);
		return POLLER_DEFER;
	}
	if (!strncmp(buf, "retry", 5))
		return POLLER_RETRY;
	return POLLER_DONE;
}

static enum poller_verdict
hook(void *arg, struct server *srv, const struct user_conf *u,
    const struct poller_msg *m)
{
	struct driver *d = arg;
	const char *env = getenv("POLL_DRIVER_DEFER_S");
	int defer_s = env ? atoi(env) : 2;
	enum poller_verdict v = read_verdict(d->verdict_file, &defer_s);
	int64_t next = v == POLLER_DEFER ? (int64_t)time(NULL) + defer_s : 0;
	const char *decision = v == POLLER_DEFER ? "defer" : "accept";
	unsigned char h[32];
	char hex[65];
	FILE *f;
	int64_t log_id = 0;
	int rc;

	if (v == POLLER_RETRY)
		return v;
	/* As the real hook does: one transaction with the poller's
	 * bookkeeping. */
	if (store_begin(srv->store))
		return POLLER_RETRY;
	if (m->retry_log_id) {
		struct store_imip e = {
			.id = m->retry_log_id, .user_id = u->store_id,
			.decision = decision, .reason = "driver",
			.next_retry = next,
		};
		struct store_imip_raw old;

		log_id = m->retry_log_id;
		rc = store_imip_raw(srv->store, log_id, &old);
		e.attempts = old.attempts + 1;	/* retries so far */
		store_imip_raw_clear(&old);
		if (rc == 0)
			rc = store_imip_update(srv->store, &e);
	} else {
		struct store_imip e = {
			.user_id = u->store_id, .uidvalidity = m->uidvalidity,
			.imap_uid = m->uid, .decision = decision,
			.reason = "driver", .raw = m->raw, .raw_len = m->len,
			.next_retry = next,
		};

		rc = store_imip_insert(srv->store, &e, &log_id);
	}
	if (rc == 0)
		rc = m->bookkeep(m->bookkeep_ctx, log_id);
	if (rc == 0)
		rc = store_commit(srv->store);
	else
		store_rollback(srv->store);
	if (rc != 0)
		return POLLER_RETRY;
	gnutls_hash_fast(GNUTLS_DIG_SHA256, m->raw, m->len, h);
	for (int i = 0; i < 32; i++)
		snprintf(hex + i * 2, 3, "%02x", h[i]);
	pthread_mutex_lock(&d->mu);
	f = fopen(d->record, "a");
	if (f != NULL) {
		fprintf(f, "%s %u %u %s %lld\n", u->name, m->uidvalidity,
		    m->uid, hex, (long long)m->retry_log_id);
		fclose(f);
	}
	pthread_mutex_unlock(&d->mu);
	return v;
}

static int
sync_users(struct store *st, struct config *cfg)
{
	for (size_t i = 0; i < cfg->nusers; i++)
		if (store_user_ensure(st, cfg->users[i].name,
		    &cfg->users[i].store_id))
			return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct driver d = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const char *conf = NULL;
	struct config *cfg, *fresh;
	struct server srv;
	char err[512];
	sigset_t set;
	int sig;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-c"))
			conf = argv[i + 1];
		else if (!strcmp(argv[i], "-o"))
			d.record = argv[i + 1];
		else if (!strcmp(argv[i], "-v"))
			d.verdict_file = argv[i + 1];
	}
	if (conf == NULL || d.record == NULL) {
		fprintf(stderr, "usage: poll_driver -c CONF -o RECORD "
		    "[-v VERDICT_FILE]\n");
		return 2;
	}
	if (config_load(conf, &cfg, stderr) != 0)
		return 1;
	log_set_level(cfg->log_level);
	memset(&srv, 0, sizeof srv);
	pthread_mutex_init(&srv.cfg_mu, NULL);
	srv.cfg = cfg;
	srv.store = store_open(cfg->data_dir, err, sizeof err);
	if (srv.store == NULL || sync_users(srv.store, cfg)) {
		fprintf(stderr, "poll_driver: store: %s\n", err);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (poller_start(&srv, hook, &d) != 0)
		log_warn("driver some pollers did not start");
	log_info("driver started pid=%ld", (long)getpid());
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (config_load(conf, &fresh, stderr) != 0 ||
		    sync_users(srv.store, fresh)) {
			log_error("driver reload refused");
			continue;
		}
		server_config_swap(&srv, fresh);
		poller_reload(&srv);
		log_info("driver reloaded");
	}
	log_info("driver stopping");
	if (poller_stop() > 0) {
		/* A straggler still uses the store: as calgate serve does. */
		log_warn("driver stopped accounts_abandoned=1+");
		fflush(NULL);
		_exit(0);
	}
	store_close(srv.store);
	config_free(srv.cfg);
	pthread_mutex_destroy(&srv.cfg_mu);
	log_info("driver stopped");
	return 0;
}
