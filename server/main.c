/*
 * server/main.c: the calgate command line.
 *   calgate serve        -c FILE
 *   calgate explain      -c FILE [--user NAME] MESSAGE.eml
 *   calgate check-config -c FILE
 *   calgate passwd
 *   calgate version
 * Startup, signals (SIGTERM/SIGINT stop, SIGHUP reloads) and shutdown live
 * here; everything else is in the modules.
 */
#include <crypt.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "imap-poller/poller.h"
#include "server/config.h"
#include "server/explain.h"
#include "server/http.h"
#include "server/inbound.h"
#include "server/log.h"
#include "server/store.h"

#define CALGATE_VERSION	"0.1.0"
#define PASSWD_MAX	1024

static const char *const usage_main =
    "usage: calgate COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  serve        -c FILE                 run the CalDAV server and the "
    "pollers\n"
    "  explain      -c FILE [--user NAME] MESSAGE.eml\n"
    "                                       run the inbound gate on one "
    "message\n"
    "  check-config -c FILE                 check a configuration file\n"
    "  passwd                               read a password, print its "
    "crypt(3) hash\n"
    "  version                              print the version\n"
    "\n"
    "`calgate COMMAND --help` describes one command.\n";

static const struct {
	const char *cmd, *help;
} helps[] = {
	{ "serve", "usage: calgate serve -c FILE\n"
	  "Runs the CalDAV server and one IMAP poller per configured "
	  "account.\n"
	  "SIGTERM or SIGINT stop it cleanly; SIGHUP reloads FILE (a file "
	  "with\nany error is refused and the running configuration "
	  "stays).\n" },
	{ "explain", "usage: calgate explain -c FILE [--user NAME] "
	  "MESSAGE.eml\n"
	  "Runs the whole inbound gate on one message, exactly as the poller "
	  "would,\nchanges nothing, and prints one JSON object: the decision, "
	  "the reason,\nthe DKIM/SPF/DMARC detail and the setting that would "
	  "change it. With\n--user, that user's policy and calendars are "
	  "used. Exit 0 whatever the\ndecision; non-zero only for usage or "
	  "configuration errors.\n" },
	{ "check-config", "usage: calgate check-config -c FILE\n"
	  "Checks FILE, prints every problem as FILE:LINE: message, or "
	  "\"configuration OK\"\nand one line for each relaxation of the "
	  "inbound gate that is in force.\n" },
	{ "passwd", "usage: calgate passwd\n"
	  "Reads a password (from the terminal without echo, asked twice; "
	  "or one line\non standard input) and prints its yescrypt crypt(3) "
	  "hash for a [user]\nsection's password key.\n" },
	{ "version", "usage: calgate version\nPrints the version.\n" },
};

static int
want_help(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

static void
print_help(const char *cmd, FILE *f)
{
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
		if (!strcmp(helps[i].cmd, cmd))
			fputs(helps[i].help, f);
}

/* Parses -c FILE / --config FILE [--user NAME] [one positional]. */
static int
parse_args(int argc, char **argv, const char **conf, const char **user,
    const char **pos)
{
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) &&
		    i + 1 < argc)
			*conf = argv[++i];
		else if (!strncmp(a, "--config=", 9))
			*conf = a + 9;
		else if (user && !strcmp(a, "--user") && i + 1 < argc)
			*user = argv[++i];
		else if (user && !strncmp(a, "--user=", 7))
			*user = a + 7;
		else if (pos && *pos == NULL && a[0] != '-')
			*pos = a;
		else {
			fprintf(stderr, "calgate %s: unexpected argument "
			    "\"%s\"\n", argv[1], a);
			return -1;
		}
	}
	if (*conf == NULL) {
		fprintf(stderr, "calgate %s: -c FILE is required\n", argv[1]);
		return -1;
	}
	return 0;
}

/* ---- serve ---------------------------------------------------------- */

/*
 * Gives every configured user a store id and, the first time, a calendar
 * named after their `calendar` key.
 */
static int
sync_users(struct store *st, struct config *cfg)
{
	for (size_t i = 0; i < cfg->nusers; i++) {
		struct user_conf *u = &cfg->users[i];
		struct store_collection col;
		int rc;

		if (store_user_ensure(st, u->name, &u->store_id))
			return -1;
		rc = store_collection_get(st, u->store_id, u->calendar, &col);
		store_collection_clear(&col);
		if (rc == STORE_NOTFOUND) {
			rc = store_collection_create(st, u->store_id,
			    u->calendar, 1, NULL, NULL);
			if (rc == STORE_CONFLICT)
				rc = 0;
		}
		if (rc)
			return -1;
	}
	return 0;
}

static void
warn_config(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nusers; i++) {
		const struct user_conf *u = &cfg->users[i];

		if (u->imap && u->imap_password_file == NULL)
			log_warn("config user=%s imap_password is in the "
			    "config file itself; prefer imap_password_file "
			    "(mode 0600)", u->name);
		if (u->imap && !u->imap_tls_verify)
			log_warn("config user=%s imap_tls_verify=no: the IMAP "
			    "server's certificate is NOT checked", u->name);
	}
}

static void
log_relaxations(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return;
	config_describe_relaxations(cfg, f);
	fclose(f);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		log_warn("policy %s", line);
	free(buf);
}

static int
reload(struct server *srv)
{
	struct config *fresh;
	char *errs = NULL;
	size_t errlen = 0;
	FILE *ef = open_memstream(&errs, &errlen);
	const char *path = srv->cfg->path;
	int rc;

	rc = ef ? config_load(path, &fresh, ef) : -1;
	if (ef)
		fclose(ef);
	if (rc == 0 && sync_users(srv->store, fresh) != 0) {
		config_free(fresh);
		rc = -1;
		free(errs);
		errs = strdup("the store could not be updated");
	}
	if (rc != 0) {
		char q[600];

		log_error("config reload refused errors=%s",
		    log_q(q, sizeof q, errs ? errs : "?"));
		pthread_mutex_lock(&srv->cfg_mu);
		snprintf(srv->reload_error, sizeof srv->reload_error, "%s",
		    errs ? errs : "reload failed");
		pthread_mutex_unlock(&srv->cfg_mu);
		free(errs);
		return -1;
	}
	free(errs);
	log_set_level(fresh->log_level);
	server_config_swap(srv, fresh);
	warn_config(fresh);
	log_relaxations(fresh);
	poller_reload(srv);
	log_info("config reloaded users=%zu", fresh->nusers);
	return 0;
}

static int
cmd_serve(const char *conf)
{
	struct server srv;
	struct http_daemon *http;
	struct config *cfg;
	char err[512];
	sigset_t set;
	int sig, left;

	if (config_load(conf, &cfg, stderr) != 0)
		return 1;
	log_set_level(cfg->log_level);
	memset(&srv, 0, sizeof srv);
	pthread_mutex_init(&srv.cfg_mu, NULL);
	srv.cfg = cfg;
	srv.started = (int64_t)time(NULL);
	srv.reload = reload;
	srv.store = store_open(cfg->data_dir, err, sizeof err);
	if (srv.store == NULL) {
		fprintf(stderr, "calgate: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (sync_users(srv.store, cfg) != 0) {
		fprintf(stderr, "calgate: cannot set up users in the store\n");
		store_close(srv.store);
		config_free(cfg);
		return 1;
	}
	srv.gate = gate_new(cfg->dns_addr, cfg->dns_port, cfg->dns_timeout_ms,
	    err, sizeof err);
	if (srv.gate == NULL) {
		fprintf(stderr, "calgate: %s\n", err);
		store_close(srv.store);
		config_free(cfg);
		return 1;
	}
	srv.recheck = inbound_recheck;
	warn_config(cfg);
	log_relaxations(cfg);

	/* Signals are taken by sigwait() below, in this thread only. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	http = http_start(&srv, err, sizeof err);
	if (http == NULL) {
		fprintf(stderr, "calgate: %s\n", err);
		gate_free(srv.gate);
		store_close(srv.store);
		config_free(cfg);
		return 1;
	}
	if (poller_start(&srv, inbound_hook, NULL) != 0)
		log_error("imap some pollers could not start (see above)");
	log_info("server start version=%s listen=%s:%d tls=%s users=%zu "
	    "data_dir=%s", CALGATE_VERSION, cfg->listen_host, http_port(http),
	    cfg->tls_cert ? "on" : "off", cfg->nusers, cfg->data_dir);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			(void)reload(&srv);
			continue;
		}
		log_info("server stop signal=%s", sig == SIGINT ? "INT"
		    : "TERM");
		break;
	}
	left = poller_stop();
	http_stop(http);
	if (left > 0) {
		/*
		 * A mailbox thread is still deciding a message and uses the
		 * store and the gate: freeing them would pull them from under
		 * it. End the process as a crash would: a store transaction
		 * is all or nothing, and a message whose decision did not
		 * commit is decided again on the next start.
		 */
		log_warn("server stopped accounts_abandoned=%d", left);
		fflush(NULL);
		_exit(0);
	}
	gate_free(srv.gate);
	store_close(srv.store);
	config_free(srv.cfg);
	pthread_mutex_destroy(&srv.cfg_mu);
	log_info("server stopped");
	return 0;
}

/* ---- passwd --------------------------------------------------------- */

/* Reads one line into buf without its newline; -1 on EOF or too long. */
static int
read_line(FILE *f, char *buf, size_t n)
{
	size_t len;

	if (fgets(buf, (int)n, f) == NULL)
		return -1;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (!feof(f))
		return -1;
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return 0;
}

static int
read_secret_tty(const char *prompt, char *buf, size_t n)
{
	struct termios old, quiet;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	rc = read_line(stdin, buf, n);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return rc;
}

static int
cmd_passwd(void)
{
	char pw[PASSWD_MAX + 2], again[PASSWD_MAX + 2];
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *hash;
	int rc = 1;

	if (isatty(STDIN_FILENO)) {
		if (read_secret_tty("Password: ", pw, sizeof pw) ||
		    read_secret_tty("Again: ", again, sizeof again)) {
			fprintf(stderr, "calgate passwd: no password read\n");
			return 1;
		}
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "calgate passwd: the two passwords "
			    "differ\n");
			goto out;
		}
	} else if (read_line(stdin, pw, sizeof pw) != 0) {
		fprintf(stderr, "calgate passwd: expected one line of at most "
		    "%d bytes on standard input\n", PASSWD_MAX);
		goto out;
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "calgate passwd: empty password\n");
		goto out;
	}
	cd = calloc(1, sizeof *cd);
	if (cd == NULL || crypt_gensalt_rn("$y$", 0, NULL, 0, salt,
	    sizeof salt) == NULL) {
		fprintf(stderr, "calgate passwd: cannot make a salt: %s\n",
		    strerror(errno));
		free(cd);
		goto out;
	}
	hash = crypt_r(pw, salt, cd);
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "calgate passwd: crypt failed\n");
	} else {
		printf("%s\n", hash);
		rc = 0;
	}
	explicit_bzero(cd, sizeof *cd);
	free(cd);
out:
	explicit_bzero(pw, sizeof pw);
	explicit_bzero(again, sizeof again);
	return rc;
}

/* ---- check-config, explain ---------------------------------------------- */

static int
cmd_check_config(const char *conf)
{
	struct config *cfg;

	if (config_load(conf, &cfg, stderr) != 0)
		return 1;
	printf("configuration OK\n");
	config_describe_relaxations(cfg, stdout);
	config_free(cfg);
	return 0;
}

static int
cmd_explain(const char *conf, const char *user, const char *msg)
{
	struct config *cfg;
	int rc;

	if (config_load(conf, &cfg, stderr) != 0)
		return 1;
	/* stdout carries the JSON; decision lines stay off stderr too. */
	log_set_level(LOG_WARN);
	rc = explain_run(cfg, user, msg, stdout, stderr);
	config_free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	const char *conf = NULL, *user = NULL, *pos = NULL;

	if (cmd == NULL || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		fputs(usage_main, cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (want_help(argc, argv)) {
		for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
			if (!strcmp(helps[i].cmd, cmd)) {
				print_help(cmd, stdout);
				return 0;
			}
		}
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("calgate %s\n", CALGATE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "passwd"))
		return argc == 2 ? cmd_passwd() : (print_help(cmd, stderr), 2);
	if (!strcmp(cmd, "serve")) {
		if (parse_args(argc, argv, &conf, NULL, NULL))
			return print_help(cmd, stderr), 2;
		return cmd_serve(conf);
	}
	if (!strcmp(cmd, "check-config")) {
		if (parse_args(argc, argv, &conf, NULL, NULL))
			return print_help(cmd, stderr), 2;
		return cmd_check_config(conf);
	}
	if (!strcmp(cmd, "explain")) {
		if (parse_args(argc, argv, &conf, &user, &pos) || pos == NULL)
			return print_help(cmd, stderr), 2;
		return cmd_explain(conf, user, pos);
	}
	fprintf(stderr, "calgate: unknown command \"%s\"\n\n%s", cmd,
	    usage_main);
	return 2;
}
