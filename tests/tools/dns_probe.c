/*
 * tests/tools/dns_probe.c: `dns_probe ADDR PORT TIMEOUT_MS NAME...` looks
 * up each NAME's TXT records twice through policy/dns.c and prints one
 * line per lookup, "NAME STATUS MS [RECORD|RECORD...]", then
 * "hits=N misses=M". Used by tests/integration/test_gate.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "policy/dns.h"

int
main(int argc, char **argv)
{
	struct dns *d;
	char err[256];
	unsigned long hits, misses;

	if (argc < 5) {
		fprintf(stderr, "usage: dns_probe ADDR PORT TIMEOUT_MS NAME..."
		    "\n");
		return 2;
	}
	d = dns_new(argv[1], atoi(argv[2]), atoi(argv[3]), err, sizeof err);
	if (d == NULL) {
		fprintf(stderr, "dns_probe: %s\n", err);
		return 1;
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 4; i < argc; i++) {
			struct timespec a, b;
			char **txt;
			size_t n;
			enum dns_status st;

			clock_gettime(CLOCK_MONOTONIC, &a);
			st = dns_txt(d, argv[i], &txt, &n);
			clock_gettime(CLOCK_MONOTONIC, &b);
			printf("%s %s %ld ", argv[i], dns_status_str(st),
			    (b.tv_sec - a.tv_sec) * 1000 +
			    (b.tv_nsec - a.tv_nsec) / 1000000);
			for (size_t k = 0; k < n; k++)
				printf("%s%s", k ? "|" : "", txt[k]);
			printf("\n");
			dns_txt_free(txt, n);
		}
	}
	dns_stats(d, &hits, &misses);
	printf("hits=%lu misses=%lu\n", hits, misses);
	dns_free(d);
	return 0;
}
