/*
 * server/explain.h: `calgate explain`: the whole inbound gate on one
 * message, read-only, as one JSON object.
 */
#ifndef CALGATE_EXPLAIN_H
#define CALGATE_EXPLAIN_H

#include <stdio.h>

#include "server/config.h"

#define EXPLAIN_MAX_MSG	(32u * 1024 * 1024)

/*
 * Reads eml_path (at most EXPLAIN_MAX_MSG bytes), decides it under user's
 * effective policy (the global one when user is NULL) with the config's
 * DNS settings, and prints the JSON to out. Returns 0 whatever the
 * decision; 1 with a message on err for an unknown user, an unreadable or
 * too big file, or a resolver that cannot be set up.
 */
int explain_run(const struct config *, const char *user,
    const char *eml_path, FILE *out, FILE *err);

#endif
