#!/bin/sh
# tests/integration/test_imap_poller.sh: the IMAP pollers (imap-poller/)
# against a real Dovecot on loopback, driven by build/tools/poll_driver,
# whose hook records (user, uid, sha256 of the raw message) and writes one
# imip_log row per call; the driver runs under ASan+UBSan. Checks: IDLE
# delivery within 5 s, calendar parts at any depth, non-calendar mail never
# offered nor fetched (Dovecot's rawlog), imaps with imap_ca_file, STARTTLS,
# certificate refused without the CA, DNS failure, wrong password (no tight
# loop), polling without IDLE, the imap_flag keyword, defer and retry
# verdicts, reload, restart resume, kill -9 mid-run, Dovecot restart,
# UIDVALIDITY change, SIGTERM within 5 s, no password in logs.
# KEEP=1 keeps the temporary files (driver.log, data/, dovecot/rawlog/).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/dovecot.sh
. tests/integration/lib.sh

# The driver runs under ASan+UBSan (its reports fail the test); set
# POLL_DRIVER to run another build, e.g. build/tools/poll_driver.
DRIVER=${POLL_DRIVER:-$PWD/build-san/tools/poll_driver}
if [ -z "${POLL_DRIVER:-}" ] && ! make --no-print-directory -s SANITIZE=1 \
    build-san/tools/poll_driver >/dev/null 2>&1; then
	echo "cannot build build-san/tools/poll_driver"
	echo "0 passed, 1 failed"
	exit 1
fi
T=$(mktemp -d /tmp/cg-imap.XXXXXX)
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then	# KEEP=1: leave the files to look at
		dovecot_stop
		echo "kept $T"
	else
		dovecot_cleanup
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- helpers -----------------------------------------------------------

driver_start() {
	POLL_DRIVER_DEFER_S=2 "$DRIVER" -c "$T/calgate.conf" -o "$T/record" \
	    -v "$T/verdict" >>"$T/driver.log" 2>&1 &
	DPID=$!
}
driver_term() {		# sets TERM_MS: how long SIGTERM took to stop it
	_t0=$(date +%s%N)
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=
	TERM_MS=$((($(date +%s%N) - _t0) / 1000000))
}
db() {
	sqlite3 -cmd ".timeout 5000" "$T/data/calgate.db" "$1" 2>/dev/null
}
wait_for() {		# SECONDS COMMAND...: polls every 0.1 s
	_lim=$(($1 * 10))
	shift
	_i=0
	while [ $_i -lt $_lim ]; do
		"$@" && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
state() {
	db "SELECT a.state FROM accounts a JOIN users u ON u.id = a.user_id
	    WHERE u.name = '$1'"
}
state_is() { [ "$(state "$1")" = "$2" ]; }
recorded() {		# hook calls that returned done/defer for USER
	_c=$(grep -c "^$1 " "$T/record" 2>/dev/null)
	echo "${_c:-0}"
}
recorded_ge() { [ "$(recorded "$1")" -ge "$2" ]; }
logged() {		# imip_log rows of USER
	db "SELECT count(*) FROM imip_log l JOIN users u ON u.id = l.user_id
	    WHERE u.name = '$1'"
}
logged_ge() { [ "$(logged "$1")" -ge "$2" ]; }
no_duplicates() {	# one imip_log row per message of USER
	[ "$(db "SELECT count(*) - count(DISTINCT message_id || cal_hash)
	    FROM imip_log l JOIN users u ON u.id = l.user_id
	    WHERE u.name = '$1'")" = 0 ]
}
last_uid() {
	db "SELECT a.last_uid FROM accounts a JOIN users u ON
	    u.id = a.user_id WHERE u.name = '$1'"
}

N=0
msg() {			# SHAPE: writes a fresh message to $MSG
	N=$((N + 1))
	_f=$T/msg$N.eml
	_cal="BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//calgate test//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:event$N-$$@example.org
DTSTAMP:20261201T100000Z
DTSTART:20261210T100000Z
DTEND:20261210T110000Z
SUMMARY:CALMARKER$N
ORGANIZER:mailto:bob@example.org
ATTENDEE:mailto:alice@example.com
END:VEVENT
END:VCALENDAR"
	{
		echo "From: Bob <bob@example.org>"
		echo "To: alice@example.com"
		echo "Subject: test message $N"
		echo "Message-ID: <m$N.$$@example.org>"
		echo "Date: Tue, 01 Dec 2026 10:00:00 +0000"
		echo "MIME-Version: 1.0"
		case $1 in
		plain)
			echo "Content-Type: text/plain"
			echo
			echo "PLAINMARKER$N: nothing for a calendar here."
			;;
		single)
			echo "Content-Type: text/calendar; method=REQUEST"
			echo
			echo "$_cal"
			;;
		mixed)
			echo "Content-Type: multipart/mixed; boundary=b$N"
			echo
			echo "--b$N"
			echo "Content-Type: text/plain"
			echo
			echo "An invitation."
			echo "--b$N"
			echo "Content-Type: text/calendar; method=REQUEST"
			echo
			echo "$_cal"
			echo "--b$N--"
			;;
		nested)
			echo "Content-Type: multipart/mixed; boundary=o$N"
			echo
			echo "--o$N"
			echo "Content-Type: multipart/alternative; boundary=i$N"
			echo
			echo "--i$N"
			echo "Content-Type: text/plain"
			echo
			echo "An invitation."
			echo "--i$N"
			echo "Content-Type: text/calendar; method=REQUEST"
			echo
			echo "$_cal"
			echo "--i$N--"
			echo "--o$N"
			echo "Content-Type: application/ics; name=invite.ics"
			echo "Content-Transfer-Encoding: base64"
			echo
			echo "$_cal" | base64
			echo "--o$N--"
			;;
		forwarded)
			echo "Content-Type: multipart/mixed; boundary=b$N"
			echo
			echo "--b$N"
			echo "Content-Type: text/plain"
			echo
			echo "Forwarded invitation."
			echo "--b$N"
			echo "Content-Type: message/rfc822"
			echo
			echo "From: Carl <carl@example.net>"
			echo "Subject: inner"
			echo "Content-Type: text/calendar; method=REQUEST"
			echo
			echo "$_cal"
			echo "--b$N--"
			;;
		ics)
			echo "Content-Type: multipart/mixed; boundary=b$N"
			echo
			echo "--b$N"
			echo "Content-Type: text/plain"
			echo
			echo "See the attachment."
			echo "--b$N"
			echo "Content-Type: application/ics; name=invite.ics"
			echo "Content-Transfer-Encoding: base64"
			echo
			echo "$_cal" | base64
			echo "--b$N--"
			;;
		esac
	} >"$_f"
	MSG=$_f
}

# ---- set up ------------------------------------------------------------

if ! dovecot_start "$T/dovecot"; then
	cat "$T/dovecot/dovecot.log" 2>/dev/null
	echo "0 passed, 1 failed"
	exit 1
fi
PW=s3cret-imap-pw-$$
for u in alice carol dave erin frank gina hank; do
	dovecot_user "$u" "$PW"
	printf '%s\n' "$PW" >"$T/$u.pw"
	chmod 600 "$T/$u.pw"
done
printf 'not-the-password\n' >"$T/erin.pw"
HASH='$y$j9T$ADPlzq1mY4jM2BDiMWFZ./$27qbwzaph0ua2lw9H7xRgmmuc5pVWD8V37pCRBN0e5/'
user() {		# NAME URL [extra lines]
	printf '\n[user %s]\npassword = %s\nimap = %s\nimap_password_file = %s\n' \
	    "$1" "$HASH" "$2" "$T/$1.pw"
	shift 2
	for l in "$@"; do echo "$l"; done
}
{
	printf '[server]\ndata_dir = %s\nlog_level = info\n' "$T/data"
	user alice "imap://alice@127.0.0.1:$DOVECOT_PORT/INBOX" \
	    "imap_tls = none"
	user carol "imaps://carol@127.0.0.1:$DOVECOT_TLS_PORT/INBOX" \
	    "imap_ca_file = $DOVECOT_CA"
	user dave "imaps://dave@127.0.0.1:$DOVECOT_TLS_PORT/INBOX"
	user erin "imap://erin@127.0.0.1:$DOVECOT_PORT/INBOX" \
	    "imap_tls = none"
	user frank "imap://frank@localhost:$DOVECOT_PORT/INBOX" \
	    "imap_ca_file = $DOVECOT_CA"
	user hank "imaps://hank@imap.calgate-test.invalid/INBOX"
	# 127.0.0.2: Dovecot hides IDLE there (see dovecot.sh)
	user gina "imap://gina@127.0.0.2:$DOVECOT_PORT/INBOX" \
	    "imap_tls = none" "poll_interval = 1" \
	    'imap_flag = $CalendarProcessed'
} >"$T/calgate.conf"
echo done >"$T/verdict"

# ---- 1: first run --------------------------------------------------------

driver_start
check "alice (imap_tls = none) reaches idle" wait_for 5 state_is alice idle
check "carol (imaps + imap_ca_file) reaches idle" \
    wait_for 5 state_is carol idle
check "frank (STARTTLS + imap_ca_file, host name checked) reaches idle" \
    wait_for 5 state_is frank idle
check "dave (imaps, CA not trusted) is refused: tls-error" \
    wait_for 5 state_is dave tls-error
check "dave's detail says why" eval 'db "SELECT detail FROM accounts WHERE
    user_id = (SELECT id FROM users WHERE name = '"'dave'"')" |
    grep -q "not trusted"'
check "erin (wrong password) is auth-failed" \
    wait_for 8 state_is erin auth-failed
T_AUTH=$(date +%s)
check "hank (DNS lookup fails) backs off" wait_for 10 eval 'state_is hank \
    backoff && db "SELECT detail FROM accounts WHERE user_id = (SELECT id
    FROM users WHERE name = '"'hank'"')" | grep -q "cannot resolve"'

t0=$(date +%s%N)
msg mixed
dovecot_save alice "$MSG"
if wait_for 5 recorded_ge alice 1; then
	pass "calendar message reaches the hook within 5 s with IDLE" \
	    "($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	fail "calendar message reaches the hook within 5 s with IDLE"
fi
msg plain
PLAIN=$MSG
dovecot_save alice "$PLAIN"
msg nested
dovecot_save alice "$MSG"
msg single
dovecot_save alice "$MSG"
msg ics
dovecot_save alice "$MSG"
msg forwarded
dovecot_save alice "$MSG"
check "nested, single-part, application/ics and message/rfc822 messages \
reach the hook" wait_for 5 recorded_ge alice 5
sleep 1
check "the plain message is never offered" [ "$(recorded alice)" = 5 ]
check "imip_log rows carry Message-ID and cal_hash" [ "$(db "SELECT count(*)
    FROM imip_log WHERE message_id LIKE '<m%' AND length(cal_hash) = 64")" \
    = 5 ]
check "each calendar part hashed on its own" [ "$(db "SELECT
    count(DISTINCT cal_hash) FROM imip_log")" = 5 ]
check "last_uid covers the plain message too" [ "$(last_uid alice)" = 6 ]

msg mixed
dovecot_save carol "$MSG"
msg single
dovecot_save frank "$MSG"
check "carol's message arrives over imaps" wait_for 5 recorded_ge carol 1
check "frank's message arrives over STARTTLS" wait_for 5 recorded_ge frank 1

# polling (no IDLE) and the keyword flag
check "gina (server without IDLE) is polling" wait_for 5 state_is gina polling
msg plain
dovecot_save gina "$MSG"
msg ics
dovecot_save gina "$MSG"
check "polling: the calendar message arrives within 3 s" \
    wait_for 3 recorded_ge gina 1
flags() {
	doveadm -c "$DOVECOT_CONF" fetch -u gina "uid flags" mailbox INBOX \
	    2>/dev/null | tr '\n' ' '
}
check "imap_flag: the calendar message gets the keyword, the plain one not" \
    wait_for 3 eval 'flags | grep -q "uid: 2 flags: [^u]*CalendarProcessed" \
    && ! flags | grep -q "uid: 1 flags: [^u]*CalendarProcessed"'
check "imap_flag: SELECT and UID STORE, no \\Seen" eval 'grep -rqE \
    "^[0-9.]+ [0-9]+ SELECT INBOX" "$DOVECOT_RAWLOG/gina" &&
    ! flags | grep -q Seen'

# defer: the hook records a deferral, then gets it again with its row id
echo defer >"$T/verdict"
msg mixed
dovecot_save alice "$MSG"
check "a deferred message is recorded as defer" \
    wait_for 5 eval '[ "$(db "SELECT count(*) FROM imip_log WHERE
    decision = '"'defer'"'")" = 1 ]'
echo done >"$T/verdict"
check "the deferred message is offered again when due, with its row id" \
    wait_for 8 eval 'grep -q "^alice .* [1-9][0-9]*\$" "$T/record" 2>/dev/null'
check "the retried row is now decided, attempts = 1" [ "$(db "SELECT
    decision || attempts FROM imip_log WHERE reason = 'driver' AND
    attempts > 0")" = accept1 ]
check "the retry reused its row" [ "$(logged alice)" = 6 ]

# a hook that leaves next_retry in the past does not make the poller spin
echo "defer -10" >"$T/verdict"
msg mixed
dovecot_save carol "$MSG"
wait_for 5 recorded_ge carol 2
sleep 3
echo done >"$T/verdict"
check "deferred with next_retry in the past: no retry loop" \
    [ "$(recorded carol)" -le 3 ]

# retry: the hook cannot record; nothing advances until it can
echo retry >"$T/verdict"
LAST=$(last_uid alice)
msg single
dovecot_save alice "$MSG"
check "hook RETRY: the account backs off" wait_for 5 state_is alice backoff
check "hook RETRY: last_uid does not move" [ "$(last_uid alice)" = "$LAST" ]
echo done >"$T/verdict"
check "after RETRY the message is decided once" wait_for 10 eval \
    '[ "$(logged alice)" = 7 ] && state_is alice idle'

# a wrong password is not retried in a tight loop
now=$(date +%s)
[ $((T_AUTH + 20 - now)) -gt 0 ] && sleep $((T_AUTH + 20 - now))
fails=$(dovecot_logins_failed erin)
check "wrong password: $fails failed logins in 20 s (at most 2)" \
    [ "$fails" -ge 1 ] && [ "$fails" -le 2 ]
check "erin is still auth-failed with a next try" [ "$(db "SELECT
    state || (next_try > strftime('%s','now') + 600) FROM accounts
    WHERE user_id = (SELECT id FROM users WHERE name = 'erin')")" \
    = auth-failed1 ]
check "one log line for dave's repeated TLS failures" \
    [ "$(grep -c 'account=dave state=tls-error' "$T/driver.log")" = 1 ]

# reload: erin's password fixed; only erin restarts
printf '%s\n' "$PW" >"$T/erin.pw"
kill -HUP "$DPID"
check "reload: erin restarts with the new password and reaches idle" \
    wait_for 5 state_is erin idle
check "reload: unchanged accounts keep running" [ "$(grep -c \
    'account=alice state=connecting' "$T/driver.log")" = 1 ]

driver_term
check "SIGTERM stops every poller within 5 s ($TERM_MS ms)" \
    [ "$TERM_MS" -lt 5000 ]
check "accounts say stopped" state_is alice stopped

# ---- 2: restart resumes from last_uid --------------------------------------

msg mixed
dovecot_save alice "$MSG"
R=$(recorded alice)
driver_start
check "restart: the message that came while stopped arrives" \
    wait_for 5 recorded_ge alice $((R + 1))
sleep 1
check "restart: nothing is offered twice" [ "$(recorded alice)" = $((R + 1)) ]
check "restart: one imip_log row per message" no_duplicates alice

# ---- 3: kill -9 mid-run ------------------------------------------------------

L=$(logged alice)
R=$(recorded alice)
i=0
while [ $i -lt 30 ]; do
	msg nested
	cp "$MSG" "$T/burst$i.eml"
	i=$((i + 1))
done
(
	i=0
	while [ $i -lt 30 ]; do
		dovecot_save alice "$T/burst$i.eml"
		i=$((i + 1))
	done
) &
SAVER=$!
wait_for 10 recorded_ge alice $((R + 5))
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
DPID=
wait "$SAVER"
driver_start
check "kill -9 mid-run: all 30 messages decided after restart" \
    wait_for 20 logged_ge alice $((L + 30))
sleep 1
check "kill -9 mid-run: exactly once each" eval '[ "$(logged alice)" = \
    $((L + 30)) ] && no_duplicates alice'

# ---- 4: Dovecot stopped and restarted mid-run -------------------------------

wait_for 5 state_is alice idle
L=$(logged alice)
dovecot_stop
check "Dovecot down: alice backs off" wait_for 5 state_is alice backoff
msg mixed
dovecot_drop alice "$MSG"
sleep 2
dovecot_restart
check "Dovecot back: reconnects and catches up" wait_for 15 eval \
    '[ "$(logged alice)" = $((L + 1)) ] && state_is alice idle'
check "one log line per state change, not per retry" \
    [ "$(grep -c 'account=alice state=backoff' "$T/driver.log")" -le 4 ]

# ---- 5: UIDVALIDITY change: mailbox recreated with the same messages --------

driver_term
UV=$(db "SELECT uidvalidity FROM accounts WHERE user_id =
    (SELECT id FROM users WHERE name = 'alice')")
L=$(logged alice)
R=$(recorded alice)
dovecot_stop
rm -f "$(dovecot_maildir alice)"/dovecot*
sleep 1
dovecot_restart
msg single
dovecot_save alice "$MSG"
driver_start
check "UIDVALIDITY change: the new message arrives" \
    wait_for 10 logged_ge alice $((L + 1))
sleep 1
check "UIDVALIDITY change: the new UIDVALIDITY is stored" [ "$(db "SELECT
    uidvalidity FROM accounts WHERE user_id = (SELECT id FROM users WHERE
    name = 'alice')")" != "$UV" ]
check "UIDVALIDITY change: nothing offered twice" eval '[ "$(logged alice)" \
    = $((L + 1)) ] && [ "$(recorded alice)" = $((R + 1)) ] &&
    no_duplicates alice'
check "UIDVALIDITY change is logged" grep -q "uidvalidity-changed" \
    "$T/driver.log"

# ---- 6: what Dovecot sent, what we logged ------------------------------------

driver_term
check "SIGTERM again within 5 s ($TERM_MS ms)" [ "$TERM_MS" -lt 5000 ]
check "rawlog: calendar messages were fetched" \
    grep -q CALMARKER -r "$DOVECOT_RAWLOG/alice"
check "rawlog: the plain message was never downloaded" \
    eval '! grep -rq PLAINMARKER "$DOVECOT_RAWLOG/alice"'
check "rawlog: the mailbox was only EXAMINEd" \
    eval '! grep -rqE "^[0-9.]+ [0-9]+ (SELECT|STORE|UID STORE)" \
    "$DOVECOT_RAWLOG/alice"'
check "no password in the driver's log" eval '! grep -q "$PW" "$T/driver.log"'
check "no sanitizer report in the driver's log" \
    eval '! grep -qE "Sanitizer|runtime error" "$T/driver.log"'
check "no password in the store" eval '! grep -aq "$PW" "$T/data/calgate.db"'

finish
