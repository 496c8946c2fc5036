/*
 * tests/unit/test_xml.c: webdav/xml.c, the request parser's refusals and
 * the response writer's escaping.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"
#include "webdav/xml.h"

static int
parses(const char *s)
{
	char err[200];
	xmlDoc *d = xml_parse(s, strlen(s), err, sizeof err);

	xmlFreeDoc(d);
	return d != NULL;
}

static char *
nested(int depth)
{
	size_t n = (size_t)depth * 7 + 64;
	char *s = malloc(n), *p = s;

	p = stpcpy(p, "<D:prop xmlns:D=\"DAV:\">");
	for (int i = 0; i < depth; i++)
		p = stpcpy(p, "<a>");
	for (int i = 0; i < depth; i++)
		p = stpcpy(p, "</a>");
	strcpy(p, "</D:prop>");
	return s;
}

static void
test_parse(void)
{
	char *s;

	check(parses("<D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>"),
	    "a plain propfind parses");
	check(!parses("<D:propfind xmlns:D=\"DAV:\">"), "truncated refused");
	check(!parses(""), "empty refused");
	check(!parses("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"
	    "<x>&a;</x>"), "internal entity refused");
	check(!parses("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>"),
	    "external DTD refused");
	check(!parses("<x xmlns:p=\"\"><p:y/></x>"),
	    "empty namespace prefix binding refused");
	check(!parses("<x><undeclared:y/></x>"), "unbound prefix refused");
	s = nested(XML_MAX_DEPTH - 2);
	check(parses(s), "depth %d parses", XML_MAX_DEPTH - 2);
	free(s);
	s = nested(XML_MAX_DEPTH + 1);
	check(!parses(s), "depth %d refused", XML_MAX_DEPTH + 1);
	free(s);
	s = nested(10000);
	check(!parses(s), "depth 10000 refused");
	free(s);
}

static void
test_helpers(void)
{
	char err[200];
	const char *s = "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:getetag/>"
	    "<X:y xmlns:X=\"urn:x\"><X:z a=\"1\">t</X:z></X:y></D:prop>"
	    "</D:propfind>";
	xmlDoc *d = xml_parse(s, strlen(s), err, sizeof err);
	xmlNode *root = xmlDocGetRootElement(d), *prop, *y;
	char *dump;

	prop = xml_child(root, XML_NS_DAV, "prop");
	check(prop != NULL, "xml_child finds D:prop");
	check(xml_is(xml_first(prop), XML_NS_DAV, "getetag"), "first child");
	y = xml_next(xml_first(prop));
	check(y && !strcmp(xml_ns(y), "urn:x"), "namespace of X:y");
	dump = y ? xml_dump_element(y) : NULL;
	check(dump && strstr(dump, "xmlns:X=\"urn:x\"") &&
	    strstr(dump, "<X:z a=\"1\">t</X:z>"),
	    "dump is self-contained: %s", dump ? dump : "(null)");
	free(dump);
	xmlFreeDoc(d);
}

static void
test_writer(void)
{
	struct xml_buf b = { 0 };
	size_t len;
	char *s;

	xml_buf_esc(&b, "a<b>&\"c\"\r\n", 11);
	check(!strcmp(b.p, "a&lt;b&gt;&amp;&quot;c&quot;&#13;\n"),
	    "escaping: %s", b.p);
	b.len = 0;
	xml_buf_href(&b, "/dav/calendars/al ice/x%y\xe2\x82\xac.ics");
	check(!strcmp(b.p, "/dav/calendars/al%20ice/x%25y%E2%82%AC.ics"),
	    "href encoding: %s", b.p);
	b.len = 0;
	xml_open_prop(&b, "urn:x", "p");
	xml_buf_str(&b, "/>");
	xml_open_prop(&b, "", "q");
	xml_buf_str(&b, "/>");
	xml_open_prop(&b, XML_NS_CALDAV, "r");
	xml_buf_str(&b, "/>");
	check(!strcmp(b.p, "<X:p xmlns:X=\"urn:x\"/><q/><C:r/>"),
	    "property tags: %s", b.p);
	for (int i = 0; i < 100000; i++)
		xml_buf_printf(&b, "%d,", i);
	check(!b.oom && b.len > 500000, "the buffer grows");
	s = xml_buf_take(&b, &len);
	check(s && len > 500000 && b.p == NULL, "take hands over the memory");
	free(s);
}

int
main(void)
{
	test_parse();
	test_helpers();
	test_writer();
	xmlCleanupParser();
	return check_done();
}
