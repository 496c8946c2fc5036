/*
 * server/log.c: the log line format and level filter. Writes go to stderr
 * with one fprintf per line; stdio locks the stream, so lines from the HTTP
 * threads and the pollers never interleave.
 */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = { "debug", "info", "warn", "error" };

void
log_set_level(enum log_level l)
{
	log_min = l;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_msg(enum log_level l, const char *fmt, ...)
{
	char line[4096], ts[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (l < log_min)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s %s\n", ts, log_names[l], line);
}

const char *
log_q(char *buf, size_t n, const char *s)
{
	size_t o = 0;
	int quote = 0;

	if (n < 8) {
		if (n)
			buf[0] = '\0';
		return buf;
	}
	if (s == NULL || *s == '\0') {
		snprintf(buf, n, "-");
		return buf;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    *p >= 0x7f)
			quote = 1;
	if (!quote) {
		if (strlen(s) < n) {
			memcpy(buf, s, strlen(s) + 1);
			return buf;
		}
	}
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char tmp[8];
		size_t k;

		if (*p == '"' || *p == '\\')
			k = (size_t)snprintf(tmp, sizeof tmp, "\\%c", *p);
		else if (*p == '\n')
			k = (size_t)snprintf(tmp, sizeof tmp, "\\n");
		else if (*p == '\r')
			k = (size_t)snprintf(tmp, sizeof tmp, "\\r");
		else if (*p == '\t')
			k = (size_t)snprintf(tmp, sizeof tmp, "\\t");
		else if (*p < ' ' || *p == 0x7f)
			k = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", *p);
		else {
			tmp[0] = (char)*p;
			k = 1;
		}
		if (o + k + 5 > n) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, k);
		o += k;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("calgate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
