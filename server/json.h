/*
 * server/json.h: a small JSON writer (RFC 8259) into a growing buffer, and
 * a copier that re-emits untrusted JSON text through that writer.
 *
 * Strings are escaped: quotes, backslash and control characters; < > &
 * too, so JSON never reads as markup if something sniffs it. Valid UTF-8
 * passes through; each invalid byte becomes U+FFFD. Commas between
 * members and elements are written automatically.
 *
 *	struct json j;
 *	json_init(&j);
 *	json_obj_begin(&j);
 *	json_kstr(&j, "subject", subject);	// NULL writes null
 *	json_obj_end(&j);
 *	body = json_finish(&j, &len);		// NULL if out of memory
 */
#ifndef CALGATE_JSON_H
#define CALGATE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH	32

struct json {
	char *buf;			/* owned until json_finish */
	size_t len, cap;
	int failed;			/* out of memory, or misuse */
	int depth;
	unsigned char first[JSON_MAX_DEPTH + 1];	/* no member yet */
	int after_key;			/* a key was written: no comma */
};

void json_init(struct json *);
/*
 * Returns the text (malloc'd, NUL-terminated, caller frees) and its length
 * in *len, or NULL when anything failed (out of memory, unbalanced
 * begin/end); the writer is reset either way.
 */
char *json_finish(struct json *, size_t *len);
/* Frees what was written, if json_finish was not called. */
void json_discard(struct json *);

void json_obj_begin(struct json *);
void json_obj_end(struct json *);
void json_arr_begin(struct json *);
void json_arr_end(struct json *);
/* A member name inside an object; the value comes next. */
void json_key(struct json *, const char *name);

void json_str(struct json *, const char *s);	/* NULL: null */
void json_strn(struct json *, const char *s, size_t len);
void json_int(struct json *, int64_t);
void json_double(struct json *, double);	/* non-finite: null */
void json_bool(struct json *, int);
void json_null(struct json *);

/* Member shortcuts: key, then value. */
void json_kstr(struct json *, const char *key, const char *s);
void json_kint(struct json *, const char *key, int64_t);
void json_kbool(struct json *, const char *key, int);
void json_knull(struct json *, const char *key);

/*
 * Parses the JSON text in[0..len) and writes the same value through the
 * writer (so its strings are re-escaped and its UTF-8 checked). Returns 0,
 * or -1 if the text is not one valid JSON value (nothing is written then)
 * or nests deeper than JSON_MAX_DEPTH.
 */
int json_copy(struct json *, const char *in, size_t len);

#endif
