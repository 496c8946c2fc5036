/*
 * tests/unit/test_auth.c: password hashes and the Basic-auth check,
 * including its cache (a cached success must never let a wrong password
 * or a changed hash through).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "server/http.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/calgate-test-auth-XXXXXX";

static struct config *
config_with(const char *hash)
{
	char path[512];
	struct config *c = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/a.conf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fprintf(f, "[user alice]\npassword = %s\n", hash);
	fclose(f);
	config_load(path, &c, stderr);
	return c;
}

static char *
hash_of(const char *pw)
{
	char cmd[256], *line = NULL;
	size_t n = 0;
	FILE *p;

	/* The real command, as a user would run it. */
	snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | ./calgate passwd",
	    pw);
	p = popen(cmd, "r");
	if (p == NULL || getline(&line, &n, p) < 0) {
		if (p)
			pclose(p);
		free(line);
		return NULL;
	}
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	return line;
}

/* Password guessing: the (address, user) pair, its window, a success. */
static void
test_throttle(void)
{
	const time_t t = 1800000000;
	int n;

	for (n = 1; n < HTTP_AUTH_FAILS; n++)
		http_auth_note("192.0.2.1", "alice", 0, t + n);
	check(http_auth_throttled("192.0.2.1", "alice", t + n) == 0,
	    "%d wrong passwords: not throttled", HTTP_AUTH_FAILS - 1);
	http_auth_note("192.0.2.1", "alice", 0, t + n);
	check(http_auth_throttled("192.0.2.1", "alice", t + 20) ==
	    HTTP_AUTH_WINDOW - 19, "%d: throttled until the window ends (%d)",
	    HTTP_AUTH_FAILS, http_auth_throttled("192.0.2.1", "alice",
	    t + 20));
	check(http_auth_throttled("192.0.2.1", "bob", t + 20) == 0,
	    "another user from that address: not throttled");
	check(http_auth_throttled("192.0.2.2", "alice", t + 20) == 0,
	    "that user from another address: not throttled");
	check(http_auth_throttled("192.0.2.1", "alice", t + 1 +
	    HTTP_AUTH_WINDOW) == 0, "after the window: not throttled");
	http_auth_note("192.0.2.1", "alice", 0, t + 1 + HTTP_AUTH_WINDOW);
	check(http_auth_throttled("192.0.2.1", "alice", t + 2 +
	    HTTP_AUTH_WINDOW) == 0, "a new window starts over");

	for (n = 0; n < HTTP_AUTH_FAILS - 1; n++)
		http_auth_note("198.51.100.7", "carol", 0, t);
	http_auth_note("198.51.100.7", "carol", 1, t);
	for (n = 0; n < HTTP_AUTH_FAILS - 1; n++)
		http_auth_note("198.51.100.7", "carol", 0, t);
	check(http_auth_throttled("198.51.100.7", "carol", t) == 0,
	    "a success clears the count");
	http_auth_note("198.51.100.7", "carol", 0, t);
	check(http_auth_throttled("198.51.100.7", "carol", t) > 0,
	    "then %d more wrong ones throttle", HTTP_AUTH_FAILS);
}

int
main(void)
{
	char *h1, *h2;
	struct config *c1, *c2;

	if (mkdtemp(dir) == NULL)
		return 1;
	h1 = hash_of("correct horse");
	h2 = hash_of("correct horse");
	check(h1 && !strncmp(h1, "$y$", 3), "passwd makes a yescrypt hash");
	check(h1 && h2 && strcmp(h1, h2) != 0, "a fresh salt every time");
	c1 = h1 ? config_with(h1) : NULL;
	check(c1 != NULL, "the hash is accepted by the config");
	if (c1) {
		check(http_auth_check(c1, "alice", "correct horse") != NULL,
		    "right password");
		check(http_auth_check(c1, "alice", "correct horse") != NULL,
		    "right password again (cached)");
		check(http_auth_check(c1, "alice", "correct hors") == NULL,
		    "wrong password after a cached success");
		check(http_auth_check(c1, "alice", "") == NULL,
		    "empty password");
		check(http_auth_check(c1, "bob", "correct horse") == NULL,
		    "unknown user");
		check(http_auth_check(c1, NULL, NULL) == NULL,
		    "no credentials");
	}
	/* The hash changes (config reload): the old password must fail
	 * although it was cached. */
	free(h2);
	h2 = hash_of("battery staple");
	c2 = h2 ? config_with(h2) : NULL;
	if (c2) {
		check(http_auth_check(c2, "alice", "correct horse") == NULL,
		    "old password after the hash changed");
		check(http_auth_check(c2, "alice", "battery staple") != NULL,
		    "new password");
	}
	test_throttle();
	config_free(c1);
	config_free(c2);
	free(h1);
	free(h2);
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	return check_done();
}
