/*
 * policy/authres.h: the SPF result from a trusted Authentication-Results
 * header field (RFC 8601). calgate does not evaluate SPF itself: it sees
 * the message after delivery, without the SMTP session.
 */
#ifndef CALGATE_AUTHRES_H
#define CALGATE_AUTHRES_H

#include "policy/msg.h"

#define AUTHRES_MAX_LEN	(16 * 1024)	/* one field; longer is ignored */

struct authres_spf {
	char result[16];	/* "pass", "fail", ... or "none" */
	char domain[256];	/* smtp.mailfrom's domain, else smtp.helo */
	char source[256];	/* the authserv-id that said so */
};

/*
 * Parses one Authentication-Results value. Returns 0 and fills id (the
 * authserv-id, lower case) and spf (the first spf method; result "none"
 * when there is none), or -1 on a syntax error.
 */
int authres_parse(const char *value, size_t len, char *id, size_t idlen,
    struct authres_spf *spf);

/*
 * Looks at the topmost Authentication-Results field whose authserv-id is
 * trusted_id (case-insensitive); every other field is ignored. Returns 1
 * and fills spf if there is one (spf->result may be "none"), else 0.
 */
int authres_spf(const struct msg *, const char *trusted_id,
    struct authres_spf *spf);

#endif
