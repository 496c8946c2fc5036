/*
 * tests/unit/test_config.c: the config loader, good files and each kind of
 * bad one. Every bad file must be refused with FILE:LINE and the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "tests/unit/check.h"

#define HASH "$y$j9T$rrm291iajGRTCdhMizYvA0$n.qfz7Xf3a9.lWefXzXgEhDmafJWTUXa4I2nCGNGFU7"

static char dir[] = "/tmp/calgate-test-config-XXXXXX";

static char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* Loads text; returns the error output (static) and sets *cfg. */
static const char *
load(const char *text, struct config **cfg)
{
	static char out[8192];
	char *path = write_file("t.conf", text, 0600);
	FILE *errs = fmemopen(out, sizeof out - 1, "w");

	memset(out, 0, sizeof out);
	*cfg = NULL;
	config_load(path, cfg, errs);
	fclose(errs);
	return out;
}

static void
test_good(void)
{
	struct config *c;
	const struct user_conf *u;
	const char *e;

	write_file("alice.imap", "s3cret\n", 0600);
	e = load("[server]\nlisten = 127.0.0.1:0\ndata_dir = data\n"
	    "max_body = 2M\ndefer_retry = 5\n"
	    "[dns]\nresolver = 127.0.0.1@5353\ntimeout_ms = 700\n"
	    "[policy]\nrequire = dkim\n"
	    "dkim_signers = aligned, google-workspace, Partner.Example\n"
	    "[user alice]\npassword = " HASH "\n"
	    "addresses = Alice@Example.com, mailto:a.smith@example.com\n"
	    "known_senders = @partner.example, bob@example.org\n"
	    "imap = imaps://alice%40example.com@imap.example.com:1993/"
	    "Lists%2FInvites\n"
	    "imap_password_file = alice.imap\n"
	    "poll_interval = 30   ; inline comment\n"
	    "policy.require = dmarc\n"
	    "policy.new_events_from = known\n"
	    "[user bob]\npassword = " HASH "\n", &c);
	check(c != NULL, "good config loads: %s", e);
	if (c == NULL)
		return;
	check(c->listen_port == 0 && !strcmp(c->listen_host, "127.0.0.1"),
	    "listen parsed");
	check(c->max_body == 2u << 20, "max_body 2M = %zu", c->max_body);
	check(c->defer_retry == 5 && c->defer_max == 86400,
	    "defer_retry 5, defer_max default: %d %d", c->defer_retry,
	    c->defer_max);
	check(strstr(c->data_dir, dir) == c->data_dir,
	    "data_dir relative to the config file: %s", c->data_dir);
	check(!strcmp(c->dns_addr, "127.0.0.1") && c->dns_port == 5353,
	    "resolver IP@PORT");
	check(c->dns_timeout_ms == 700, "timeout_ms");
	check(c->policy.require == GATE_REQUIRE_DKIM, "global require dkim");
	check(c->policy.signers == (GATE_SIGNER_ALIGNED | GATE_SIGNER_GOOGLE),
	    "signer keywords");
	check(c->policy.nsigner_domains == 1 &&
	    !strcmp(c->policy.signer_domains[0], "partner.example"),
	    "explicit signer domain, lower-cased");
	check(c->policy.dkim_domains_any, "dkim_domains default *");
	check(c->policy.organizer_must_match_from, "organizer match default");
	u = config_user(c, "alice");
	check(u != NULL, "user alice");
	if (u) {
		check(u->naddresses == 2 &&
		    !strcmp(u->addresses[0], "alice@example.com") &&
		    !strcmp(u->addresses[1], "a.smith@example.com"),
		    "addresses lower-cased, mailto: stripped");
		check(u->nknown_senders == 2, "known senders");
		check(u->imap_ssl && u->imap_port == 1993 &&
		    !strcmp(u->imap_login, "alice@example.com") &&
		    !strcmp(u->imap_host, "imap.example.com") &&
		    !strcmp(u->imap_mailbox, "Lists/Invites"),
		    "imap URL parts");
		check(!strcmp(u->imap_secret, "s3cret"),
		    "secret read, newline dropped");
		check(u->poll_interval == 30, "inline comment stripped");
		check(u->policy.require == GATE_REQUIRE_DMARC,
		    "per-user override of require");
		check(u->policy.new_events_from == GATE_NEW_KNOWN,
		    "per-user new_events_from");
		check(u->policy.signers == c->policy.signers,
		    "other policy keys inherited");
		check(!strcmp(u->calendar, "default"), "calendar default");
		check(u->cancel == CONF_CANCEL_MARK, "cancel from [server]");
	}
	u = config_user(c, "bob");
	check(u && u->imap == NULL && u->policy.require == GATE_REQUIRE_DKIM,
	    "bob inherits the global policy");
	config_free(c);
}

static void
test_example(void)
{
	struct config *c = NULL;
	char out[4096];
	FILE *errs = fmemopen(out, sizeof out, "w");
	int rc = config_load("config.example", &c, errs);

	fclose(errs);
	check(rc == 0 && c != NULL, "config.example loads");
	if (c) {
		check(c->policy.require == GATE_REQUIRE_DMARC &&
		    c->policy.signers == GATE_SIGNER_ALIGNED &&
		    c->policy.new_events_from == GATE_NEW_ANYONE &&
		    c->policy.spf == GATE_SPF_OFF &&
		    c->policy.organizer_must_match_from,
		    "config.example keeps the strict defaults");
		check(config_describe_relaxations(c, stdout) == 0,
		    "no relaxation in config.example");
	}
	config_free(c);
}

static void
test_relaxation_lines(void)
{
	struct config *c;
	char out[2048] = "";
	FILE *f;

	load("[policy]\nrequire = dkim\ndkim_signers = google-workspace\n"
	    "[user a]\npassword = " HASH "\npolicy.require = none\n", &c);
	check(c != NULL, "relaxed config loads");
	if (c == NULL)
		return;
	f = fmemopen(out, sizeof out - 1, "w");
	check(config_describe_relaxations(c, f) == 2, "two relaxations");
	fclose(f);
	check(strstr(out, "Google Workspace") != NULL, "names the signer");
	check(strstr(out, "[user a]") && strstr(out, "spam"),
	    "names the user and the risk: %s", out);
	config_free(c);
}

static const struct {
	const char *text;
	const char *want;		/* substring of the error output */
} bad[] = {
	{ "[server]\ntimout_ms = 5\n", "t.conf:2: unknown key \"timout_ms\"" },
	{ "[dns]\ntimout_ms = 5\n", "did you mean \"timeout_ms\"" },
	{ "[server]\nlisten = 127.0.0.1:99999\n",
	  "t.conf:2: listen: \"127.0.0.1:99999\" is not a valid port" },
	{ "[server]\nlisten = example.com:80\n", "is not an IP address" },
	{ "[server]\nmax_body = lots\n", "max_body" },
	{ "[server]\nthreads = 0\n", "threads: 0 is out of range" },
	{ "[server]\ndefer_retry = 0\n", "defer_retry: 0 is out of range" },
	{ "[dns]\nresolver = 1.2.3.4@0\n", "resolver" },
	{ "[dns]\ntimeout_ms = 10\n", "timeout_ms: 10 is out of range" },
	{ "[policy]\nrequire = dmark\n",
	  "require: \"dmark\" is not one of dmarc, dkim, none" },
	{ "[policy]\ndkim_signers = alinged\n", "dkim_signers: \"alinged\"" },
	{ "[policy]\ndkim_domains = *, x.org\n", "dkim_domains" },
	{ "[policy]\norganizer_must_match_from = maybe\n",
	  "is not yes or no" },
	{ "[policy]\nspf = authentication-results\n",
	  "needs trusted_authserv_id" },
	{ "[policy]\nrequire = dkim\nrequire = none\n",
	  "t.conf:3: require: set twice" },
	{ "[polcy]\nrequire = dkim\n", "unknown section [polcy]" },
	{ "listen = 1\n", "outside any section" },
	{ "[server]\nthis line has no equals sign\n", "t.conf:2: syntax" },
	{ "[user a]\npassword = " HASH "\n[user a]\npassword = " HASH "\n",
	  "t.conf:3: [user a]: duplicate user" },
	{ "[user a/b]\npassword = " HASH "\n", "not a valid user name" },
	{ "[user a]\npassword = hunter2\n",
	  "t.conf:2: password: not a crypt(3) hash" },
	{ "[user a]\naddresses = x\n", "password is missing" },
	{ "[user a]\npassword = " HASH "\naddresses = not-an-address\n",
	  "addresses: \"not-an-address\"" },
	{ "[user a]\npassword = " HASH "\npolicy.requir = dkim\n",
	  "did you mean \"policy.require\"" },
	{ "[user a]\npassword = " HASH "\npolicy.require = sometimes\n",
	  "t.conf:3: require: \"sometimes\"" },
	{ "[user a]\npassword = " HASH "\nimap = pop3://a@b/INBOX\n"
	  "imap_password = x\n", "t.conf:3: imap:" },
	{ "[user a]\npassword = " HASH "\nimap = imaps://a@b/INBOX\n",
	  "imap needs imap_password_file" },
	{ "[user a]\npassword = " HASH "\nimap = imaps://a@h/INBOX\n"
	  "imap_password_file = missing.imap\n",
	  "t.conf:4: imap_password_file: cannot read" },
	{ "[user a]\npassword = " HASH "\nimap = imaps://a@h/INBOX\n"
	  "imap_password_file = open.imap\n",
	  "t.conf:4: imap_password_file: " },
	{ "[user a]\npassword = " HASH "\nimap = imap://a@mail.example.com/"
	  "INBOX\nimap_password = x\nimap_tls = none\n",
	  "only allowed for a server on loopback" },
	{ "[user a]\npassword = " HASH "\npoll_interval = 0\n",
	  "poll_interval: 0 is out of range (1 to 86400)" },
	{ "[user a]\npassword = " HASH "\ncalendar = ../x\n",
	  "calendar: \"../x\" is not a valid name" },
};

static void
test_bad(void)
{
	write_file("open.imap", "pw\n", 0644);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config *c;
		const char *e = load(bad[i].text, &c);

		check(c == NULL, "bad config %zu refused", i);
		check(strstr(e, bad[i].want) != NULL,
		    "bad config %zu: want \"%s\" in: %s", i, bad[i].want, e);
		check(strstr(e, "the whole file is refused") != NULL,
		    "bad config %zu: summary line", i);
		check(strstr(e, "hunter2") == NULL,
		    "bad config %zu: no secret echoed", i);
		config_free(c);
	}
}

static void
test_many_errors(void)
{
	struct config *c;
	const char *e = load("[server]\nlisten = x\nthreads = -1\n"
	    "[policy]\nrequire = y\n", &c);

	check(c == NULL, "three errors refused");
	check(strstr(e, "t.conf:2:") && strstr(e, "t.conf:3:") &&
	    strstr(e, "t.conf:5:"), "every error reported: %s", e);
	check(strstr(e, "3 errors in") != NULL, "error count: %s", e);
}

static void
test_long_line(void)
{
	struct config *c;
	char *text = malloc(20000);
	const char *e;

	snprintf(text, 20000, "[server]\nlisten = ");
	memset(text + strlen(text), 'x', 10000);
	strcpy(text + 18 + 10000, "\n");
	e = load(text, &c);
	check(c == NULL && strstr(e, "t.conf:2:"), "a 10 kB line refused: %s",
	    e);
	free(text);
}

int
main(void)
{
	char cmd[600];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_good();
	test_example();
	test_relaxation_lines();
	test_bad();
	test_many_errors();
	test_long_line();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return check_done();
}
