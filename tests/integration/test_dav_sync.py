#!/usr/bin/python3
"""sync-collection (RFC 6578) beyond the basics test_dav_protocol.py
covers.

On the calendar home, the way Apple Calendar uses it
(../shared/CLIENTS.md: "sync-collection on home and calendars"): the home
lists sync-collection in supported-report-set and has a DAV:sync-token;
the initial report lists every calendar with the requested properties; an
incremental one lists exactly the calendars that changed or are new (a
PUT moves a calendar's getctag, a PROPPATCH its properties), nothing when
nothing changed; after a calendar is deleted the old token gets 403
DAV:valid-sync-token and a fresh initial sync works; tokens of the home
and of a calendar are not interchangeable; bob's home is not alice's.

DAV:limit on a calendar (RFC 6578 3.6, 3.7): at most nresults members,
then a 507 response for the calendar with number-of-matches-within-limits
and a token to go on from; paging through from the empty token gives every
object exactly once, and paging from an old token every change (a removed
object as 404); a bad nresults is a 400."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calgate_test as ct  # noqa: E402

HOME = "/dav/calendars/alice/"
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
         "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"
         "DTSTART:20260210T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n")


def sync(cg, path, token, user="alice"):
    """(status, token, {href: getctag or status}, body)."""
    body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:" '
            'xmlns:CS="http://calendarserver.org/ns/"><D:sync-token>%s'
            '</D:sync-token><D:sync-level>1</D:sync-level><D:prop>'
            '<D:displayname/><D:resourcetype/><CS:getctag/><D:sync-token/>'
            '</D:prop></D:sync-collection>' % token)
    r = cg.request("REPORT", path, user=user, body=body,
                   headers={"Content-Type": "application/xml",
                            "Depth": "0"})
    text = r.body.decode(errors="replace")
    m = re.search(r"<D:sync-token>([^<]*)</D:sync-token>\s*"
                  r"</D:multistatus>", text)
    seen = {}
    for resp in re.findall(r"<D:response>(.*?)</D:response>", text, re.S):
        href = re.search(r"<D:href>([^<]*)</D:href>", resp).group(1)
        ctag = re.search(r"<CS:getctag>([^<]*)</CS:getctag>", resp)
        seen[href] = ctag.group(1) if ctag else "no-ctag"
    return r.status, m.group(1) if m else None, seen, text


def sync_limit(cg, token, n, path=HOME + "default/"):
    """(status, token, [(href, status)], truncated) with DAV:limit n."""
    body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
            '<D:sync-token>%s</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:limit><D:nresults>%s</D:nresults></D:limit><D:prop>'
            '<D:getetag/></D:prop></D:sync-collection>' % (token, n))
    r = cg.request("REPORT", path, body=body,
                   headers={"Content-Type": "application/xml",
                            "Depth": "0"})
    text = r.body.decode(errors="replace")
    m = re.search(r"<D:sync-token>([^<]*)</D:sync-token>", text)
    items, truncated = [], False
    for resp in re.findall(r"<D:response>(.*?)</D:response>", text, re.S):
        href = re.search(r"<D:href>([^<]*)</D:href>", resp).group(1)
        if href == path:
            truncated = ("507" in resp and
                         "number-of-matches-within-limits" in resp)
            continue
        st = re.search(r"HTTP/1.1 (\d+)", resp)
        items.append((href, int(st.group(1)) if st else 0))
    return r.status, m.group(1) if m else None, items, truncated


def limits(t, cg):
    cal = HOME + "default/"
    for i in range(7):
        cg.request("PUT", cal + "l%d.ics" % i, body=EVENT % ("l%d" % i),
                   headers={"Content-Type": "text/calendar"})
    seen, tok, pages = [], "", 0
    while pages < 10:
        st, tok, items, trunc = sync_limit(cg, tok, 3)
        pages += 1
        seen += [h for h, s in items if s == 200]
        if not trunc:
            break
    names = sorted(h.rsplit("/", 1)[1] for h in seen)
    t.check(pages == 3 and st == 207 and
            names == ["l%d.ics" % i for i in range(7)],
            "limit 3: 3 pages, every object once (%d pages, %r)" %
            (pages, names))
    st, tok2, items, trunc = sync_limit(cg, tok, 3)
    t.check(st == 207 and items == [] and not trunc and tok2 == tok,
            "from the last page's token: nothing new")
    cg.request("DELETE", cal + "l1.ics")
    cg.request("PUT", cal + "l2.ics", body=EVENT % "l2",
               headers={"Content-Type": "text/calendar", "X-A": "b"})
    cg.request("PUT", cal + "l2.ics", body=(EVENT % "l2").replace(
        "SUMMARY:x", "SUMMARY:y"), headers={"Content-Type": "text/calendar"})
    cg.request("PUT", cal + "l9.ics", body=EVENT % "l9",
               headers={"Content-Type": "text/calendar"})
    st, tok3, items, trunc = sync_limit(cg, tok, 1)
    st2, tok4, items2, trunc2 = sync_limit(cg, tok3, 5)
    got = sorted((h.rsplit("/", 1)[1], s) for h, s in items + items2)
    t.check(trunc and not trunc2 and got == [("l1.ics", 404),
                                             ("l2.ics", 200),
                                             ("l9.ics", 200)],
            "changes paged 1 then the rest: removal 404, change, new "
            "(%r)" % got)
    codes = [sync_limit(cg, "", n)[0] for n in ("0", "-2", "x", "")]
    t.check(codes == [400] * 4, "bad nresults: 400 (%r)" % codes)


def main():
    t = ct.Results()
    with ct.Calgate() as cg:
        # what Apple reads first
        r = cg.request("PROPFIND", HOME, body=(
            '<D:propfind xmlns:D="DAV:"><D:prop><D:supported-report-set/>'
            '<D:sync-token/></D:prop></D:propfind>'),
            headers={"Depth": "0"})
        body = r.body.decode()
        t.check(r.status == 207 and "<D:sync-collection/>" in body and
                "/sync/home/" in body,
                "home: supported-report-set lists sync-collection, "
                "sync-token given (%d)" % r.status)
        cg.request("MKCALENDAR", HOME + "work/")

        st, tok0, seen, text = sync(cg, HOME, "")
        t.check(st == 207 and tok0 and set(seen) ==
                {HOME + "default/", HOME + "work/"} and
                all(v != "no-ctag" for v in seen.values()),
                "initial: both calendars with their properties (%d %r)" %
                (st, seen))
        st, tok1, seen, _ = sync(cg, HOME, tok0)
        t.check(st == 207 and seen == {} and tok1 == tok0,
                "nothing changed: nothing reported (%d %r)" % (st, seen))

        cg.request("PUT", HOME + "work/e1.ics", body=EVENT % "e1",
                   headers={"Content-Type": "text/calendar"})
        st, tok2, seen, _ = sync(cg, HOME, tok1)
        t.check(st == 207 and list(seen) == [HOME + "work/"] and
                tok2 != tok1,
                "a PUT: exactly that calendar, new token (%r)" % seen)
        cg.request("PROPPATCH", HOME + "default/", body=(
            '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            '<D:displayname>Home</D:displayname></D:prop></D:set>'
            '</D:propertyupdate>'))
        cg.request("MKCALENDAR", HOME + "new/")
        st, tok3, seen, text = sync(cg, HOME, tok2)
        t.check(st == 207 and set(seen) == {HOME + "default/", HOME + "new/"}
                and "<D:displayname>Home</D:displayname>" in text,
                "a PROPPATCH and a new calendar: those two (%r)" % seen)

        cg.request("DELETE", HOME + "new/")
        st, _, _, text = sync(cg, HOME, tok3)
        t.check(st == 403 and "valid-sync-token" in text,
                "a calendar deleted: the old token is refused (%d)" % st)
        st, tok4, seen, _ = sync(cg, HOME, "")
        t.check(st == 207 and set(seen) ==
                {HOME + "default/", HOME + "work/"},
                "then an initial sync lists what is there (%r)" % seen)

        # tokens are not interchangeable, garbage is refused
        st_c, ctok, _, _ = sync(cg, HOME + "work/", "")
        bad = [(HOME, ctok), (HOME + "work/", tok4),
               (HOME, "http://calgate.invalid/sync/home/1/2/zz"),
               (HOME, "http://example.com/other/1")]
        codes = [sync(cg, p, tk)[0] for p, tk in bad]
        t.check(st_c == 207 and codes == [403] * 4,
                "foreign and garbage tokens: 403 (%r)" % codes)
        st, _, seen, _ = sync(cg, "/dav/calendars/bob/", "", user="alice")
        t.check(st in (403, 404) and not seen,
                "alice cannot sync bob's home (%d)" % st)
        st, _, seen, _ = sync(cg, "/dav/calendars/bob/", "", user="bob")
        t.check(st == 207 and all(h.startswith("/dav/calendars/bob/")
                                  for h in seen),
                "bob's home sync lists only bob's calendars (%r)" % seen)
        limits(t, cg)
        t.check(cg.alive(), "server still running")
    t.finish()


if __name__ == "__main__":
    main()
