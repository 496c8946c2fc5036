#!/usr/bin/python3
"""The CalDAV protocol details clients depend on, request by request:
discovery, OPTIONS, PROPFIND (Depth, unknown properties, allprop),
PROPPATCH atomicity, MKCALENDAR / extended MKCOL, PUT validation and
preconditions, exact round trips, ETags, sync-collection tokens."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

CAL = "/dav/calendars/alice/default/"
NS = ('xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
      'xmlns:CS="http://calendarserver.org/ns/" '
      'xmlns:A="http://apple.com/ns/ical/"')
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
         "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
         "DTSTART:20260210T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n")


def propfind(cg, path, props, depth="0"):
    return cg.request("PROPFIND", path, headers={"Depth": depth}, body=(
        '<D:propfind %s><D:prop>%s</D:prop></D:propfind>' % (NS, props)))


def discovery(t, cg):
    r = cg.request("GET", "/.well-known/caldav")
    t.check(r.status in (301, 308) and r.headers.get("Location") == "/dav/",
            "well-known redirects to /dav/")
    r = cg.request("OPTIONS", CAL)
    dav = r.headers.get("DAV", "")
    t.check("calendar-access" in dav and "1" in dav and "3" in dav and
            "2" not in dav.split(", ") and "auto-schedule" not in dav,
            "OPTIONS DAV: %s" % dav)
    for path in ("/", "/dav/", CAL):
        r = propfind(cg, path, "<D:current-user-principal/>")
        t.check(r.status == 207 and b"<D:href>/dav/principals/alice/</D:href>"
                in r.body, "current-user-principal on %s" % path)
    r = propfind(cg, "/dav/principals/alice/",
                 "<C:calendar-home-set/><C:calendar-user-address-set/>"
                 "<D:principal-URL/><D:displayname/>"
                 "<D:principal-collection-set/><D:resourcetype/>")
    b = r.text()
    t.check("<C:calendar-home-set><D:href>/dav/calendars/alice/</D:href>" in
            b, "calendar-home-set")
    t.check("mailto:alice@example.com" in b and
            "mailto:a.smith@example.com" in b, "calendar-user-address-set")
    t.check("<D:principal/>" in b and "404" not in b, "principal props")


def propfind_rules(t, cg):
    r = cg.request("PROPFIND", CAL, headers={"Depth": "infinity"})
    t.check(r.status == 403 and b"propfind-finite-depth" in r.body,
            "Depth: infinity -> 403 propfind-finite-depth")
    r = propfind(cg, CAL, '<D:getetag/><X:nope xmlns:X="urn:x"/><CS:getctag/>'
                 '<C:supported-calendar-component-set/>'
                 '<D:supported-report-set/><D:sync-token/>'
                 '<C:max-resource-size/><D:current-user-privilege-set/>')
    b = r.text()
    t.check(r.status == 207 and re.search(
        r'<X:nope xmlns:X="urn:x"/></D:prop><D:status>HTTP/1.1 404', b),
        "unknown property in a 404 propstat")
    t.check('<C:comp name="VEVENT"/>' in b and "<D:sync-collection/>" in b
            and "<C:calendar-query/>" in b and "<C:calendar-multiget/>" in b
            and "<C:free-busy-query/>" in b and "<D:write/>" in b,
            "calendar collection live properties")
    r = cg.request("PROPFIND", CAL, headers={"Depth": "0"})
    t.check(r.status == 207 and b"<C:calendar/>" in r.body,
            "empty body is allprop")
    r = cg.request("PROPFIND", CAL, headers={"Depth": "0"}, body=(
        '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'))
    t.check(r.status == 207 and b"<CS:getctag/>" in r.body, "propname")


def proppatch(t, cg):
    r = cg.request("PROPPATCH", CAL, body=(
        '<D:propertyupdate %s><D:set><D:prop><D:displayname>Home</D:'
        'displayname><A:calendar-color>#FF0000FF</A:calendar-color>'
        '<A:calendar-order>2</A:calendar-order><C:calendar-description>'
        'Mine &amp; yours</C:calendar-description><X:dead xmlns:X="urn:x">'
        '<X:v>1</X:v></X:dead></D:prop></D:set></D:propertyupdate>' % NS))
    t.check(r.status == 207 and b"200 OK" in r.body and b"403" not in
            r.body, "PROPPATCH of live and dead properties")
    r = propfind(cg, CAL, '<D:displayname/><A:calendar-color/>'
                 '<A:calendar-order/><C:calendar-description/>'
                 '<X:dead xmlns:X="urn:x"/>')
    b = r.text()
    t.check("<D:displayname>Home</D:displayname>" in b and "#FF0000FF" in b
            and "Mine &amp; yours" in b and "<X:v>1</X:v>" in b and
            "404" not in b, "properties read back")
    r = cg.request("PROPPATCH", CAL, body=(
        '<D:propertyupdate %s><D:set><D:prop><D:displayname>Changed'
        '</D:displayname><D:getetag>"x"</D:getetag></D:prop></D:set>'
        '</D:propertyupdate>' % NS))
    t.check(r.status == 207 and b"403 Forbidden" in r.body and
            b"424 Failed Dependency" in r.body, "protected prop: 403 + 424")
    r = propfind(cg, CAL, '<D:displayname/>')
    t.check(b"Home" in r.body, "failed PROPPATCH changed nothing")


def mkcalendar(t, cg):
    r = cg.request("MKCALENDAR", "/dav/calendars/alice/tasks/", body=(
        '<C:mkcalendar %s><D:set><D:prop><D:displayname>Tasks</D:displayname>'
        '<C:supported-calendar-component-set><C:comp name="VTODO"/>'
        '</C:supported-calendar-component-set></D:prop></D:set>'
        '</C:mkcalendar>' % NS))
    t.check(r.status == 201, "MKCALENDAR with properties -> %d" % r.status)
    r = cg.request("PUT", "/dav/calendars/alice/tasks/e.ics",
                   body=EVENT % ("e1", "E"))
    t.check(r.status == 403 and b"supported-calendar-component" in r.body,
            "VEVENT refused in a VTODO calendar")
    r = cg.request("MKCOL", "/dav/calendars/alice/ext/", body=(
        '<D:mkcol %s><D:set><D:prop><D:resourcetype><D:collection/>'
        '<C:calendar/></D:resourcetype><D:displayname>Ext</D:displayname>'
        '</D:prop></D:set></D:mkcol>' % NS))
    t.check(r.status == 201, "extended MKCOL -> %d" % r.status)
    r = propfind(cg, "/dav/calendars/alice/ext/", "<D:resourcetype/>"
                 "<D:displayname/>")
    t.check(b"<C:calendar/>" in r.body and b"Ext" in r.body,
            "extended MKCOL made a calendar")
    r = cg.request("MKCALENDAR", "/dav/calendars/alice/ext/")
    t.check(r.status == 405, "MKCALENDAR over a calendar -> 405")
    r = cg.request("MKCALENDAR", "/dav/calendars/alice/ext/sub/")
    t.check(r.status == 403, "no calendar inside a calendar")


def put_rules(t, cg):
    data = (EVENT % ("rt-1", "Round trip")).replace(
        "SUMMARY", "DESCRIPTION:a\r\n  folded <b>&amp;</b> line\r\nSUMMARY")
    r = cg.request("PUT", CAL + "rt.ics", body=data,
                   headers={"If-None-Match": "*"})
    etag = r.headers.get("ETag")
    t.check(r.status == 201 and etag and etag.startswith('"'),
            "PUT creates, strong ETag %s" % etag)
    r = cg.request("GET", CAL + "rt.ics")
    t.check(r.body == data.encode() and r.headers.get("ETag") == etag and
            "Last-Modified" in r.headers and
            r.headers.get("Content-Type", "").startswith("text/calendar"),
            "GET returns the exact bytes, ETag, Last-Modified")
    r = cg.request("REPORT", CAL, body=(
        '<C:calendar-multiget %s><D:prop><D:getetag/><C:calendar-data/>'
        '</D:prop><D:href>%srt.ics</D:href></C:calendar-multiget>'
        % (NS, CAL)))
    import xml.etree.ElementTree as ET
    cd = ET.fromstring(r.body).find(
        ".//{urn:ietf:params:xml:ns:caldav}calendar-data")
    t.check(cd is not None and cd.text == data, "multiget round trip exact")
    # members named plainly, percent-encoded (resolved the long way) and
    # missing: the same object twice, then a 404, in request order
    r = cg.request("REPORT", CAL, body=(
        '<C:calendar-multiget %s><D:prop><D:getetag/></D:prop>'
        '<D:href>%srt.ics</D:href><D:href>%s%%72t.ics</D:href>'
        '<D:href>%snope.ics</D:href></C:calendar-multiget>'
        % (NS, CAL, CAL, CAL)))
    resp = ET.fromstring(r.body).findall("{DAV:}response")
    got = [(x.findtext("{DAV:}href"), x.findtext(".//{DAV:}getetag"),
            x.findtext("{DAV:}status")) for x in resp]
    t.check(r.status == 207 and len(got) == 3 and
            got[0] == (CAL + "rt.ics", etag, None) and
            got[1] == (CAL + "rt.ics", etag, None) and
            got[2][0] == CAL + "nope.ics" and "404" in (got[2][2] or ""),
            "multiget: plain, encoded and missing hrefs %r" % (got,))
    r = cg.request("PUT", CAL + "rt.ics", body=data,
                   headers={"If-None-Match": "*"})
    t.check(r.status == 412, "If-None-Match: * on existing -> 412")
    r = cg.request("PUT", CAL + "rt.ics", body=data.replace("Round", "R"),
                   headers={"If-Match": '"999999"'})
    t.check(r.status == 412, "If-Match mismatch -> 412")
    r = cg.request("PUT", CAL + "rt.ics", body=data.replace("Round", "R"),
                   headers={"If-Match": etag})
    t.check(r.status == 204 and r.headers.get("ETag") != etag,
            "If-Match hit -> 204, new ETag")
    r = cg.request("GET", CAL + "rt.ics", headers={
        "If-None-Match": r.headers.get("ETag")})
    t.check(r.status == 304, "GET If-None-Match -> 304")
    r = cg.request("PUT", CAL + "other.ics", body=EVENT % ("rt-1", "dup"))
    t.check(r.status == 409 and b"no-uid-conflict" in r.body and
            (CAL + "rt.ics").encode() in r.body,
            "same UID twice -> 409 no-uid-conflict with the href")
    r = cg.request("DELETE", CAL + "rt.ics", headers={"If-Match": '"1"'})
    t.check(r.status == 412, "DELETE If-Match mismatch -> 412")
    r = cg.request("DELETE", CAL + "nope.ics")
    t.check(r.status == 404, "DELETE of nothing -> 404")


def sync(t, cg):
    def report(token):
        return cg.request("REPORT", CAL, body=(
            '<D:sync-collection xmlns:D="DAV:"><D:sync-token>%s'
            '</D:sync-token><D:sync-level>1</D:sync-level><D:prop>'
            '<D:getetag/></D:prop></D:sync-collection>' % token))

    r = report("")
    m = re.search(rb"<D:sync-token>([^<]+)</D:sync-token>", r.body)
    t.check(r.status == 207 and m, "initial sync-collection")
    tok = m.group(1).decode()
    cg.request("PUT", CAL + "s1.ics", body=EVENT % ("s-1", "S"))
    cg.request("DELETE", CAL + "rt.ics")
    r = report(tok)
    b = r.text()
    t.check(r.status == 207 and "s1.ics" in b and
            re.search(r"rt\.ics</D:href><D:status>HTTP/1.1 404", b),
            "incremental sync: new object and a 404 for the deletion")
    m2 = re.search(r"<D:sync-token>([^<]+)</D:sync-token>", b)
    r = report(m2.group(1))
    t.check(r.status == 207 and b"<D:response>" not in r.body,
            "sync with the newest token: nothing")
    other = propfind(cg, "/dav/calendars/alice/ext/", "<D:sync-token/>")
    otok = re.search(rb"<D:sync-token>([^<]+)<", other.body).group(1)
    for bad in (otok.decode(), "garbage", tok[:-1] + "99999999",
                "http://calgate.invalid/sync/x/y"):
        r = report(bad)
        t.check(r.status == 403 and b"valid-sync-token" in r.body,
                "bad sync token %s -> 403 valid-sync-token" % bad[-20:])


def apple_flow(t, cg):
    """The requests Apple Calendar makes at setup (CLIENTS.md), replayed."""
    r = cg.request("PROPFIND", "/.well-known/caldav", headers={"Depth": "0"},
                   body='<D:propfind xmlns:D="DAV:"><D:prop>'
                   '<D:current-user-principal/></D:prop></D:propfind>')
    t.check(r.status in (301, 308), "apple: well-known PROPFIND redirected")
    loc = r.headers.get("Location")
    r = propfind(cg, loc, "<D:current-user-principal/><D:resourcetype/>"
                 "<D:principal-URL/>")
    t.check(r.status == 207 and b"/dav/principals/alice/" in r.body,
            "apple: principal found at the redirect target")
    r = propfind(cg, "/dav/principals/alice/", (
        "<C:calendar-home-set/><C:calendar-user-address-set/>"
        "<C:schedule-inbox-URL/><C:schedule-outbox-URL/>"
        "<D:displayname/><D:principal-URL/><D:supported-report-set/>"
        "<CS:email-address-set/><CS:dropbox-home-URL/>"
        "<CS:notification-URL/><D:current-user-privilege-set/>"
        "<C:calendar-user-type/>"))
    t.check(r.status == 207 and b"calendar-home-set><D:href>" in r.body and
            b"HTTP/1.1 404" in r.body, "apple: principal, unknowns in 404")
    home_props = "".join("<%s/>" % p for p in (
        "D:resourcetype", "D:displayname", "D:owner", "D:sync-token",
        "D:current-user-privilege-set", "D:supported-report-set",
        "D:quota-available-bytes", "D:quota-used-bytes", "D:add-member",
        "D:resource-id", "C:supported-calendar-component-set",
        "C:calendar-description", "C:calendar-timezone",
        "C:max-resource-size", "C:schedule-calendar-transp",
        "C:schedule-default-calendar-URL", "C:calendar-free-busy-set",
        "CS:getctag", "CS:source", "CS:subscribed-strip-alarms",
        "A:calendar-color", "A:calendar-order", "D:getetag",
        "CS:pushkey", "CS:push-transports", "CS:allowed-sharing-modes",
        "C:supported-calendar-data", "C:max-instances",
        "C:max-attendees-per-instance", "CS:invite"))
    r = propfind(cg, "/dav/calendars/alice/", home_props, depth="1")
    t.check(r.status == 207 and b"/dav/calendars/alice/default/" in r.body
            and b"<CS:getctag>" in r.body and b"<D:sync-token>" in r.body,
            "apple: home Depth 1 with ~30 properties")
    r = cg.request("PROPPATCH", CAL, body=(
        '<D:propertyupdate %s><D:set><D:prop><A:calendar-color '
        'symbolic-color="custom">#1BADF8FF</A:calendar-color>'
        '<A:calendar-order>1</A:calendar-order></D:prop></D:set>'
        '</D:propertyupdate>' % NS))
    t.check(r.status == 207 and b"200 OK" in r.body and b"403" not in
            r.body, "apple: PROPPATCH color and order")
    r = propfind(cg, CAL, "<A:calendar-color/><A:calendar-order/>")
    t.check(b"#1BADF8FF" in r.body and b"<A:calendar-order>1<" in r.body,
            "apple: color and order stick")


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        discovery(t, cg)
        propfind_rules(t, cg)
        proppatch(t, cg)
        mkcalendar(t, cg)
        put_rules(t, cg)
        sync(t, cg)
        apple_flow(t, cg)
        t.check(cg.alive(), "server still running")
    t.finish()


if __name__ == "__main__":
    main()
