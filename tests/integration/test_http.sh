#!/bin/sh
# The foundation end to end: `calgate serve` on a free loopback port with a
# temp data dir; Basic auth, body limits, the access log, TLS, check-config,
# passwd, and a clean exit on SIGTERM.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
BIN=${CALGATE:-./calgate}
T=$(mktemp -d /tmp/calgate-http-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

HASH=$(printf 'right pw\n' | $BIN passwd)
check "passwd prints a yescrypt hash" eval 'case "$HASH" in \$y\$*) true;; *) false;; esac'

# start_server CONF: runs calgate, waits for its port (bounded), sets PORT
start_server() {
	: > "$T/log"
	$BIN serve -c "$1" 2>"$T/log" &
	PID=$!
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*server start .*listen=[^ ]*:\([0-9]*\) .*/\1/p' "$T/log")
		[ -n "$PORT" ] && return 0
		kill -0 "$PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

stop_server() {
	kill -TERM "$PID"
	for _ in $(seq 1 100); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$PID" 2>/dev/null; then
		kill -9 "$PID"; wait "$PID"; PID=; return 1
	fi
	wait "$PID"; rc=$?; PID=
	return $rc
}

cat > "$T/calgate.conf" <<CONF
[server]
listen = 127.0.0.1:0
data_dir = data
max_body = 64k
[user alice]
password = $HASH
addresses = alice@example.com
CONF

check "check-config accepts it" eval '$BIN check-config -c "$T/calgate.conf" | grep -q "configuration OK"'

start_server "$T/calgate.conf" || { fail "server did not start"; cat "$T/log"; }
U="http://127.0.0.1:$PORT"

code=$(curl -s -o /dev/null -w '%{http_code}' "$U/")
check "401 without credentials ($code)" eval '[ "$code" = 401 ]'
hdr=$(curl -s -D - -o /dev/null "$U/" | tr -d '\r' | grep -i '^WWW-Authenticate:')
check "401 names the realm" eval 'echo "$hdr" | grep -q "Basic realm=\"calgate\""'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:wrong pw' "$U/")
check "401 with a wrong password ($code)" eval '[ "$code" = 401 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'nobody:right pw' "$U/")
check "401 for an unknown user ($code)" eval '[ "$code" = 401 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' "$U/")
check "200 with the right password ($code)" eval '[ "$code" = 200 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' -X OPTIONS "$U/dav/")
check "authenticated OPTIONS on /dav/ ($code)" eval '[ "$code" = 200 ]'

head -c 70000 /dev/zero > "$T/big"
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' -X PUT \
	--data-binary @"$T/big" "$U/dav/calendars/alice/default/x.ics")
check "413 for a body over max_body ($code)" eval '[ "$code" = 413 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' -X PUT \
	-H 'Transfer-Encoding: chunked' --data-binary @"$T/big" \
	"$U/dav/calendars/alice/default/y.ics")
check "413 for a chunked body over max_body ($code)" eval '[ "$code" = 413 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
	--data-binary @"$T/big" "$U/dav/calendars/alice/default/x.ics")
check "401 (not 413) for an unauthenticated big body ($code)" eval '[ "$code" = 401 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' "$U/")
check "still serving after the refusals ($code)" eval '[ "$code" = 200 ]'

# Password guessing: ten wrong passwords for one name from one address,
# then that pair gets 429 with Retry-After, without a password check;
# requests without credentials are not guesses; alice is not affected.
for _ in $(seq 1 12); do curl -s -o /dev/null "$U/"; done
codes=
for _ in $(seq 1 10); do
	codes="$codes$(curl -s -o /dev/null -w '%{http_code}' -u 'mallory:guess' "$U/") "
done
check "ten wrong guesses: 401 each ($codes)" eval \
	'[ "$codes" = "401 401 401 401 401 401 401 401 401 401 " ]'
hdr=$(curl -s -D - -o /dev/null -u 'mallory:guess' "$U/" | tr -d '\r')
check "the eleventh: 429 with Retry-After" eval \
	'echo "$hdr" | grep -q "^HTTP/1.1 429" && echo "$hdr" | grep -qi "^Retry-After: [0-9]"'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' "$U/")
check "another user from the same address still gets in ($code)" eval '[ "$code" = 200 ]'
check "the throttle is logged, without the password" eval \
	'grep -q "warn http auth throttled user=mallory addr=127.0.0.1" "$T/log" && ! grep -q "guess" "$T/log"'

check "access log line with method, path, status, bytes, ms, user" eval \
	'grep -q "info http request method=GET path=/ status=200 bytes=[0-9]* ms=[0-9]* user=alice" "$T/log"'
check "unauthenticated requests logged as user=-" eval \
	'grep -q "status=401 .*user=-" "$T/log"'
check "no password in the log" eval '! grep -q "right pw\|wrong pw" "$T/log"'
check "no hash in the log" eval '! grep -qF "$HASH" "$T/log"'
check "store created" eval '[ -s "$T/data/calgate.db" ]'
check "data dir is private" eval '[ "$(stat -c %a "$T/data")" = 700 ]'

# SIGHUP with a broken file: refused, the old config stays in force.
cp "$T/calgate.conf" "$T/good.conf"
printf '[server]\nlisten = 127.0.0.1:0\ndata_dir = data\nbogus = 1\n' > "$T/calgate.conf"
kill -HUP "$PID"; sleep 0.3
check "a broken reload is refused and logged" eval 'grep -q "config reload refused" "$T/log"'
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' "$U/")
check "old config still in force ($code)" eval '[ "$code" = 200 ]'
cp "$T/good.conf" "$T/calgate.conf"

# SIGTERM while a slow upload is in flight: it still gets its answer.
head -c 40000 /dev/zero > "$T/slow"
curl -s -o /dev/null -w '%{http_code}' -u 'alice:right pw' -X PUT \
	--limit-rate 20k --data-binary @"$T/slow" \
	"$U/dav/calendars/alice/default/slow.ics" > "$T/slowcode" &
CURL=$!
sleep 0.5
stop_server; rc=$?
wait "$CURL"
code=$(cat "$T/slowcode")
check "in-flight request finished during shutdown ($code)" eval '[ "$code" != 000 ] && [ -n "$code" ]'
check "clean exit on SIGTERM (rc=$rc)" eval '[ "$rc" = 0 ]'
check "stop logged" eval 'grep -q "server stopped" "$T/log"'
check "store is consistent after stop" eval '[ "$(sqlite3 "$T/data/calgate.db" "PRAGMA integrity_check")" = ok ]'

# TLS with a self-signed certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
cat > "$T/tls.conf" <<CONF
[server]
listen = 127.0.0.1:0
data_dir = data
tls_cert = cert.pem
tls_key = key.pem
[user alice]
password = $HASH
CONF
if start_server "$T/tls.conf"; then
	code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/cert.pem" \
		-u 'alice:right pw' "https://127.0.0.1:$PORT/")
	check "HTTPS with the certificate ($code)" eval '[ "$code" = 200 ]'
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
	check "no plain HTTP on the TLS port ($code)" eval '[ "$code" != 200 ]'
	stop_server
else
	fail "TLS server did not start"; cat "$T/log"
fi

# Refusals at startup.
printf '[server]\nlisten = 127.0.0.1:0\nthreads = many\n[user a]\npassword = x\n' > "$T/bad.conf"
out=$($BIN serve -c "$T/bad.conf" 2>&1); rc=$?
check "serve refuses a bad config (rc=$rc)" eval '[ "$rc" = 1 ]'
check "every error named" eval 'echo "$out" | grep -q "bad.conf:3: threads" && echo "$out" | grep -q "bad.conf:5: password"'
check "no store created for a refused config" eval '[ ! -e "$T/data2" ]'
out=$($BIN check-config -c "$T/bad.conf" 2>&1); rc=$?
check "check-config exits 1 on errors" eval '[ "$rc" = 1 ]'
check "usage error exits 2" eval '$BIN serve >/dev/null 2>&1; [ $? = 2 ]'
for c in serve explain check-config passwd version; do
	check "$c --help" eval '$BIN $c --help | grep -q "usage: calgate $c"'
done
check "version" eval '$BIN version | grep -q "^calgate [0-9]"'

finish
