/*
 * tests/tools/gate_bench.c: `gate_bench -c FILE MESSAGE.eml N [ROUNDS]`
 * decides the same message N times per round, ROUNDS rounds (default 5),
 * on one thread with one gate (DNS answers cached after a warm-up) and
 * prints "<decision>/<reason> <N> <seconds> <messages per second> <CPU
 * messages per second> <floor>" for the fastest round: the best round is
 * the one least disturbed by whatever else the machine runs. The CPU rate
 * counts this thread's CPU time only. <floor> is the rate at which GnuTLS
 * alone does the cryptography such a message needs whatever the
 * verifier: one SHA-256 of the body and two RSA-2048 verifications (the
 * bound no amount of parsing work can beat). Used by
 * tests/bench/gate_bench.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "server/file.h"
#include "policy/gate.h"
#include "server/config.h"

/* A fixture, whole (server/file.c's reader, bounded at 64 MiB). */
static char *
slurp(const char *path, size_t *len)
{
	char err[300];

	return file_read(path, 64u << 20, len, err, sizeof err);
}

static double
secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Messages per second GnuTLS does the body hash and two RSA-2048
 * verifications at, best of rounds; 0 if the key cannot be made. */
static double
crypto_floor(const char *msg, size_t len, long n, long rounds)
{
	gnutls_privkey_t priv = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t h, sig = { NULL, 0 };
	unsigned char digest[32], bh[32];
	const char *body = memmem(msg, len, "\r\n\r\n", 4);
	struct timespec a, b;
	double best = 0;
	int ok = 0;

	body = body ? body + 4 : msg;
	h.data = digest;
	h.size = sizeof digest;
	gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, len, digest);
	if (gnutls_privkey_init(&priv) != 0 ||
	    gnutls_privkey_generate(priv, GNUTLS_PK_RSA, 2048, 0) != 0 ||
	    gnutls_pubkey_init(&pub) != 0 ||
	    gnutls_pubkey_import_privkey(pub, priv, 0, 0) != 0 ||
	    gnutls_privkey_sign_hash(priv, GNUTLS_DIG_SHA256, 0, &h, &sig)
	    != 0)
		goto out;
	for (long r = 0; r < rounds; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < n; i++) {
			gnutls_hash_fast(GNUTLS_DIG_SHA256, body,
			    (size_t)(msg + len - body), bh);
			for (int k = 0; k < 2; k++)
				ok += gnutls_pubkey_verify_hash2(pub,
				    GNUTLS_SIGN_RSA_SHA256, 0, &h, &sig) >= 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if ((double)n / secs(&a, &b) > best)
			best = (double)n / secs(&a, &b);
	}
out:
	gnutls_free(sig.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(priv);
	return ok == 2 * n * rounds ? best : 0;
}

int
main(int argc, char **argv)
{
	struct config *cfg;
	struct gate *g;
	struct gate_verdict v;
	struct timespec a, b, ca, cb;
	char err[256], *msg;
	size_t len = 0;
	long n, rounds = 5;
	double best = 0, best_cpu = 0;

	if ((argc != 5 && argc != 6) || strcmp(argv[1], "-c") != 0) {
		fprintf(stderr, "usage: gate_bench -c FILE MESSAGE.eml N "
		    "[ROUNDS]\n");
		return 2;
	}
	if (config_load(argv[2], &cfg, stderr) != 0)
		return 1;
	msg = slurp(argv[3], &len);
	n = atol(argv[4]);
	if (argc == 6)
		rounds = atol(argv[5]);
	g = gate_new(cfg->dns_addr, cfg->dns_port, cfg->dns_timeout_ms, err,
	    sizeof err);
	if (msg == NULL || g == NULL || n <= 0 || rounds <= 0) {
		fprintf(stderr, "gate_bench: %s\n", g ? argv[3] : err);
		return 1;
	}
	gate_decide(g, &cfg->policy, msg, len, &v);	/* warm the cache */
	gate_verdict_free(&v);
	for (long r = 0; r < rounds; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
		for (long i = 0; i < n; i++) {
			gate_decide(g, &cfg->policy, msg, len, &v);
			if (i + 1 < n || r + 1 < rounds)
				gate_verdict_free(&v);
		}
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if ((double)n / secs(&a, &b) > best)
			best = (double)n / secs(&a, &b);
		if ((double)n / secs(&ca, &cb) > best_cpu)
			best_cpu = (double)n / secs(&ca, &cb);
	}
	printf("%s/%s %ld %.6f %.1f %.1f %.1f\n",
	    gate_decision_str(v.decision), v.reason, n, (double)n / best, best,
	    best_cpu, crypto_floor(msg, len, n, rounds));
	gate_verdict_free(&v);
	gate_free(g);
	config_free(cfg);
	free(msg);
	return 0;
}
