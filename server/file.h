/*
 * server/file.h: reading one whole file, bounded. The one reader for
 * messages (`explain`), TLS certificates and keys, and test fixtures.
 */
#ifndef CALGATE_FILE_H
#define CALGATE_FILE_H

#include <stddef.h>

/*
 * Reads path whole, refusing more than max bytes. Returns a malloc'd,
 * NUL-terminated copy (caller frees) and its length in *len (len may be
 * NULL); NULL with a sentence naming the file in err on error.
 */
char *file_read(const char *path, size_t max, size_t *len, char *err,
    size_t errlen);

#endif
