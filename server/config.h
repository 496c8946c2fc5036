/*
 * server/config.h: the configuration file (INI, parsed with inih).
 * One table in config.c holds every key: name, type, bounds, default.
 * config_load() reports every problem, then refuses the whole file.
 */
#ifndef CALGATE_CONFIG_H
#define CALGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/gate.h"
#include "server/log.h"

enum conf_tls { CONF_TLS_REQUIRED = 0, CONF_TLS_NONE };
enum conf_cancel { CONF_CANCEL_MARK = 0, CONF_CANCEL_DELETE };

/* One [user NAME] section. Every string is owned by the config. */
struct user_conf {
	char *name;
	char *password;			/* crypt(3) hash; secret */
	char **addresses;		/* lower case, no mailto: */
	size_t naddresses;
	char **known_senders;		/* "bob@x.org" or "@partner.example" */
	size_t nknown_senders;
	char *calendar;			/* default calendar for invitations */
	enum conf_cancel cancel;
	int admin;

	/* IMAP account; imap == NULL: no mailbox is polled for this user. */
	char *imap;			/* the URL as written */
	int imap_ssl;			/* imaps:// (1) or imap:// + STARTTLS */
	char *imap_login;		/* percent-decoded */
	char *imap_host;
	int imap_port;
	char *imap_mailbox;		/* default INBOX */
	char *imap_password_file;
	char *imap_secret;		/* the password itself; secret */
	enum conf_tls imap_tls;
	int imap_tls_verify;
	char *imap_ca_file;
	char *imap_flag;		/* keyword to set, or NULL: read-only */
	int poll_interval;		/* seconds */

	struct gate_policy policy;	/* effective: [policy] + overrides */
	int64_t store_id;		/* users.id, filled in by serve */
	int line;			/* where the section starts */
};

struct config {
	char *path;
	/* [server] */
	char *listen_host;
	int listen_port;
	char *data_dir;
	char *tls_cert, *tls_key;	/* both or neither */
	size_t max_body;		/* bytes */
	int threads;
	int defer_retry;		/* seconds to the first retry */
	int defer_max;			/* seconds */
	enum conf_cancel cancel;
	enum log_level log_level;
	/* [dns] */
	char *dns_resolver;		/* "system" or "IP@PORT" */
	char *dns_addr;			/* NULL for system */
	int dns_port;
	int dns_timeout_ms;
	/* [policy] */
	struct gate_policy policy;

	struct user_conf *users;
	size_t nusers;

	void *arena;			/* everything above is allocated here */
	int refs;			/* server_config_get holders; a replaced
					   config is freed when this is 0 */
};

/*
 * Loads and validates path. On success returns 0 and *out (caller frees
 * with config_free). On error writes every problem to errs as
 * "FILE:LINE: message", then a summary line, and returns -1.
 */
int config_load(const char *path, struct config **out, FILE *errs);
void config_free(struct config *);

/* The user called name, or NULL. */
const struct user_conf *config_user(const struct config *, const char *name);

/*
 * Writes one line per relaxation in force (global or per user) saying what
 * it lets through. Returns how many it wrote.
 */
int config_describe_relaxations(const struct config *, FILE *);

#endif
