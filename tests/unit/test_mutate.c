/*
 * tests/unit/test_mutate.c: the gate's parsers against mutated mail, the
 * way hostile senders and broken relays produce it. A fixed-seed generator
 * makes thousands of variants of two real messages (the RFC 8463 signed
 * example and a Google-style invitation with a base64 and a
 * quoted-printable calendar) by flipping, deleting, duplicating and
 * inserting bytes and lines, cutting them short and splicing them; each
 * variant goes through msg_parse, DKIM (both RFC 8463 signatures, keys
 * given directly), Authentication-Results, the MIME walk and libical.
 *
 * What must hold: nothing crashes or reads out of bounds (make check runs
 * this under ASan and UBSan too); every status is one the API defines; and
 * a variant whose signed content changed never passes DKIM: with
 * c=simple/simple every letter or digit of the signed headers and the
 * body is covered, so replacing one by another must fail the signature.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/file.h"
#include "policy/authres.h"
#include "policy/dkim.h"
#include "policy/ics.h"
#include "policy/mime.h"
#include "policy/msg.h"
#include "tests/unit/check.h"
#include "tests/unit/rfc8463.h"


/* An invitation the way Google Calendar sends one: the calendar twice,
 * once inline (base64) and once as invite.ics (quoted-printable). */
static const char invite[] =
    "From: Bob <bob@gws.example>\r\n"
    "To: alice@calgate.test\r\n"
    "Subject: Invitation: Planning\r\n"
    "Authentication-Results: mx.calgate.test; spf=pass "
    "smtp.mailfrom=gws.example (sender \"ok\"); dkim=pass header.d=x\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"MIX\"\r\n"
    "\r\n"
    "--MIX\r\n"
    "Content-Type: multipart/alternative; boundary=\"ALT\"\r\n"
    "\r\n"
    "--ALT\r\n"
    "Content-Type: text/plain; charset=\"UTF-8\"\r\n"
    "\r\n"
    "You have been invited.\r\n"
    "--ALT\r\n"
    "Content-Type: text/calendar; charset=\"UTF-8\"; method=REQUEST\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "QkVHSU46VkNBTEVOREFSDQpQUk9ESUQ6LS8vR29vZ2xlIEluYy8vR29vZ2xlIENhbGVuZGFy\r\n"
    "IDcwLjkwNTQvL0VODQpWRVJTSU9OOjIuMA0KTUVUSE9EOlJFUVVFU1QNCkJFR0lOOlZFVkVO\r\n"
    "VA0KRFRTVEFSVDoyMDI3MDExNVQxMDAwMDBaDQpEVEVORDoyMDI3MDExNVQxMTAwMDBaDQpE\r\n"
    "VFNUQU1QOjIwMjYxMjAxVDA5MDAwMFoNCk9SR0FOSVpFUjttYWlsdG86Ym9iQGd3cy5leGFt\r\n"
    "cGxlDQpVSUQ6ZXZ0LTFAZXhhbXBsZQ0KQVRURU5ERUU7UEFSVFNUQVQ9TkVFRFMtQUNUSU9O\r\n"
    "Om1haWx0bzphbGljZUBjYWxnYXRlLnRlc3QNClNFUVVFTkNFOjANClNVTU1BUlk6UGxhbm5p\r\n"
    "bmcNCkVORDpWRVZFTlQNCkVORDpWQ0FMRU5EQVINCg==\r\n"
    "--ALT--\r\n"
    "\r\n"
    "--MIX\r\n"
    "Content-Type: application/ics; name=\"invite.ics\"\r\n"
    "Content-Disposition: attachment; filename=\"invite.ics\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "BEGIN:VCALENDAR\r\n"
    "PRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
    "VERSION:2.0\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\n"
    "DTSTART:20270115T100000Z\r\n"
    "DTEND:20270115T110000Z\r\n"
    "DTSTAMP:20261201T090000Z\r\n"
    "ORGANIZER;CN=3DBob:mailto:bob@gws.example\r\n"
    "UID:evt-1@example\r\n"
    "ATTENDEE;PARTSTAT=3DNEEDS-ACTION:mailto:alice@calgate.test\r\n"
    "SEQUENCE:0\r\n"
    "SUMMARY:Planning =E2=80=93 Q1\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
    "--MIX--\r\n";

static uint64_t rng_state = 0x5eed6376c4a1e2b9ULL;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? (uint32_t)(rng_state % n) : 0;
}

/* One random structural mutation of buf[0..*len) in place; cap bytes of
 * room. */
static void
mutate(char *buf, size_t *len, size_t cap)
{
	static const char junk[] = "\r\n\t :;=\"-\\<>@%\0\x80\xff=?";
	size_t n = *len, at = n ? rnd((uint32_t)n) : 0, k;

	switch (rnd(8)) {
	case 0:		/* any byte */
		if (n)
			buf[at] = (char)rnd(256);
		break;
	case 1:		/* a syntax byte */
		if (n)
			buf[at] = junk[rnd(sizeof junk - 1)];
		break;
	case 2:		/* delete a run */
		k = rnd(64) + 1;
		if (at + k > n)
			k = n - at;
		memmove(buf + at, buf + at + k, n - at - k);
		*len = n - k;
		break;
	case 3:		/* insert a syntax byte */
		if (n + 1 < cap) {
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = junk[rnd(sizeof junk - 1)];
			*len = n + 1;
		}
		break;
	case 4:		/* duplicate a run (headers, boundaries, lines) */
		k = rnd(200) + 1;
		if (at + k > n)
			k = n - at;
		if (n + k < cap) {
			memmove(buf + at + k, buf + at, n - at);
			*len = n + k;
		}
		break;
	case 5:		/* cut short */
		*len = at;
		break;
	case 6:		/* bare LF or lone CR */
		if (n)
			buf[at] = rnd(2) ? '\n' : '\r';
		break;
	default:	/* a long run of one byte */
		k = rnd(3000) + 1;
		if (n + k < cap) {
			memmove(buf + at + k, buf + at, n - at);
			memset(buf + at, rnd(2) ? ' ' : 'A', k);
			*len = n + k;
		}
		break;
	}
}

static int
dkim_valid(enum dkim_res r)
{
	return r >= DKIM_PASS && r <= DKIM_PERMERROR;
}

/* Everything the gate parses, for one variant; counts what broke. */
static void
parse_all(const char *v, size_t len, int *bad)
{
	struct msg m;
	struct mime_parts parts;
	struct dkim_sig s;
	struct authres_spf spf;
	char err[200];
	enum mime_status ms;

	ms = mime_calendars(v, len, &parts, err, sizeof err);
	if (ms != MIME_OK && ms != MIME_INVALID)
		(*bad)++;
	for (size_t i = 0; ms == MIME_OK && i < parts.n; i++) {
		struct ics_info info;
		if (strlen(parts.part[i].text) != parts.part[i].len)
			(*bad)++;	/* NUL inside: must be refused */
		if (ics_parse(parts.part[i].text, &info, err, sizeof err) == 0
		    && (info.method == NULL || info.uid == NULL))
			(*bad)++;
		ics_free(&info);
	}
	mime_parts_free(&parts);
	if (msg_parse(v, len, &m, err, sizeof err) != 0) {
		msg_free(&m);	/* the contract: even on error */
		return;
	}
	for (size_t i = 0; i < m.nhdrs; i++) {
		if (msg_is(&m.hdrs[i], "DKIM-Signature")) {
			dkim_verify_key(NULL, &m, i, i == 0 ? RFC8463_ED :
			    RFC8463_RSA, T_2018, &s);
			if (!dkim_valid(s.result))
				(*bad)++;
		}
	}
	if (authres_spf(&m, "mx.calgate.test", &spf) == 1 &&
	    memchr(spf.result, '\0', sizeof spf.result) == NULL)
		(*bad)++;
	msg_free(&m);
}

static void
test_structural(const char *base, size_t blen, const char *name, int rounds)
{
	size_t cap = blen * 2 + 8192;
	char *buf = malloc(cap);
	int bad = 0;

	for (int r = 0; r < rounds && buf != NULL; r++) {
		size_t len = blen;
		memcpy(buf, base, blen);
		for (int k = (int)rnd(6) + 1; k > 0; k--)
			mutate(buf, &len, cap);
		parse_all(buf, len, &bad);
	}
	check(buf != NULL && bad == 0, "%s: %d of %d variants broke an API "
	    "promise", name, bad, rounds);
	free(buf);
}

/* One letter or digit of the signed part replaced by another: neither
 * RFC 8463 signature may pass. */
static void
test_signed_content(const char *raw, size_t len)
{
	struct msg m;
	struct dkim_sig s;
	char *buf = malloc(len + 1), err[160];
	const char *from = strstr(raw, "\nFrom:");
	size_t start = from ? (size_t)(from - raw) + 1 : len, tried = 0;
	int passed = 0;

	/* both signatures pass the untouched message */
	check(msg_parse(raw, len, &m, err, sizeof err) == 0, "parse: %s", err);
	dkim_verify_key(NULL, &m, 0, RFC8463_ED, T_2018, &s);
	check(s.result == DKIM_PASS, "base ed25519: %s", s.reason);
	dkim_verify_key(NULL, &m, 1, RFC8463_RSA, T_2018, &s);
	check(s.result == DKIM_PASS, "base rsa: %s", s.reason);
	msg_free(&m);
	for (int r = 0; r < 1500 && buf != NULL && start < len; r++) {
		size_t at = start + rnd((uint32_t)(len - start));
		char c;

		if (!isalnum((unsigned char)raw[at]))
			continue;
		do
			c = "abcXYZ0189qQ"[rnd(12)];
		while (c == raw[at]);
		memcpy(buf, raw, len);
		buf[at] = c;
		if (msg_parse(buf, len, &m, err, sizeof err) != 0) {
			msg_free(&m);
			continue;
		}
		tried++;
		for (size_t i = 0; i < m.nhdrs && i < 2; i++) {
			dkim_verify_key(NULL, &m, i, i == 0 ? RFC8463_ED :
			    RFC8463_RSA, T_2018, &s);
			if (s.result == DKIM_PASS) {
				passed++;
				fprintf(stderr, "passes with byte %zu "
				    "changed to %c\n", at, c);
			}
		}
		msg_free(&m);
	}
	check(tried > 500 && passed == 0, "signed content changed: %d of %zu "
	    "variants passed DKIM", passed, tried);
	free(buf);
}

int
main(void)
{
	size_t len = 0;
	char err[300];
	char *raw = file_read("tests/data/rfc8463.eml", 1u << 20, &len, err,
	    sizeof err);

	check(raw != NULL, "read tests/data/rfc8463.eml");
	if (raw != NULL) {
		test_signed_content(raw, len);
		test_structural(raw, len, "signed message", 3000);
	}
	test_structural(invite, sizeof invite - 1, "invitation", 6000);
	free(raw);
	return check_done();
}
