/*
 * tests/unit/test_mime.c: finding calendar parts: depth, encodings,
 * charsets, application/ics, bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mime.h"
#include "tests/unit/check.h"

#define CAL "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
/* before a boundary, the last CRLF belongs to the delimiter */
#define CAL_NOCRLF "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR"
#define CAL_B64 "QkVHSU46VkNBTEVOREFSDQpNRVRIT0Q6UkVRVUVTVA0KRU5EOlZDQUxFTk" \
	"RBUg0K"

static void
one(const char *name, const char *msg, int want_status, size_t want_n,
    const char *want_text)
{
	struct mime_parts p;
	char err[160] = "";
	enum mime_status st = mime_calendars(msg, strlen(msg), &p, err,
	    sizeof err);

	check((int)st == want_status, "%s: status %d (%s)", name, st, err);
	check(p.n == want_n, "%s: %zu parts, want %zu", name, p.n, want_n);
	if (want_text != NULL && p.n > 0)
		check(!strcmp(p.part[0].text, want_text), "%s: text \"%s\"",
		    name, p.part[0].text);
	mime_parts_free(&p);
}

static char *
deep(int levels)
{
	size_t cap = (size_t)levels * 120 + 512, o = 0;
	char *m = malloc(cap);

	o += (size_t)snprintf(m + o, cap - o, "From: a@x.org\r\n"
	    "MIME-Version: 1.0\r\n");
	for (int i = 0; i < levels; i++)
		o += (size_t)snprintf(m + o, cap - o, "Content-Type: "
		    "multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
	o += (size_t)snprintf(m + o, cap - o, "Content-Type: text/calendar; "
	    "method=REQUEST\r\n\r\n" CAL);
	for (int i = levels - 1; i >= 0; i--)
		o += (size_t)snprintf(m + o, cap - o, "--b%d--\r\n", i);
	return m;
}

int
main(void)
{
	char *m;

	one("single text/calendar",
	    "From: a@x.org\r\nContent-Type: text/calendar; method=request\r\n"
	    "\r\n" CAL, MIME_OK, 1, CAL);
	one("no calendar", "From: a@x.org\r\n\r\nhello\r\n", MIME_OK, 0, NULL);
	one("base64 in alternative",
	    "From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: "
	    "text/plain\r\n\r\nhi\r\n--A\r\nContent-Type: text/calendar; "
	    "method=REQUEST\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    CAL_B64 "\r\n--A--\r\n", MIME_OK, 1, CAL);
	one("quoted-printable",
	    "From: a@x.org\r\nContent-Type: text/calendar; method=REQUEST\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "BEGIN:VCALENDAR\r\nMETHOD:REQ=\r\nUEST\r\nEND:VCALENDAR\r\n",
	    MIME_OK, 1, CAL);
	one("latin-1 charset",
	    "From: a@x.org\r\nContent-Type: text/calendar; method=REQUEST; "
	    "charset=ISO-8859-1\r\n\r\nSUMMARY:Caf\xe9\r\n", MIME_OK, 1,
	    "SUMMARY:Caf\xc3\xa9\r\n");
	one("unknown charset",
	    "From: a@x.org\r\nContent-Type: text/calendar; method=REQUEST; "
	    "charset=x-no-such-charset\r\n\r\n" CAL, MIME_INVALID, 0, NULL);
	one("application/ics with METHOD",
	    "From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: "
	    "application/ics; name=invite.ics\r\n\r\n" CAL "--M--\r\n",
	    MIME_OK, 1, CAL_NOCRLF);
	one("application/ics without METHOD",
	    "From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: "
	    "application/ics\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
	    "--M--\r\n", MIME_OK, 0, NULL);
	one("inside message/rfc822",
	    "From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: "
	    "message/rfc822\r\n\r\nFrom: b@y.org\r\nContent-Type: "
	    "text/calendar; method=CANCEL\r\n\r\n" CAL "\r\n--M--\r\n",
	    MIME_OK, 1, NULL);
	one("garbage base64",
	    "From: a@x.org\r\nContent-Type: text/calendar; method=REQUEST\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n!!!*** not base64 ***\r\n",
	    MIME_OK, 1, NULL);
	one("truncated multipart",
	    "From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=M\r\n\r\n--M\r\nContent-Type: text/cal",
	    MIME_OK, 0, NULL);
	m = deep(10);
	one("10 levels deep", m, MIME_OK, 1, CAL_NOCRLF);
	free(m);
	m = deep(1000);
	one("1000 levels deep", m, MIME_INVALID, 0, NULL);
	free(m);
	{
		/* a decoded part over the limit */
		size_t n = MIME_MAX_ICS + 100;
		char *big = malloc(n + 200);
		int o = snprintf(big, 200, "From: a@x.org\r\nContent-Type: "
		    "text/calendar; method=REQUEST\r\n\r\n");
		memset(big + o, 'A', n);
		big[o + n] = '\0';
		one("oversized part", big, MIME_INVALID, 0, NULL);
		free(big);
	}
	{
		/* 20 parts; only MIME_MAX_PARTS kept */
		char *mm = malloc(20000);
		int o = snprintf(mm, 20000, "From: a@x.org\r\nMIME-Version: 1.0"
		    "\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n");
		for (int i = 0; i < 20; i++)
			o += snprintf(mm + o, 20000 - o, "--M\r\nContent-Type: "
			    "text/calendar; method=REQUEST\r\n\r\n" CAL);
		snprintf(mm + o, 20000 - o, "--M--\r\n");
		one("20 calendar parts", mm, MIME_OK, MIME_MAX_PARTS, NULL);
		free(mm);
	}
	return check_done();
}
