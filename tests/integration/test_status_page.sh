#!/bin/sh
# The status page in a real browser: Debian's headless chromium driven by
# playwright-core (tests/browser/). Starts calgate on a free loopback port,
# seeds the store with sqlite3 once calgate has made the schema, then runs
# tests/browser/status_page.mjs. Saves tests/artifacts/status.png.
#   RECHECK_EXPECT=accepted  once `serve` wires the recheck hook
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${CALGATE:-./calgate}
T=$(mktemp -d /tmp/calgate-page-XXXXXX)
PID=
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit $?
}
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ -x /usr/bin/chromium ] || { bad "no /usr/bin/chromium (apt-get install chromium)"; finish; }
command -v node >/dev/null || { bad "no node"; finish; }
if [ ! -d tests/browser/node_modules/playwright-core ]; then
	(cd tests/browser && timeout 120 npm ci --no-audit --no-fund --loglevel=error) \
		|| { bad "npm ci for playwright-core failed"; finish; }
fi

PASS='page pw 9'
HASH=$(printf '%s\n' "$PASS" | $BIN passwd)
printf 'imap-secret-page\n' > "$T/alice.imap"
chmod 600 "$T/alice.imap"
cat > "$T/calgate.conf" <<CONF
[server]
listen = 127.0.0.1:0
data_dir = data
[user alice]
password = $HASH
addresses = alice@example.com
imap = imap://alice@127.0.0.1:1/INBOX
imap_tls = none
imap_password_file = alice.imap
[user root]
password = $HASH
addresses = root@example.com
admin = yes
CONF

$BIN serve -c "$T/calgate.conf" 2>"$T/log" &
PID=$!
PORT=
for _ in $(seq 1 100); do
	PORT=$(sed -n 's/.*server start .*listen=[^ ]*:\([0-9]*\) .*/\1/p' "$T/log")
	[ -n "$PORT" ] && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.05
done
[ -n "$PORT" ] || { bad "calgate did not start"; cat "$T/log"; finish; }
ok

NOW=$(date +%s)
XSS='<img src=x onerror="window.__xss=1">'
DETAIL='{"decision": "skip", "reason": "dmarc-none", "hint": "policy.require=dkim with dkim_signers=google-workspace would accept", "from": "maria@partner-firm.fi", "from_domain": "partner-firm.fi", "dkim": [{"domain": "google.com", "selector": "20230601", "result": "pass", "aligned": false}, {"domain": "partner-firm-fi.20230601.gappssmtp.com", "selector": "20230601", "result": "pass", "aligned": false}], "spf": null, "dmarc": {"result": "none", "policy": null}, "itip": {"method": "REQUEST", "uid": "q4@google.com", "organizer": "mailto:maria@partner-firm.fi"}}'
ACC_DETAIL='{"decision": "accept", "reason": "dmarc-pass", "hint": "", "from": "tom@bigcorp.example", "from_domain": "bigcorp.example", "dkim": [{"domain": "bigcorp.example", "selector": "s1", "result": "pass", "aligned": true}], "spf": null, "dmarc": {"result": "pass", "policy": "reject"}, "itip": null}'
U="(SELECT id FROM users WHERE name = 'alice')"
GOOGLE_ID=$(sqlite3 -cmd '.timeout 5000' "$T/data/calgate.db" <<SQL
INSERT INTO imip_log (user_id, ts, from_addr, subject, method, ical_uid, summary, dtstart, decision, reason, hint, detail, attempts)
  VALUES ($U, $NOW - 86400 * 3, 'tom@bigcorp.example', 'Invitation: Budget 2027', 'REQUEST', 'b1@bigcorp', 'Budget 2027', '20261208T090000Z', 'accept', 'dmarc-pass', '', '$ACC_DETAIL', 0);
INSERT INTO imip_log (user_id, ts, from_addr, subject, method, ical_uid, summary, dtstart, decision, reason, hint, detail, raw, attempts, next_retry)
  VALUES ($U, $NOW - 86400, 'ops@slowdns.example', 'Updated invitation: Ops sync', 'REQUEST', 'o1@slowdns', 'Ops sync', '20261209T140000Z', 'defer', 'dmarc-temperror', '', NULL, 'raw', 1, $NOW + 600);
INSERT INTO imip_log (user_id, ts, from_addr, subject, method, ical_uid, summary, dtstart, decision, reason, hint, detail, raw, attempts)
  VALUES ($U, $NOW - 3600, 'spam@bad.example', '$XSS', 'REQUEST', 'x1@bad', '$XSS', '20261211T080000Z', 'skip', 'dmarc-fail', 'none: _dmarc.bad.example publishes a DMARC record with p=reject and this message fails it; no relaxation overrides a published record', NULL, 'raw', 0);
INSERT INTO imip_log (user_id, ts, from_addr, subject, method, ical_uid, summary, dtstart, decision, reason, hint, detail, raw, attempts)
  VALUES ($U, $NOW - 600, 'maria@partner-firm.fi', 'Invitation: Quarterly review @ Thu 10 Dec 2026 10:00 - 11:00 (EET)', 'REQUEST', 'q4@google.com', 'Quarterly review', '20261210T080000Z', 'skip', 'dmarc-none', 'policy.require=dkim with dkim_signers=google-workspace would accept', '$DETAIL', 'raw', 0);
SELECT last_insert_rowid();
INSERT OR REPLACE INTO accounts (user_id, state, detail, last_ok, next_try)
  VALUES ($U, 'idle', NULL, $NOW - 120, NULL);
SQL
)
case "$GOOGLE_ID" in ''|*[!0-9]*) bad "seeding failed: $GOOGLE_ID"; finish;; esac
ok

mkdir -p tests/artifacts
CALGATE_URL="http://127.0.0.1:$PORT" CALGATE_USER=alice ADMIN_USER=root CALGATE_PASS="$PASS" \
GOOGLE_ID="$GOOGLE_ID" XSS_SUBJECT="$XSS" \
SCREENSHOT="$ROOT/tests/artifacts/status.png" \
RECHECK_EXPECT="${RECHECK_EXPECT:-unavailable}" \
	timeout 90 node tests/browser/status_page.mjs > "$T/node.out" 2>&1
cat "$T/node.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/node.out" | tail -n 1)
if [ -z "$line" ]; then
	bad "the browser script printed no result"
else
	pass=$((pass + ${line%% passed*}))
	f=${line#*passed, }
	fail=$((fail + ${f%% failed*}))
fi
if grep -q 'imap-secret-page' "$T/log"; then bad "IMAP secret in the log"; else ok; fi
finish
