/*
 * tests/bench/opendkim_bench.c: `opendkim_bench KEYS MESSAGE.eml N [ROUNDS]`
 * verifies every DKIM signature of MESSAGE N times per round with
 * libopendkim (OpenDKIM's own verifier, the library opendkim and
 * opendkim-testmsg are built on), in one process on one thread, the way
 * build/tools/gate_bench drives calgate's gate: keys answered from memory
 * (the "DNS answers cached" of issue 4), the message fed the way the
 * opendkim milter feeds it (one header field at a time, then the body).
 * KEYS holds lines "selector._domainkey.domain<TAB>key record".
 *
 * Prints "<signatures passed> <N> <seconds> <messages per second> <CPU
 * messages per second>" for the fastest round. Built by `make bench` only
 * (it needs libopendkim-dev); used by tests/bench/gate_bench.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opendkim/dkim.h>

#include "server/file.h"

#define MAXKEYS 16

static struct {
	char *name, *value;
} keys[MAXKEYS];
static int nkeys;

/* libopendkim's key lookup hook: the key record from KEYS, no DNS. */
static DKIM_CBSTAT
lookup(DKIM *d, DKIM_SIGINFO *sig, unsigned char *buf, size_t buflen)
{
	char name[512];
	int i;

	(void)d;
	snprintf(name, sizeof name, "%s._domainkey.%s",
	    (const char *)dkim_sig_getselector(sig),
	    (const char *)dkim_sig_getdomain(sig));
	for (i = 0; i < nkeys; i++)
		if (strcasecmp(keys[i].name, name) == 0 &&
		    strlen(keys[i].value) < buflen) {
			strcpy((char *)buf, keys[i].value);
			return DKIM_CBSTAT_CONTINUE;
		}
	return DKIM_CBSTAT_NOTFOUND;
}

static int
load_keys(char *text)
{
	char *line, *save = NULL, *tab;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((tab = strchr(line, '\t')) == NULL || nkeys == MAXKEYS)
			return -1;
		*tab = '\0';
		keys[nkeys].name = line;
		keys[nkeys++].value = tab + 1;
	}
	return nkeys > 0 ? 0 : -1;
}

/* One verification of the whole message; the number of signatures that
 * passed (body hash matched and signature valid), or -1. */
static int
verify(DKIM_LIB *lib, const char *msg, size_t len)
{
	DKIM_STAT st;
	DKIM_SIGINFO **sigs;
	DKIM *d;
	const char *p = msg, *end = msg + len, *eol;
	int nsigs = 0, i, pass = 0;

	d = dkim_verify(lib, (unsigned char *)"bench", NULL, &st);
	if (d == NULL)
		return -1;
	/* Header fields, continuation lines included, without the final CRLF. */
	while (p < end && !(p + 1 < end && p[0] == '\r' && p[1] == '\n')) {
		const char *f = p;

		do {
			eol = memchr(p, '\n', (size_t)(end - p));
			p = eol ? eol + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		if (dkim_header(d, (unsigned char *)f,
		    (size_t)(p - f) - (p[-1] == '\n' ? 2 : 0)) != DKIM_STAT_OK)
			goto out;
	}
	if (dkim_eoh(d) != DKIM_STAT_OK)
		goto out;
	if (p < end)
		p += 2;
	if (dkim_body(d, (unsigned char *)p, (size_t)(end - p)) != DKIM_STAT_OK)
		goto out;
	dkim_eom(d, NULL);
	if (dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK)
		for (i = 0; i < nsigs; i++)
			pass += DKIM_SIG_CHECK(sigs[i]);
out:
	dkim_free(d);
	return pass;
}

static double
secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int
main(int argc, char **argv)
{
	DKIM_LIB *lib;
	struct timespec a, b, ca, cb;
	char err[300], *text, *msg;
	size_t len = 0, tlen = 0;
	long n, i, r, rounds = 5;
	double best = 0, best_cpu = 0;
	int pass = -1;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: opendkim_bench KEYS MESSAGE.eml N "
		    "[ROUNDS]\n");
		return 2;
	}
	text = file_read(argv[1], 1u << 20, &tlen, err, sizeof err);
	msg = file_read(argv[2], 64u << 20, &len, err, sizeof err);
	n = atol(argv[3]);
	if (argc == 5)
		rounds = atol(argv[4]);
	if (text == NULL || msg == NULL || load_keys(text) != 0 || n <= 0 ||
	    rounds <= 0) {
		fprintf(stderr, "opendkim_bench: bad arguments (%s)\n", err);
		return 2;
	}
	if ((lib = dkim_init(NULL, NULL)) == NULL ||
	    dkim_set_key_lookup(lib, lookup) != DKIM_STAT_OK) {
		fprintf(stderr, "opendkim_bench: dkim_init failed\n");
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
		for (i = 0; i < n; i++)
			pass = verify(lib, msg, len);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (n / secs(&a, &b) > best)
			best = n / secs(&a, &b);
		if (n / secs(&ca, &cb) > best_cpu)
			best_cpu = n / secs(&ca, &cb);
	}
	printf("%d %ld %.6f %.1f %.1f\n", pass, n, n / best, best, best_cpu);
	dkim_close(lib);
	free(text);
	free(msg);
	return pass > 0 ? 0 : 1;
}
