/*
 * server/metrics.h: process-wide counters for GET /metrics (Prometheus
 * text format 0.0.4). Every function is thread-safe and cheap; call them
 * from anywhere. Label values are bounded: unknown HTTP methods count as
 * "other", and past a fixed number of distinct decision reasons the rest
 * count as reason "other".
 */
#ifndef CALGATE_METRICS_H
#define CALGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* One finished HTTP request (http.c calls it for every request). */
void metrics_http(const char *method, int status);
/* One IMAP poll of one mailbox (a check for new mail, IDLE wake or not). */
void metrics_poll(void);
/* One gate decision: decision accept|skip|defer|ignore, reason its code. */
void metrics_decision(const char *decision, const char *reason);
/* How long one DNS lookup took, and one DKIM signature verification. */
void metrics_dns_ms(double ms);
void metrics_dkim_ms(double ms);

/*
 * The whole exposition as text (malloc'd, caller frees; *len its length),
 * or NULL when out of memory. started: the process start, unix seconds.
 */
char *metrics_render(int64_t started, size_t *len);

#endif
