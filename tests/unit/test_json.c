/*
 * tests/unit/test_json.c: the JSON writer's escaping and UTF-8 handling,
 * json_copy on valid and hostile input, and the metrics exposition.
 */
#include <stdlib.h>
#include <string.h>

#include "server/json.h"
#include "server/metrics.h"
#include "tests/unit/check.h"

/* Writes one string value and returns the JSON text (static buffer). */
static const char *
str1(const char *s, size_t n)
{
	static char out[256];
	struct json j;
	char *t;

	json_init(&j);
	json_arr_begin(&j);
	json_strn(&j, s, n);
	json_arr_end(&j);
	t = json_finish(&j, NULL);
	snprintf(out, sizeof out, "%s", t ? t : "(null)");
	free(t);
	return out;
}

static const struct {
	const char *in;
	size_t len;			/* 0: strlen */
	const char *want;
} strings[] = {
	{ "plain", 0, "[\"plain\"]" },
	{ "a\"b\\c", 0, "[\"a\\\"b\\\\c\"]" },
	{ "l1\nl2\r\t", 0, "[\"l1\\nl2\\r\\t\"]" },
	{ "\x01\x1f\x7f", 0, "[\"\\u0001\\u001f\\u007f\"]" },
	{ "<img src=x onerror=alert(1)>", 0,
	  "[\"\\u003cimg src=x onerror=alert(1)\\u003e\"]" },
	{ "a&b", 0, "[\"a\\u0026b\"]" },
	{ "nul\0x", 5, "[\"nul\\u0000x\"]" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x85", 0,
	  "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x85\"]" },
	{ "bad\xff", 0, "[\"bad\xef\xbf\xbd\"]" },
	{ "\xc0\xaf", 0, "[\"\xef\xbf\xbd\xef\xbf\xbd\"]" },	/* overlong */
	{ "\xed\xa0\x80", 0,					/* surrogate */
	  "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]" },
	{ "\xf4\x90\x80\x80", 0,				/* > 10FFFF */
	  "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]" },
	{ "cut\xe2\x82", 0, "[\"cut\xef\xbf\xbd\xef\xbf\xbd\"]" },
	{ "ls\xe2\x80\xa8", 0, "[\"ls\\u2028\"]" },
};

static const struct {
	const char *in;
	const char *want;		/* NULL: must be refused */
} copies[] = {
	{ "{}", "{}" },
	{ " { \"a\" : [1, -2.5e3, true, false, null] } ",
	  "{\"a\":[1,-2.5e3,true,false,null]}" },
	{ "{\"dkim\":[{\"domain\":\"google.com\",\"aligned\":false}]}",
	  "{\"dkim\":[{\"domain\":\"google.com\",\"aligned\":false}]}" },
	{ "{\"s\":\"<b>\\u00e9\\ud83d\\udcc5\\/\"}",
	  "{\"s\":\"\\u003cb\\u003e\xc3\xa9\xf0\x9f\x93\x85/\"}" },
	{ "{\"lone\":\"\\ud800x\"}", "{\"lone\":\"\xef\xbf\xbdx\"}" },
	{ "{\"a\":1,}", NULL },
	{ "{\"a\" 1}", NULL },
	{ "{\"a\":01}", NULL },
	{ "{\"a\":\"x\ny\"}", NULL },		/* raw control char */
	{ "{\"a\":\"\\q\"}", NULL },
	{ "{\"a\":tru}", NULL },
	{ "{} {}", NULL },
	{ "\"unterminated", NULL },
	{ "", NULL },
	{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["		/* too deep */
	  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", NULL },
};

static void
test_copy(void)
{
	for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
		struct json j;
		char *t;
		int rc;

		json_init(&j);
		json_obj_begin(&j);
		json_key(&j, "v");
		rc = json_copy(&j, copies[i].in, strlen(copies[i].in));
		if (rc != 0)
			json_null(&j);
		json_obj_end(&j);
		t = json_finish(&j, NULL);
		if (copies[i].want == NULL) {
			check(rc == -1, "copy %zu refused", i);
			check(t && !strcmp(t, "{\"v\":null}"),
			    "copy %zu wrote nothing: %s", i, t ? t : "-");
		} else {
			char want[512];

			snprintf(want, sizeof want, "{\"v\":%s}",
			    copies[i].want);
			check(rc == 0, "copy %zu accepted", i);
			check(t && !strcmp(t, want), "copy %zu: %s", i,
			    t ? t : "-");
		}
		free(t);
	}
}

/* Mutated copies of a real detail: refused or re-emitted, and what is
 * re-emitted must itself copy back unchanged. ASan watches the parser. */
static void
test_mutations(void)
{
	static const char base[] = "{\"dkim\": [{\"domain\": \"google.com\", "
	    "\"result\": \"pass\", \"aligned\": false}], \"spf\": null, "
	    "\"dmarc\": {\"result\": \"none\", \"policy\": null}, "
	    "\"n\": -1.5e3, \"s\": \"a\\u00e9\\n\"}";
	static const char alphabet[] =
	    "{}[],:\"\\u0123456789eE+-.tfnl \x80\xff";
	unsigned seed = 12345;
	int bad = 0;

	for (int i = 0; i < 20000; i++) {
		char in[sizeof base];
		struct json j, k;
		char *t, *t2;
		size_t n = sizeof base - 1;

		memcpy(in, base, sizeof base);
		for (int m = 0; m < 1 + i % 4; m++) {
			seed = seed * 1103515245u + 12345u;
			in[(seed >> 8) % n] = alphabet[(seed >> 20) %
			    (sizeof alphabet - 1)];
		}
		if (i % 7 == 0)
			n = (seed >> 4) % n;		/* truncated */
		json_init(&j);
		if (json_copy(&j, in, n) != 0) {
			t = json_finish(&j, NULL);
			bad += t != NULL;	/* nothing may be written */
			free(t);
			continue;
		}
		t = json_finish(&j, NULL);
		json_init(&k);
		t2 = NULL;
		if (t && json_copy(&k, t, strlen(t)) == 0)
			t2 = json_finish(&k, NULL);
		else
			json_discard(&k);
		bad += t == NULL || t2 == NULL || strcmp(t, t2) != 0;
		free(t);
		free(t2);
	}
	check(bad == 0, "mutated inputs: %d bad", bad);
}

static void
test_structure(void)
{
	struct json j;
	char *t;
	size_t len;

	json_init(&j);
	json_obj_begin(&j);
	json_kstr(&j, "a", NULL);
	json_kint(&j, "b", -9007199254740993LL);
	json_kbool(&j, "c", 1);
	json_key(&j, "d");
	json_arr_begin(&j);
	json_int(&j, 1);
	json_obj_begin(&j);
	json_obj_end(&j);
	json_double(&j, 0.5);
	json_arr_end(&j);
	json_obj_end(&j);
	t = json_finish(&j, &len);
	check(t && !strcmp(t, "{\"a\":null,\"b\":-9007199254740993,"
	    "\"c\":true,\"d\":[1,{},0.5]}"), "structure: %s",
	    t ? t : "(null)");
	check(t && len == strlen(t), "length");
	free(t);

	json_init(&j);
	json_obj_begin(&j);
	t = json_finish(&j, NULL);
	check(t == NULL, "unbalanced output refused");

	json_init(&j);
	json_arr_begin(&j);
	json_key(&j, "k");
	json_arr_end(&j);
	t = json_finish(&j, NULL);
	check(t == NULL, "a key inside an array refused");
}

static void
test_metrics(void)
{
	char *t;

	metrics_http("GET", 200);
	metrics_http("GET", 200);
	metrics_http("BREW", 418);
	metrics_poll();
	metrics_decision("skip", "dmarc-none");
	metrics_decision("skip", "bad reason\n\"x\"");
	for (int i = 0; i < 100; i++) {
		char r[32];

		snprintf(r, sizeof r, "r%d", i);
		metrics_decision("accept", r);
	}
	metrics_dns_ms(3);
	metrics_dkim_ms(20000);
	t = metrics_render(1, NULL);
	check(t != NULL, "render");
	if (t == NULL)
		return;
	check(strstr(t, "calgate_http_requests_total{method=\"GET\","
	    "status=\"200\"} 2\n") != NULL, "http counter");
	check(strstr(t, "{method=\"other\",status=\"418\"} 1\n") != NULL,
	    "unknown method folded");
	check(strstr(t, "calgate_imap_polls_total 1\n") != NULL, "polls");
	check(strstr(t, "{decision=\"skip\",reason=\"dmarc-none\"} 1\n") !=
	    NULL, "decision counter");
	check(strstr(t, "{decision=\"skip\",reason=\"other\"} 1\n") != NULL,
	    "odd reason folded");
	check(strstr(t, "{decision=\"other\",reason=\"other\"}") != NULL,
	    "too many reasons collected");
	check(strstr(t, "calgate_dns_lookup_seconds_bucket{le=\"0.005\"} 1\n")
	    != NULL, "dns bucket");
	check(strstr(t, "calgate_dkim_verify_seconds_bucket{le=\"10\"} 0\n")
	    != NULL && strstr(t, "calgate_dkim_verify_seconds_bucket"
	    "{le=\"+Inf\"} 1\n") != NULL, "dkim +Inf bucket");
	free(t);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		const char *got = str1(strings[i].in, strings[i].len ?
		    strings[i].len : strlen(strings[i].in));

		check(!strcmp(got, strings[i].want), "string %zu: %s", i,
		    got);
	}
	test_copy();
	test_mutations();
	test_structure();
	test_metrics();
	return check_done();
}
