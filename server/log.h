/*
 * server/log.h: one line per event on standard error.
 *   2026-12-04T16:11:43Z info imap poll account=alice new=2 took_ms=412
 * Level, subsystem, event, then key=value. Values that came from the network
 * go through log_q(), which quotes and escapes them. Never log secrets.
 */
#ifndef CALGATE_LOG_H
#define CALGATE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int  log_parse_level(const char *, enum log_level *);
void log_msg(enum log_level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...)	log_msg(LOG_ERROR, __VA_ARGS__)

/*
 * Writes s into buf as one log value: "-" when empty or NULL, bare when it
 * is plain, else in double quotes with \" \\ \n \r \t and \xNN escapes.
 * Truncates to fit (ending in "..."). Returns buf.
 */
const char *log_q(char *buf, size_t n, const char *s);

/* Prints "calgate: <msg>" to stderr and exits 1. Startup and invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
