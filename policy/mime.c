/*
 * policy/mime.c: the MIME walk (libetpan's parser). Collects text/calendar
 * parts at any depth, and application/ics attachments whose text has a
 * METHOD (RFC 6047 2.4: iMIP is the part with method=), decoding base64 /
 * quoted-printable and converting the charset to UTF-8. The structure is
 * bounded before libetpan sees it: its parser recurses per level. Which
 * part is the invitation, and whether several disagree, is gate.c's call.
 */
#include <ctype.h>
#include <iconv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "policy/mime.h"

void
mime_parts_free(struct mime_parts *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->part[i].text);
	memset(p, 0, sizeof *p);
}

/* Counts multipart and message/rfc822 markers: an upper bound on the
 * number of containers, hence on libetpan's recursion. */
static size_t
mime_containers(const char *m, size_t len)
{
	const char *p = m, *end = m + len, *sl;
	size_t n = 0;

	/* Look at each "/" (rarer than any letter) and what surrounds it. */
	while ((sl = memchr(p, '/', (size_t)(end - p))) != NULL) {
		size_t before = (size_t)(sl - m);
		if ((before >= 9 && !strncasecmp(sl - 9, "multipart", 9)) ||
		    (before >= 7 && (size_t)(end - sl) > 6 &&
		    !strncasecmp(sl - 7, "message", 7) &&
		    !strncasecmp(sl + 1, "rfc822", 6)))
			n++;
		p = sl + 1;
	}
	return n;
}

static int
mime_is(const struct mailmime_content *ct, int type, const char *sub)
{
	const struct mailmime_type *t;

	if (ct == NULL || ct->ct_type == NULL || ct->ct_subtype == NULL)
		return 0;
	t = ct->ct_type;
	return t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE &&
	    t->tp_data.tp_discrete_type != NULL &&
	    t->tp_data.tp_discrete_type->dt_type == type &&
	    !strcasecmp(ct->ct_subtype, sub);
}

/* RFC 5545 3.7.2: a METHOD property line in the calendar text. */
static int
mime_has_method(const char *s, size_t len)
{
	for (size_t i = 0; i + 7 <= len; i++) {
		if ((i == 0 || s[i - 1] == '\n') &&
		    !strncasecmp(s + i, "METHOD", 6) &&
		    (s[i + 6] == ':' || s[i + 6] == ';'))
			return 1;
	}
	return 0;
}

/* Converts in[0..len) from charset to UTF-8; malloc'd result or NULL. */
static char *
mime_utf8(const char *in, size_t len, const char *charset, size_t *outlen)
{
	iconv_t cd;
	char *out, *op, *ip = (char *)in;
	size_t cap = len * 4 + 4, il = len, ol;

	if (charset == NULL || !strcasecmp(charset, "utf-8") ||
	    !strcasecmp(charset, "utf8") || !strcasecmp(charset, "us-ascii")) {
		out = malloc(len + 1);
		if (out == NULL)
			return NULL;
		memcpy(out, in, len);
		out[len] = '\0';
		*outlen = len;
		return out;
	}
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return NULL;
	out = malloc(cap);
	if (out == NULL) {
		iconv_close(cd);
		return NULL;
	}
	op = out;
	ol = cap - 1;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
		iconv_close(cd);
		free(out);
		return NULL;
	}
	iconv_close(cd);
	*op = '\0';
	*outlen = (size_t)(op - out);
	return out;
}

static int
mime_take(struct mailmime *mm, struct mime_parts *out, char *err,
    size_t errlen)
{
	struct mailmime_data *d = mm->mm_data.mm_single;
	struct mailmime_content *ct = mm->mm_content_type;
	int tc = mime_is(ct, MAILMIME_DISCRETE_TYPE_TEXT, "calendar");
	int ics = mime_is(ct, MAILMIME_DISCRETE_TYPE_APPLICATION, "ics");
	char *dec = NULL, *text, *method, *charset;
	size_t idx = 0, declen = 0, tlen;
	const char *src;
	int r;

	if ((!tc && !ics) || d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return 0;
	src = d->dt_data.dt_text.dt_data;
	declen = d->dt_data.dt_text.dt_length;
	if (d->dt_encoded) {
		r = mailmime_part_parse(src, declen, &idx, d->dt_encoding,
		    &dec, &declen);
		if (r != MAILIMF_NO_ERROR) {
			snprintf(err, errlen, "calendar part cannot be "
			    "decoded");
			return -1;
		}
		src = dec;
	}
	if (declen > MIME_MAX_ICS) {
		snprintf(err, errlen, "calendar part of %zu bytes (limit %d)",
		    declen, MIME_MAX_ICS);
		goto fail;
	}
	charset = mailmime_content_charset_get(ct);
	text = mime_utf8(src, declen, charset, &tlen);
	if (text == NULL) {
		snprintf(err, errlen, "calendar part in charset %.40s cannot "
		    "be converted", charset ? charset : "?");
		goto fail;
	}
	if (dec != NULL)
		mailmime_decoded_part_free(dec);
	if ((ics && !mime_has_method(text, tlen)) || out->n == MIME_MAX_PARTS ||
	    memchr(text, '\0', tlen) != NULL) {
		/* not iMIP; more parts than anyone sends; or NULs */
		free(text);
		return 0;
	}
	out->part[out->n].text = text;
	out->part[out->n].len = tlen;
	out->part[out->n].text_calendar = tc;
	method = mailmime_content_param_get(ct, "method");
	if (method != NULL) {
		size_t i;
		for (i = 0; method[i] && i + 1 < sizeof out->part[0].method;
		    i++)
			out->part[out->n].method[i] =
			    (char)toupper((unsigned char)method[i]);
		out->part[out->n].method[i] = '\0';
	}
	out->n++;
	return 0;
fail:
	if (dec != NULL)
		mailmime_decoded_part_free(dec);
	return -1;
}

static int
mime_walk(struct mailmime *mm, int depth, struct mime_parts *out, char *err,
    size_t errlen)
{
	clistiter *it;

	if (mm == NULL)
		return 0;
	if (depth > MIME_MAX_CONTAINERS) {
		snprintf(err, errlen, "MIME tree deeper than %d",
		    MIME_MAX_CONTAINERS);
		return -1;
	}
	switch (mm->mm_type) {
	case MAILMIME_SINGLE:
		return mime_take(mm, out, err, errlen);
	case MAILMIME_MULTIPLE:
		if (mm->mm_data.mm_multipart.mm_mp_list == NULL)
			return 0;
		for (it = clist_begin(mm->mm_data.mm_multipart.mm_mp_list);
		    it != NULL; it = clist_next(it)) {
			if (mime_walk(clist_content(it), depth + 1, out, err,
			    errlen) != 0)
				return -1;
		}
		return 0;
	case MAILMIME_MESSAGE:
		return mime_walk(mm->mm_data.mm_message.mm_msg_mime,
		    depth + 1, out, err, errlen);
	default:
		return 0;
	}
}

enum mime_status
mime_calendars(const char *msg, size_t len, struct mime_parts *out,
    char *err, size_t errlen)
{
	struct mailmime *mm = NULL;
	size_t idx = 0;
	int r;

	memset(out, 0, sizeof *out);
	if (mime_containers(msg, len) > MIME_MAX_CONTAINERS) {
		snprintf(err, errlen, "more than %d multipart or message "
		    "parts", MIME_MAX_CONTAINERS);
		return MIME_INVALID;
	}
	r = mailmime_parse(msg, len, &idx, &mm);
	if (r != MAILIMF_NO_ERROR || mm == NULL) {
		snprintf(err, errlen, "MIME structure cannot be parsed");
		return MIME_INVALID;
	}
	r = mime_walk(mm, 0, out, err, errlen);
	mailmime_free(mm);
	if (r != 0) {
		mime_parts_free(out);
		return MIME_INVALID;
	}
	return MIME_OK;
}
