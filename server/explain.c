/*
 * server/explain.c: `calgate explain -c FILE [--user NAME] MESSAGE.eml`.
 * Runs the same gate_decide() the poller runs, changes nothing, prints the
 * verdict as JSON. Argument parsing is main.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "policy/gate.h"
#include "server/explain.h"
#include "server/file.h"
#include "server/inbound.h"
#include "server/store.h"

/*
 * The user's store, read-only use: the real one when it exists, else an
 * empty one in a temporary directory (no calendars yet), so the merge
 * engine's checks run the same way. *tmp is set to the directory to
 * remove afterwards.
 */
static struct store *
explain_store(const struct config *cfg, struct user_conf *u, char *tmp,
    size_t tmplen, FILE *err)
{
	char path[4096], e[256];
	struct store *st;
	struct stat sb;

	tmp[0] = '\0';
	snprintf(path, sizeof path, "%s/calgate.db", cfg->data_dir);
	if (stat(path, &sb) == 0) {
		st = store_open(cfg->data_dir, e, sizeof e);
	} else {
		snprintf(tmp, tmplen, "/tmp/calgate-explain-XXXXXX");
		if (mkdtemp(tmp) == NULL) {
			fprintf(err, "calgate: cannot make a temporary "
			    "directory\n");
			return NULL;
		}
		st = store_open(tmp, e, sizeof e);
	}
	if (st == NULL) {
		fprintf(err, "calgate: %s\n", e);
		return NULL;
	}
	if (store_user_id(st, u->name, &u->store_id) != 0)
		u->store_id = 0;	/* no calendars yet */
	return st;
}

static void
explain_store_close(struct store *st, const char *tmp)
{
	char path[4200];

	store_close(st);
	if (tmp[0] == '\0')
		return;
	snprintf(path, sizeof path, "%s/calgate.db", tmp);
	unlink(path);
	snprintf(path, sizeof path, "%s/calgate.db-wal", tmp);
	unlink(path);
	snprintf(path, sizeof path, "%s/calgate.db-shm", tmp);
	unlink(path);
	rmdir(tmp);
}

int
explain_run(const struct config *cfg, const char *user, const char *path,
    FILE *out, FILE *err)
{
	struct user_conf ucopy, *u = NULL;
	struct store *st = NULL;
	struct inbound in;
	struct gate *g;
	char e[256], tmp[64] = "", *msg, *json;
	size_t len = 0;
	int rc;

	if (user != NULL) {
		const struct user_conf *cu = config_user(cfg, user);

		if (cu == NULL) {
			fprintf(err, "calgate: no [user %s] in %s\n", user,
			    cfg->path ? cfg->path : "the configuration");
			return 1;
		}
		ucopy = *cu;
		u = &ucopy;
	}
	msg = file_read(path, EXPLAIN_MAX_MSG, &len, e, sizeof e);
	if (msg == NULL) {
		fprintf(err, "calgate: %s\n", e);
		return 1;
	}
	g = gate_new(cfg->dns_addr, cfg->dns_port, cfg->dns_timeout_ms, e,
	    sizeof e);
	if (g == NULL) {
		fprintf(err, "calgate: %s\n", e);
		free(msg);
		return 1;
	}
	/* With --user, the merge engine's checks run too (stored ORGANIZER
	 * of a known UID, new_events_from), as a dry run: nothing written. */
	if (u != NULL && (st = explain_store(cfg, u, tmp, sizeof tmp,
	    err)) == NULL) {
		gate_free(g);
		free(msg);
		return 1;
	}
	rc = inbound_decide(g, st, cfg, u, msg, len, 1, &in);
	json = rc == 0 ? gate_verdict_json(&in.v) : NULL;
	if (json != NULL) {
		fputs(json, out);
		free(json);
	}
	inbound_clear(&in);
	if (st)
		explain_store_close(st, tmp);
	gate_free(g);
	free(msg);
	if (json == NULL) {
		fprintf(err, rc ? "calgate: the store could not be read\n"
		    : "calgate: out of memory\n");
		return 1;
	}
	return 0;
}
