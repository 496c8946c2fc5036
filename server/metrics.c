/*
 * server/metrics.c: the counters behind GET /metrics. One mutex guards all
 * of them: they change a few times per request or poll, never in a loop.
 * Families and label sets are fixed in size so that a client sending odd
 * methods, or a sender provoking odd reasons, cannot grow memory.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_HTTP_SLOTS	128
#define METRICS_REASON_SLOTS	64
#define METRICS_LABEL_MAX	48

static const char *const http_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND",
	"PROPPATCH", "MKCOL", "MKCALENDAR", "REPORT", "COPY", "MOVE", "LOCK",
	"UNLOCK", "ACL", "other",
};
#define NMETHODS (sizeof http_methods / sizeof http_methods[0])

static const char *const decisions[] = {
	"accept", "skip", "defer", "ignore", "other",
};
#define NDECISIONS (sizeof decisions / sizeof decisions[0])

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double buckets[] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct histogram {
	uint64_t counts[NBUCKETS];	/* per bucket, not cumulative */
	uint64_t count;
	double sum;			/* seconds */
};

static struct {
	pthread_mutex_t mu;
	struct {
		unsigned char method;
		int status;
		uint64_t n;
	} http[METRICS_HTTP_SLOTS];
	size_t nhttp;
	uint64_t http_other;		/* past the slots (rare) */
	uint64_t polls;
	struct {
		unsigned char decision;
		char reason[METRICS_LABEL_MAX + 1];
		uint64_t n;
	} dec[METRICS_REASON_SLOTS];
	size_t ndec;
	struct histogram dns, dkim;
} m = { .mu = PTHREAD_MUTEX_INITIALIZER };

static unsigned char
lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i + 1 < n; i++)
		if (!strcmp(names[i], s))
			return (unsigned char)i;
	return (unsigned char)(n - 1);
}

void
metrics_http(const char *method, int status)
{
	unsigned char mi = lookup(http_methods, NMETHODS, method);
	size_t i;

	if (status < 100 || status > 999)
		status = 0;
	pthread_mutex_lock(&m.mu);
	for (i = 0; i < m.nhttp; i++)
		if (m.http[i].method == mi && m.http[i].status == status)
			break;
	if (i == m.nhttp && m.nhttp < METRICS_HTTP_SLOTS) {
		m.http[i].method = mi;
		m.http[i].status = status;
		m.nhttp++;
	}
	if (i < m.nhttp)
		m.http[i].n++;
	else
		m.http_other++;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_poll(void)
{
	pthread_mutex_lock(&m.mu);
	m.polls++;
	pthread_mutex_unlock(&m.mu);
}

/* Reason codes are short [a-z0-9-]; anything else is folded to "other". */
static const char *
clean_reason(const char *r)
{
	size_t n = r ? strlen(r) : 0;

	if (n == 0 || n > METRICS_LABEL_MAX)
		return "other";
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' &&
		    r[i] <= '9') || r[i] == '-' || r[i] == '_' ||
		    r[i] == '.'))
			return "other";
	return r;
}

void
metrics_decision(const char *decision, const char *reason)
{
	unsigned char di = lookup(decisions, NDECISIONS, decision);
	const char *r = clean_reason(reason);
	size_t i;

	pthread_mutex_lock(&m.mu);
	for (i = 0; i < m.ndec; i++)
		if (m.dec[i].decision == di && !strcmp(m.dec[i].reason, r))
			break;
	if (i == m.ndec && m.ndec < METRICS_REASON_SLOTS - 1) {
		m.dec[i].decision = di;
		snprintf(m.dec[i].reason, sizeof m.dec[i].reason, "%s", r);
		m.ndec++;
	} else if (i == m.ndec) {
		/* The last slot collects whatever no longer fits, unless
		 * a regular slot already has those labels. */
		for (i = 0; i < m.ndec; i++)
			if (m.dec[i].decision == NDECISIONS - 1 &&
			    !strcmp(m.dec[i].reason, "other"))
				break;
		if (i == m.ndec) {
			i = METRICS_REASON_SLOTS - 1;
			m.dec[i].decision = NDECISIONS - 1;
			snprintf(m.dec[i].reason, sizeof m.dec[i].reason,
			    "other");
		}
	}
	m.dec[i].n++;
	pthread_mutex_unlock(&m.mu);
}

static void
observe(struct histogram *h, double ms)
{
	double s = ms > 0 ? ms / 1000.0 : 0;
	size_t b;

	for (b = 0; b < NBUCKETS && s > buckets[b]; b++)
		;
	pthread_mutex_lock(&m.mu);
	if (b < NBUCKETS)
		h->counts[b]++;
	h->count++;
	h->sum += s;
	pthread_mutex_unlock(&m.mu);
}

void
metrics_dns_ms(double ms)
{
	observe(&m.dns, ms);
}

void
metrics_dkim_ms(double ms)
{
	observe(&m.dkim, ms);
}

static void
render_histogram(FILE *f, const char *name, const char *help,
    const struct histogram *h)
{
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t b = 0; b < NBUCKETS; b++) {
		cum += h->counts[b];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[b],
		    (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)h->count);
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
	    (unsigned long long)h->count);
}

char *
metrics_render(int64_t started, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (f == NULL)
		return NULL;
	pthread_mutex_lock(&m.mu);
	fprintf(f, "# HELP calgate_start_time_seconds When the server "
	    "started, in unix seconds.\n"
	    "# TYPE calgate_start_time_seconds gauge\n"
	    "calgate_start_time_seconds %lld\n", (long long)started);
	fprintf(f, "# HELP calgate_http_requests_total HTTP requests "
	    "answered, by method and status.\n"
	    "# TYPE calgate_http_requests_total counter\n");
	for (size_t i = 0; i < m.nhttp; i++)
		fprintf(f, "calgate_http_requests_total{method=\"%s\","
		    "status=\"%d\"} %llu\n", http_methods[m.http[i].method],
		    m.http[i].status, (unsigned long long)m.http[i].n);
	if (m.http_other)
		fprintf(f, "calgate_http_requests_total{method=\"other\","
		    "status=\"other\"} %llu\n",
		    (unsigned long long)m.http_other);
	fprintf(f, "# HELP calgate_imap_polls_total IMAP mailbox checks.\n"
	    "# TYPE calgate_imap_polls_total counter\n"
	    "calgate_imap_polls_total %llu\n", (unsigned long long)m.polls);
	fprintf(f, "# HELP calgate_imip_decisions_total Invitation "
	    "decisions, by decision and reason.\n"
	    "# TYPE calgate_imip_decisions_total counter\n");
	for (size_t i = 0; i < METRICS_REASON_SLOTS; i++)
		if (m.dec[i].n)
			fprintf(f, "calgate_imip_decisions_total{"
			    "decision=\"%s\",reason=\"%s\"} %llu\n",
			    decisions[m.dec[i].decision], m.dec[i].reason,
			    (unsigned long long)m.dec[i].n);
	render_histogram(f, "calgate_dns_lookup_seconds",
	    "Time one decision waited on uncached DNS answers.", &m.dns);
	render_histogram(f, "calgate_dkim_verify_seconds",
	    "DKIM signature verification time, key lookup included.",
	    &m.dkim);
	pthread_mutex_unlock(&m.mu);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}
