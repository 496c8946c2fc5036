/*
 * tests/unit/test_gate.c: gate decisions that need no working DNS (the
 * resolver here never answers), hostile input, the Google Workspace and
 * shared-signer rules, the JSON, and many threads on one gate.
 * The DNS-dependent table is tests/integration/test_gate.py.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/gate.h"
#include "tests/unit/check.h"

#define CALTEXT(org, method) \
	"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" \
	"METHOD:" method "\r\nBEGIN:VEVENT\r\nUID:u1@x.org\r\n" \
	"DTSTAMP:20260101T000000Z\r\nDTSTART:20260102T100000Z\r\n" \
	"ORGANIZER:mailto:" org "\r\nATTENDEE:mailto:alice@y.org\r\n" \
	"SUMMARY:Meet\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
#define INVITE(from, org) \
	"From: Bob <" from ">\r\nTo: alice@y.org\r\nSubject: x\r\n" \
	"Content-Type: text/calendar; method=REQUEST\r\n\r\n" \
	CALTEXT(org, "REQUEST")

static struct gate *g;
static int blackhole = -1;

static struct gate_policy
policy(enum gate_require req)
{
	struct gate_policy p;

	memset(&p, 0, sizeof p);
	p.require = req;
	p.signers = GATE_SIGNER_ALIGNED;
	p.dkim_domains_any = 1;
	p.organizer_must_match_from = 1;
	p.trusted_authserv_id = "";
	return p;
}

static void
decide(const char *name, const char *msg, size_t len, enum gate_require req,
    enum gate_decision want, const char *reason)
{
	struct gate_policy p = policy(req);
	struct gate_verdict v;

	gate_decide(g, &p, msg, len, &v);
	check(v.decision == want && !strcmp(v.reason, reason),
	    "%s: %s/%s, want %s/%s (%s)", name, gate_decision_str(v.decision),
	    v.reason, gate_decision_str(want), reason, v.detail);
	if (v.decision == GATE_SKIP)
		check(v.hint[0] != '\0', "%s: a skip has a hint", name);
	gate_verdict_free(&v);
}

#define D(name, msg, req, want, reason) \
	decide(name, msg, strlen(msg), req, want, reason)

static void
test_decisions(void)
{
	D("no calendar", "From: a@x.org\r\n\r\nhello\r\n", GATE_REQUIRE_DMARC,
	    GATE_IGNORE, "no-calendar");
	D("two From", "From: a@x.org\r\n" INVITE("bob@x.org", "bob@x.org"),
	    GATE_REQUIRE_NONE, GATE_SKIP, "from-invalid");
	D("two addresses", "From: a@x.org, b@x.org\r\n"
	    "Content-Type: text/calendar\r\n\r\n" CALTEXT("a@x.org", "REQUEST"),
	    GATE_REQUIRE_NONE, GATE_SKIP, "from-invalid");
	D("no domain", "From: bob\r\nContent-Type: text/calendar\r\n\r\n"
	    CALTEXT("bob@x.org", "REQUEST"), GATE_REQUIRE_NONE, GATE_SKIP,
	    "from-invalid");
	D("no From", "To: a@x.org\r\nContent-Type: text/calendar\r\n\r\n"
	    CALTEXT("bob@x.org", "REQUEST"), GATE_REQUIRE_NONE, GATE_SKIP,
	    "from-invalid");
	D("ical garbage", "From: bob@x.org\r\nContent-Type: text/calendar\r\n"
	    "\r\nthis is not a calendar\r\n", GATE_REQUIRE_NONE, GATE_SKIP,
	    "ical-invalid");
	D("ical no METHOD", "From: bob@x.org\r\nContent-Type: text/calendar"
	    "\r\n\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT"
	    "\r\nEND:VCALENDAR\r\n", GATE_REQUIRE_NONE, GATE_SKIP,
	    "ical-invalid");
	D("ical two UIDs", "From: bob@x.org\r\nContent-Type: text/calendar"
	    "\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
	    "UID:1\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:2\r\nEND:VEVENT\r\n"
	    "END:VCALENDAR\r\n", GATE_REQUIRE_NONE, GATE_SKIP,
	    "ical-invalid");
	D("truncated headers", "From: bob@x.org\r\nContent-Type: text/calendar"
	    "; method=REQUEST", GATE_REQUIRE_NONE, GATE_IGNORE, "no-calendar");
	D("conflicting parts", "From: bob@x.org\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
	    "Content-Type: text/calendar\r\n\r\n" CALTEXT("bob@x.org",
	    "REQUEST") "--B\r\nContent-Type: text/calendar\r\n\r\n"
	    CALTEXT("bob@x.org", "CANCEL") "--B--\r\n", GATE_REQUIRE_NONE,
	    GATE_SKIP, "imip-conflict");
	D("identical parts", "From: bob@x.org\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
	    "Content-Type: text/calendar\r\n\r\n" CALTEXT("bob@x.org",
	    "REQUEST") "--B\r\nContent-Type: application/ics\r\n\r\n"
	    CALTEXT("bob@x.org", "REQUEST") "--B--\r\n", GATE_REQUIRE_NONE,
	    GATE_ACCEPT, "no-auth-required");
	D("organizer mismatch", INVITE("bob@x.org", "ceo@x.org"),
	    GATE_REQUIRE_NONE, GATE_SKIP, "organizer-mismatch");
	D("organizer case", INVITE("Bob@X.org", "bob@x.ORG"),
	    GATE_REQUIRE_NONE, GATE_ACCEPT, "no-auth-required");
	/* DNS never answers: DMARC is a temperror, but with no signature
	 * no answer could make it pass, so this is a skip, not a defer. */
	D("unsigned, DNS down, dmarc", INVITE("bob@x.org", "bob@x.org"),
	    GATE_REQUIRE_DMARC, GATE_SKIP, "dkim-none");
	D("unsigned, DNS down, dkim", INVITE("bob@x.org", "bob@x.org"),
	    GATE_REQUIRE_DKIM, GATE_SKIP, "dkim-none");
	D("bad signature, DNS down",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=x.org; d=x.org; s=s; h=from;"
	    " bh=!!!; b=???\r\n" INVITE("bob@x.org", "bob@x.org"),
	    GATE_REQUIRE_DKIM, GATE_SKIP, "dkim-fail");
	/* An aligned signature whose key lookup times out could pass. */
	D("aligned sig, DNS down",
	    "DKIM-Signature: v=1; a=rsa-sha256; d=x.org; s=s; h=from;"
	    " bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA\r\n"
	    INVITE("bob@x.org", "bob@x.org"), GATE_REQUIRE_DMARC, GATE_DEFER,
	    "dmarc-temperror");
}

static void
test_hostile(void)
{
	size_t n = 1024 * 1024;
	char *m = malloc(n + 1024);
	int o;

	o = snprintf(m, 100, "X-Long: ");
	memset(m + o, 'a', n);
	strcpy(m + o + n, "\r\n" INVITE("bob@x.org", "bob@x.org"));
	D("1 MB header line", m, GATE_REQUIRE_NONE, GATE_SKIP,
	    "message-invalid");
	o = snprintf(m, 100, "DKIM-Signature: v=1; b=");
	memset(m + o, 'A', n);
	strcpy(m + o + n, "\r\n" INVITE("bob@x.org", "bob@x.org"));
	D("1 MB DKIM-Signature", m, GATE_REQUIRE_NONE, GATE_SKIP,
	    "message-invalid");
	free(m);

	/* a MIME tree 1,000 parts deep */
	n = 1000 * 80 + 1024;
	m = malloc(n);
	o = snprintf(m, n, "From: bob@x.org\r\nMIME-Version: 1.0\r\n");
	for (int i = 0; i < 1000; i++)
		o += snprintf(m + o, n - (size_t)o, "Content-Type: multipart/"
		    "mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
	snprintf(m + o, n - (size_t)o, "Content-Type: text/calendar\r\n\r\n"
	    CALTEXT("bob@x.org", "REQUEST"));
	D("1000 deep", m, GATE_REQUIRE_NONE, GATE_SKIP, "mime-invalid");
	free(m);

	/* calendars libical would take: an END that closes the wrong
	 * component, one before any BEGIN, components 12 deep */
	D("END closes the wrong component", "From: Bob <bob@x.org>\r\n"
	    "Content-Type: text/calendar; method=REQUEST\r\n\r\n"
	    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
	    "UID:u1@x.org\r\nORGANIZER:mailto:bob@x.org\r\nBEGIN:VALARM\r\n"
	    "END:VEVENT\r\nEND:VALARM\r\nEND:VCALENDAR\r\n",
	    GATE_REQUIRE_NONE, GATE_SKIP, "ical-invalid");
	D("END before BEGIN", "From: Bob <bob@x.org>\r\n"
	    "Content-Type: text/calendar; method=REQUEST\r\n\r\n"
	    "END:VEVENT\r\n" CALTEXT("bob@x.org", "REQUEST"),
	    GATE_REQUIRE_NONE, GATE_SKIP, "ical-invalid");
	D("components 12 deep", "From: Bob <bob@x.org>\r\n"
	    "Content-Type: text/calendar; method=REQUEST\r\n\r\n"
	    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
	    "UID:u1@x.org\r\nORGANIZER:mailto:bob@x.org\r\n"
	    "BEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\n"
	    "BEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\nBEGIN:X\r\n"
	    "END:X\r\nEND:X\r\nEND:X\r\nEND:X\r\nEND:X\r\n"
	    "END:X\r\nEND:X\r\nEND:X\r\nEND:X\r\nEND:X\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n",
	    GATE_REQUIRE_NONE, GATE_SKIP, "ical-invalid");

	/* 12 signatures: 10 checked, the rest counted */
	{
		struct gate_policy p = policy(GATE_REQUIRE_DKIM);
		struct gate_verdict v;
		char *mm = malloc(8192);
		int k = 0;
		for (int i = 0; i < 12; i++)
			k += snprintf(mm + k, 8192 - (size_t)k,
			    "DKIM-Signature: v=1; a=rsa-sha256; d=x.org; "
			    "s=s; h=to; bh=AAAA; b=AAAA\r\n");
		snprintf(mm + k, 8192 - (size_t)k, "%s",
		    INVITE("bob@x.org", "bob@x.org"));
		gate_decide(g, &p, mm, strlen(mm), &v);
		check(v.dkim.nsigs == DKIM_MAX_SIGS && v.dkim.nignored == 2,
		    "12 signatures: %zu checked, %zu ignored", v.dkim.nsigs,
		    v.dkim.nignored);
		check(v.decision == GATE_SKIP, "12 bad signatures: skip");
		gate_verdict_free(&v);
		free(mm);
	}
}

static void
test_rules(void)
{
	static const struct { const char *d, *from; int want; } g_cases[] = {
		{ "example-fi.20230601.gappssmtp.com", "example.fi", 1 },
		{ "Example-FI.20230601.GappsSMTP.com", "EXAMPLE.fi", 1 },
		{ "a-b-com.20230601.gappssmtp.com", "a.b.com", 1 },
		{ "a-b-com.20230601.gappssmtp.com", "a-b.com", 1 },
		{ "example-fi.2023060.gappssmtp.com", "example.fi", 0 },
		{ "example-fi.202306011.gappssmtp.com", "example.fi", 0 },
		{ "example-fi.2023o601.gappssmtp.com", "example.fi", 0 },
		{ "other-fi.20230601.gappssmtp.com", "example.fi", 0 },
		{ "example-fi.20230601.gappssmtp.com.evil.org", "example.fi",
		    0 },
		{ "example-fi.20230601.gappssmtp.org", "example.fi", 0 },
		{ "google.com", "example.fi", 0 },
		{ "x.example-fi.20230601.gappssmtp.com", "example.fi", 0 },
	};
	static const struct { const char *d; int want; } s_cases[] = {
		{ "google.com", 1 }, { "GOOGLE.COM", 1 },
		{ "tenant.onmicrosoft.com", 1 }, { "onmicrosoft.com", 1 },
		{ "x.gappssmtp.com", 1 }, { "notgoogle.com", 0 },
		{ "example.com", 0 }, { "google.com.evil.org", 0 },
	};
	for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++)
		check(gate_google_tenant(g_cases[i].d, g_cases[i].from) ==
		    g_cases[i].want, "google tenant %s for %s", g_cases[i].d,
		    g_cases[i].from);
	for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++)
		check(gate_shared_signer(s_cases[i].d) == s_cases[i].want,
		    "shared signer %s", s_cases[i].d);
	{
		char *known[] = { "@partner.example", "bob@x.org" };
		static const struct { const char *a; int want; } k[] = {
			{ "carol@partner.example", 1 },
			{ "Carol@PARTNER.example", 1 },
			{ "carol@sub.partner.example", 0 },
			{ "carol@evilpartner.example", 0 },
			{ "bob@x.org", 1 }, { "BOB@X.ORG", 1 },
			{ "bob2@x.org", 0 }, { "@partner.example", 0 },
			{ "partner.example", 0 }, { "", 0 },
		};
		for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
			check(gate_known_sender(known, 2, k[i].a) == k[i].want,
			    "known sender %s", k[i].a);
	}
}

static void
test_json(void)
{
	struct gate_policy p = policy(GATE_REQUIRE_NONE);
	struct gate_verdict v;
	const char *msg = "From: bob@x.org\r\nContent-Type: text/calendar\r\n"
	    "\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
	    "UID:a\"b\\\\c\r\nORGANIZER:mailto:bob@x.org\r\nEND:VEVENT\r\n"
	    "END:VCALENDAR\r\n";
	char *j;

	gate_decide(g, &p, msg, strlen(msg), &v);
	j = gate_verdict_json(&v);
	check(j != NULL, "json");
	if (j != NULL) {
		check(strstr(j, "\"decision\":\"accept\"") != NULL, "decision");
		check(strstr(j, "\"uid\":\"a\\\"b\\\\c\"") != NULL,
		    "escaped uid: %s", j);
		check(strstr(j, "\"spf\":null") != NULL, "spf null");
		check(strstr(j, "\"dkim\":[]") != NULL, "no dkim");
		check(strstr(j, "\"organizer\":\"mailto:bob@x.org\"") != NULL,
		    "organizer");
	}
	check(v.have_itip && v.ics != NULL && strstr(v.ics, "METHOD:REQUEST"),
	    "verdict owns the calendar text");
	gate_log(&v, "alice");
	free(j);
	gate_verdict_free(&v);
	gate_verdict_free(&v);	/* twice is harmless */

	{
		const char *m8 = "From: bob@x.org\r\nContent-Type: text/calendar"
		    "; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REQUEST"
		    "\r\nBEGIN:VEVENT\r\nUID:caf\xc3\xa9-\xff\xfe-\xed\xa0\x80"
		    "\r\nORGANIZER:mailto:bob@x.org\r\nEND:VEVENT\r\n"
		    "END:VCALENDAR\r\n";
		gate_decide(g, &p, m8, strlen(m8), &v);
		j = gate_verdict_json(&v);
		check(j && strstr(j, "\"uid\":\"caf\xc3\xa9-\xef\xbf\xbd\xef\xbf\xbd-"
		    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""), "invalid UTF-8 escaped: %s", j);
		free(j);
		gate_verdict_free(&v);
	}
	gate_decide(g, &p, "From: a@x.org\r\n\r\nhi", 20, &v);
	j = gate_verdict_json(&v);
	check(j && strstr(j, "\"itip\":null") && strstr(j, "\"policy\":"
	    "null"), "ignore JSON: %s", j);
	gate_log(&v, NULL);
	free(j);
	gate_verdict_free(&v);
}

static void *
worker(void *arg)
{
	struct gate_policy p = policy(GATE_REQUIRE_DMARC);
	const char *msg = "DKIM-Signature: v=1; a=rsa-sha256; d=x.org; s=s; "
	    "h=from; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=AAAA"
	    "\r\n" INVITE("bob@x.org", "bob@x.org");
	int *bad = arg;

	for (int i = 0; i < 3; i++) {
		struct gate_verdict v;
		gate_decide(g, &p, msg, strlen(msg), &v);
		if (v.decision != GATE_DEFER)
			(*bad)++;
		gate_verdict_free(&v);
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[8];
	int bad[8] = { 0 };
	struct timespec a, b;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, worker, &bad[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		check(bad[i] == 0, "thread %d: every decision a defer", i);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	/* 3 rounds of (key + DMARC) lookups at 300 ms each, in parallel */
	check(ms < 6000, "8 threads x 3 decisions took %ld ms", ms);
}

int
main(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	char err[256];

	/* A resolver that never answers: a bound UDP socket nobody reads. */
	blackhole = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(blackhole, (struct sockaddr *)&sa, sizeof sa);
	getsockname(blackhole, (struct sockaddr *)&sa, &sl);
	g = gate_new("127.0.0.1", ntohs(sa.sin_port), 300, err, sizeof err);
	check(g != NULL, "gate_new: %s", err);
	if (g == NULL)
		return check_done();
	test_rules();
	test_decisions();
	test_hostile();
	test_json();
	test_threads();
	gate_free(g);
	close(blackhole);
	return check_done();
}
