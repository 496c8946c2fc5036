/*
 * tests/tools/explain_driver.c: `explain_driver -c FILE [--user NAME]
 * MESSAGE.eml`, the same as `calgate explain`, for the integration tests
 * until (and besides) main.c wires the sub-command. With --log it also
 * prints the INFO line the poller would log.
 */
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "server/explain.h"

int
main(int argc, char **argv)
{
	const char *conf = NULL, *user = NULL, *eml = NULL;
	struct config *cfg;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
		    i + 1 < argc)
			conf = argv[++i];
		else if (!strcmp(argv[i], "--user") && i + 1 < argc)
			user = argv[++i];
		else if (eml == NULL)
			eml = argv[i];
		else
			eml = NULL, i = argc;
	}
	if (conf == NULL || eml == NULL) {
		fprintf(stderr, "usage: explain_driver -c FILE [--user NAME] "
		    "MESSAGE.eml\n");
		return 2;
	}
	if (config_load(conf, &cfg, stderr) != 0)
		return 1;
	rc = explain_run(cfg, user, eml, stdout, stderr);
	config_free(cfg);
	return rc;
}
