/*
 * policy/msg.h: a raw message split into header fields and body, with
 * line endings made CRLF. The views point into msg.buf.
 */
#ifndef CALGATE_MSG_H
#define CALGATE_MSG_H

#include <stddef.h>

#define MSG_MAX_SIZE	(32u * 1024 * 1024)	/* whole message */
#define MSG_MAX_FIELD	(64u * 1024)		/* one header field */
#define MSG_MAX_HEADERS	1000

struct msg_header {
	const char *name;	/* not NUL-terminated */
	size_t namelen;
	const char *raw;	/* the whole field, folding and CRLF kept */
	size_t rawlen;
	const char *value;	/* just after the colon, up to the CRLF */
	size_t valuelen;
};

struct msg {
	char *buf;		/* owned: the CRLF-normalised message */
	size_t len;
	struct msg_header *hdrs;	/* owned */
	size_t nhdrs;
	const char *body;	/* after the blank line; "" if none */
	size_t bodylen;
};

/*
 * Splits raw[0..len). Returns 0, or -1 with a sentence in err when the
 * message is too big, a field too long, there are too many fields or a
 * line in the header section is not a field. Free with msg_free even on
 * error.
 */
int msg_parse(const char *raw, size_t len, struct msg *out,
    char *err, size_t errlen);
void msg_free(struct msg *);

/* Case-insensitive comparison of a field's name with name. */
int msg_is(const struct msg_header *, const char *name);

/*
 * The field's value unfolded (CRLFs removed), leading and trailing
 * whitespace trimmed. Returns a malloc'd string (caller frees), NULL when
 * out of memory.
 */
char *msg_value(const struct msg_header *);

#endif
