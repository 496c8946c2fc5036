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
