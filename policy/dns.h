/*
 * policy/dns.h: TXT lookups through libunbound, with a per-lookup deadline
 * and a TTL cache. Thread-safe: one struct dns serves every thread.
 */
#ifndef CALGATE_DNS_H
#define CALGATE_DNS_H

#include <stddef.h>

#define DNS_MAX_NAME	253	/* RFC 1035 presentation length */

enum dns_status {
	DNS_OK = 0,		/* at least one TXT record */
	DNS_NXDOMAIN,		/* authoritative: the name does not exist */
	DNS_NODATA,		/* authoritative: the name has no TXT */
	DNS_TEMPFAIL,		/* SERVFAIL, REFUSED, timeout, resolver error */
};

struct dns;

/*
 * A resolver forwarding every query to addr@port, or using the system's
 * resolv.conf when addr is NULL. Every lookup gives up after timeout_ms.
 * Returns NULL with a sentence in err on failure; free with dns_free.
 */
struct dns *dns_new(const char *addr, int port, int timeout_ms,
    char *err, size_t errlen);
void dns_free(struct dns *);	/* accepts NULL */

/*
 * Looks up the TXT records of name. On DNS_OK, *txt is a malloc'd array of
 * *n malloc'd strings, one per record with its character-strings joined
 * (caller frees with dns_txt_free). Otherwise *txt is NULL and *n is 0.
 * A name that is not a valid domain name gives DNS_NXDOMAIN without a query.
 */
enum dns_status dns_txt(struct dns *, const char *name, char ***txt,
    size_t *n);
void dns_txt_free(char **txt, size_t n);

/*
 * Starts a lookup of name in the background and caches its answer, so
 * that the dns_txt() calls that follow overlap instead of waiting one
 * after the other. Does nothing for a cached or invalid name.
 */
void dns_prefetch(struct dns *, const char *name);

/*
 * 1 when d is a domain name we are willing to query and print: labels of
 * letters, digits, '-' and '_', each 1-63 bytes, at most DNS_MAX_NAME in
 * all, no trailing dot; else 0.
 */
int dns_name_ldh(const char *d);

/* "ok", "nxdomain", "nodata", "tempfail". */
const char *dns_status_str(enum dns_status);

/* Lookups answered from the cache and sent to the resolver (for tests). */
void dns_stats(struct dns *, unsigned long *hits, unsigned long *misses);
/*
 * Milliseconds the calling thread waited on uncached lookups since the
 * last call; resets the count. For timing one decision.
 */
double dns_take_wait_ms(void);

#endif
