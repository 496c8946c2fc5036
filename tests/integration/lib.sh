# tests/integration/lib.sh: start a throw-away calgate for a test script.
#
#   . tests/integration/lib.sh
#   calgate_start            # users alice/alice-pw and bob/bob-pw
#   curl -u alice:alice-pw "$CALGATE_URL/dav/"
#   ...                      # calgate_stop runs on exit (trap)
#
# calgate_start [EXTRA_CONFIG_LINES] writes a config in a temp dir (data in
# $CALGATE_DIR/data), listens on 127.0.0.1 port 0 (the kernel picks a free
# one) and waits up to 10 s for the "server start" log line. It sets
# CALGATE_DIR, CALGATE_PORT, CALGATE_URL (http://127.0.0.1:PORT),
# CALGATE_PID and CALGATE_LOG. Set CALGATE_BIN to test another binary
# (e.g. build-san/calgate).
#
# Results, for every shell test (sourcing this starts nothing): pass DESC,
# fail DESC, check DESC COMMAND [ARGS] (pass if COMMAND succeeds), and
# finish, which prints "N passed, M failed" as the last line and returns
# non-zero on any failure.

CALGATE_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CALGATE_BIN=${CALGATE_BIN:-$CALGATE_ROOT/calgate}
T_PASS=0
T_FAIL=0

pass() { T_PASS=$((T_PASS + 1)); echo "ok   $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $*"; }
check() {
	_desc=$1
	shift
	if "$@"; then pass "$_desc"; else fail "$_desc"; fi
}
# finish: prints the result line and exits non-zero on any failure.
finish() {
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

calgate_stop() {
	if [ -n "${CALGATE_PID:-}" ]; then
		kill "$CALGATE_PID" 2>/dev/null
		wait "$CALGATE_PID" 2>/dev/null
		CALGATE_PID=
	fi
	[ -n "${CALGATE_DIR:-}" ] && rm -rf "$CALGATE_DIR"
	CALGATE_DIR=
}

calgate_start() {
	CALGATE_DIR=$(mktemp -d /tmp/calgate-test.XXXXXX)
	trap calgate_stop EXIT
	trap 'exit 130' INT TERM
	alice=$(echo alice-pw | "$CALGATE_BIN" passwd) || return 1
	bob=$(echo bob-pw | "$CALGATE_BIN" passwd) || return 1
	cat >"$CALGATE_DIR/calgate.conf" <<CONF
[server]
listen = 127.0.0.1:0
data_dir = $CALGATE_DIR/data
max_body = 4M
threads = 4
[user alice]
password = $alice
addresses = alice@example.com, a.smith@example.com
[user bob]
password = $bob
addresses = bob@example.org
${1:-}
CONF
	CALGATE_LOG=$CALGATE_DIR/calgate.log
	"$CALGATE_BIN" serve -c "$CALGATE_DIR/calgate.conf" \
	    >"$CALGATE_LOG" 2>&1 &
	CALGATE_PID=$!
	i=0
	while [ $i -lt 100 ]; do
		CALGATE_PORT=$(sed -n 's/.*server start .*listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' \
		    "$CALGATE_LOG" | head -n 1)
		[ -n "$CALGATE_PORT" ] && break
		kill -0 "$CALGATE_PID" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	if [ -z "$CALGATE_PORT" ]; then
		echo "calgate did not start:"; cat "$CALGATE_LOG"
		return 1
	fi
	CALGATE_URL=http://127.0.0.1:$CALGATE_PORT
	export CALGATE_DIR CALGATE_PORT CALGATE_URL CALGATE_PID CALGATE_LOG
}
