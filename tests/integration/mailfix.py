"""
tests/integration/mailfix.py: shared fixtures for the tests that need real
signed mail: DKIM keys, Google-style invitations signed with dkimpy, and a
real unbound serving test zones on a loopback port. Used by test_gate.py
and the end-to-end tests. Debian's /usr/bin/python3 only.
"""
import base64
import os
import socket
import subprocess
import time

import dkim
import dkim.util
import dns.exception
import dns.rdatatype
import dns.resolver
import nacl.encoding
import nacl.signing

NOW = int(time.time())
PROCS = []          # servers started here; the caller stops them (stop_all)


def stop_all():
    """Terminates every server this module started (bounded)."""
    for proc in PROCS:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    del PROCS[:]


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------- keys

def rsa_key(tmp, bits):
    path = os.path.join(tmp, "rsa%d.pem" % bits)
    subprocess.run(["openssl", "genrsa", "-out", path, str(bits)],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    with open(path, "rb") as f:
        return f.read(), base64.b64encode(der).decode()


def ed_key():
    sk = nacl.signing.SigningKey.generate()
    return (sk.encode(encoder=nacl.encoding.Base64Encoder),
            base64.b64encode(sk.verify_key.encode()).decode())


# ---------------------------------------------------------------- messages

CAL = """BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:{method}
BEGIN:VEVENT
DTSTART:20270115T100000Z
DTEND:20270115T110000Z
DTSTAMP:20261201T090000Z
ORGANIZER;CN=Bob:mailto:{organizer}
UID:{uid}
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};CN=Alice:
 mailto:{attendee}
SEQUENCE:0
SUMMARY:Planning meeting
END:VEVENT
END:VCALENDAR
"""


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def calendar(frm, organizer=None, method="REQUEST", attendee=None,
             uid="evt-1@example"):
    return CAL.format(method=method, organizer=organizer or frm, uid=uid,
                      attendee=attendee or "alice@calgate.test",
                      partstat="ACCEPTED" if method == "REPLY"
                      else "NEEDS-ACTION")


def invite(frm, organizer=None, method="REQUEST", attendee=None,
           extra="", cal=None, two_from=False, uid="evt-1@example"):
    """A Google-style invitation: multipart/mixed with an alternative
    (text/plain, text/calendar base64) and an application/ics copy."""
    cal = cal if cal is not None else calendar(frm, organizer, method,
                                               attendee, uid)
    b64 = base64.encodebytes(crlf(cal)).decode()
    froms = "From: Bob <%s>\n" % frm
    if two_from:
        froms += "From: Eve <eve@evil.example>\n"
    return crlf(
        froms +
        "To: alice@calgate.test\n"
        "Subject: Invitation: Planning meeting @ Fri Jan 15, 2027\n"
        "Date: Tue, 01 Dec 2026 09:00:00 +0000\n"
        "Message-ID: <m-%d@%s>\n" % (abs(hash(frm + cal)) % 10**9,
                                      frm.split("@")[-1]) +
        extra +
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"MIX\"\n"
        "\n"
        "--MIX\n"
        "Content-Type: multipart/alternative; boundary=\"ALT\"\n"
        "\n"
        "--ALT\n"
        "Content-Type: text/plain; charset=\"UTF-8\"\n"
        "\n"
        "You have been invited to Planning meeting.\n"
        "--ALT\n"
        "Content-Type: text/calendar; charset=\"UTF-8\"; method=%s\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" % method + b64 +
        "--ALT--\n"
        "\n"
        "--MIX\n"
        "Content-Type: application/ics; name=\"invite.ics\"\n"
        "Content-Disposition: attachment; filename=\"invite.ics\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n" + b64 +
        "--MIX--\n")


def plain(frm):
    return crlf("From: Bob <%s>\nTo: alice@calgate.test\nSubject: hi\n"
                "Date: Tue, 01 Dec 2026 09:00:00 +0000\n"
                "Message-ID: <p@x>\n\nJust text.\n" % frm)


HDRS = [b"from", b"to", b"subject", b"date", b"message-id",
        b"content-type", b"mime-version"]


def sign(msg, sel, dom, key, alg=b"rsa-sha256",
         canon=(b"relaxed", b"relaxed"), length=False):
    sig = dkim.sign(msg, sel.encode(), dom.encode(), key,
                    signature_algorithm=alg, canonicalize=canon,
                    include_headers=HDRS, length=length)
    return sig + msg


def tg_oversign(msg, sel, dom, key):
    """h= names From twice: a From added later breaks the signature."""
    sig = dkim.sign(msg, sel.encode(), dom.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=HDRS + [b"from"])
    return sig + msg


def sign_expired(msg, sel, dom, key):
    """dkim.sign() has no x=; build the same signature with x= in the past
    from dkimpy's own pieces."""
    d = dkim.DKIM(msg)
    canon = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    d.signature_algorithm = b"rsa-sha256"
    d.include_headers = tuple(HDRS)
    d.hasher = dkim.HASH_ALGORITHMS[b"rsa-sha256"]
    pk = dkim.parse_pem_private_key(key)
    h = dkim.HASH_ALGORITHMS[b"rsa-sha256"]()
    h.update(canon.canonicalize_body(d.body))
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"),
              (b"d", dom.encode()), (b"s", sel.encode()),
              # dkimpy allows 10 hours of clock skew; be well past it
              (b"t", str(NOW - 3 * 86400).encode()),
              (b"x", str(NOW - 2 * 86400).encode()),
              (b"h", b" : ".join(HDRS)),
              (b"bh", base64.b64encode(h.digest())), (b"b", b"0" * 60)]
    return b"DKIM-Signature: " + d.gen_header(fields, tuple(HDRS), canon,
                                              b"DKIM-Signature", pk) + msg


def refold(msg):
    """Re-fold the Subject below the signatures (a relaxed-safe change)."""
    return msg.replace(b"Subject: Invitation: Planning meeting",
                       b"Subject: Invitation:\r\n   Planning   meeting", 1)


def l_appended(frm, sel, dom, key):
    """Signed with l= over a text-only multipart; then a calendar part is
    slipped in after the signed length."""
    head = crlf("From: Bob <%s>\nTo: alice@calgate.test\nSubject: notes\n"
                "Date: Tue, 01 Dec 2026 09:00:00 +0000\n"
                "Message-ID: <l@x>\nMIME-Version: 1.0\n"
                "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
                "--B\nContent-Type: text/plain\n\nhello\n" % frm)
    signed = sign(head, sel, dom, key, length=True)
    tail = crlf("--B\nContent-Type: text/calendar; method=REQUEST\n\n" +
                calendar(frm) + "--B--\n")
    return signed + tail


# ---------------------------------------------------------------- DNS

def txt(name, value):
    # Split into 200-byte strings: exercises the joining of TXT strings.
    parts = [value[i:i + 200] for i in range(0, len(value), 200)] or [""]
    return "local-data: '%s. 300 IN TXT %s'" % (
        name, " ".join('"%s"' % p for p in parts))


def start_unbound(tmp, zones, records, stub_zones, port=None, attempts=5):
    """unbound serving zones (records; stub_zones SERVFAIL) on port (a
    free one if None): (proc, port). Tried again, up to attempts times,
    when the port (free for UDP) was taken for TCP or is still held by the
    unbound before it."""
    for attempt in range(attempts):
        try:
            return _start_unbound(tmp, zones, records, stub_zones, port)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.3)
            PROCS[:] = [p for p in PROCS if p.poll() is None]


def stop_unbound(proc):
    """Stops one unbound started here (to start another on its port)."""
    proc.terminate()
    proc.wait(5)
    PROCS.remove(proc)


def _start_unbound(tmp, zones, records, stub_zones, port):
    port = port or free_port()
    dead = free_port()
    conf = os.path.join(tmp, "unbound.conf")
    lines = ["server:",
             "  interface: 127.0.0.1@%d" % port,
             "  do-daemonize: no", "  chroot: \"\"", "  username: \"\"",
             "  directory: \"%s\"" % tmp, "  pidfile: \"\"",
             "  use-syslog: no",
             "  logfile: \"%s\"" % os.path.join(tmp, "unbound.log"),
             "  verbosity: 0", "  do-ip6: no", "  do-tcp: yes",
             "  access-control: 127.0.0.0/8 allow",
             "  module-config: \"iterator\"",
             "  do-not-query-localhost: no",
             "  harden-referral-path: no",
             "  local-zone: \".\" refuse"]
    for z in zones:
        lines.append("  local-zone: \"%s.\" static" % z)
    for z in stub_zones:
        lines.append("  local-zone: \"%s.\" transparent" % z)
    lines += ["  " + r for r in records]
    for z in stub_zones:
        lines += ["stub-zone:", "  name: \"%s.\"" % z,
                  "  stub-addr: 127.0.0.1@%d" % dead]
    lines += ["remote-control:", "  control-enable: no"]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    proc = subprocess.Popen(["/usr/sbin/unbound", "-d", "-c", conf],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    PROCS.append(proc)
    res = resolver(port)
    for _ in range(100):            # up to 10 s
        if proc.poll() is not None:
            raise RuntimeError("unbound exited: %s" %
                               proc.stderr.read().decode())
        try:
            res.resolve("_dmarc.aligned.example", "TXT")
            return proc, port
        except dns.exception.DNSException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("unbound did not answer on port %d" % port)


def resolver(port):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = port
    r.lifetime = 2.0
    r.timeout = 2.0
    return r


def dkimpy_dnsfunc(port):
    r = resolver(port)

    def get(name, timeout=5):
        try:
            ans = r.resolve(name.decode().rstrip("."), "TXT")
        except dns.exception.DNSException:
            return None
        for rr in ans:
            return b"".join(rr.strings)
        return None
    return get


