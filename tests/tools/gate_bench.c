/*
 * tests/tools/gate_bench.c: `gate_bench -c FILE MESSAGE.eml N` decides the
 * same message N times on one thread with one gate (DNS answers cached
 * after the first round) and prints "<decision>/<reason> <N> <seconds>
 * <messages per second>". Used by tests/bench/gate_bench.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/gate.h"
#include "server/config.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0) {
		rewind(f);
		b = malloc((size_t)n + 1);
		if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
			free(b);
			b = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return b;
}

int
main(int argc, char **argv)
{
	struct config *cfg;
	struct gate *g;
	struct gate_verdict v;
	struct timespec a, b;
	char err[256], *msg;
	size_t len = 0;
	long n;
	double s;

	if (argc != 5 || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr, "usage: gate_bench -c FILE MESSAGE.eml N\n");
		return 2;
	}
	if (config_load(argv[2], &cfg, stderr) != 0)
		return 1;
	msg = slurp(argv[3], &len);
	n = atol(argv[4]);
	g = gate_new(cfg->dns_addr, cfg->dns_port, cfg->dns_timeout_ms, err,
	    sizeof err);
	if (msg == NULL || g == NULL || n <= 0) {
		fprintf(stderr, "gate_bench: %s\n", g ? argv[3] : err);
		return 1;
	}
	gate_decide(g, &cfg->policy, msg, len, &v);	/* warm the cache */
	gate_verdict_free(&v);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		gate_decide(g, &cfg->policy, msg, len, &v);
		if (i + 1 < n)
			gate_verdict_free(&v);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%s/%s %ld %.6f %.1f\n", gate_decision_str(v.decision),
	    v.reason, n, s, (double)n / s);
	gate_verdict_free(&v);
	gate_free(g);
	config_free(cfg);
	free(msg);
	return 0;
}
