#!/bin/sh
# tests/bench/imap_rss.sh [N] [imap|imaps] [driver|serve]: N (default 200)
# IMAP accounts, all in IDLE against a private Dovecot, run by
# build/tools/poll_driver (driver, the default) or by the real
# `calgate serve` (serve; CALGATE_BIN picks the binary); prints the
# process's RSS and thread count once every account is idle.
# Target (issue 6): RSS under 100 MB for 200 idle accounts.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/dovecot.sh
N=${1:-200}
MODE=${2:-imaps}
RUN=${3:-driver}
if [ "$RUN" = serve ]; then
	BIN=${CALGATE_BIN:-./calgate}
	make --no-print-directory -s calgate >/dev/null || exit 1
else
	make --no-print-directory -s build/tools/poll_driver >/dev/null ||
	    exit 1
fi
T=$(mktemp -d /tmp/cg-rss.XXXXXX)
DPID=
trap '[ -n "$DPID" ] && kill -9 $DPID 2>/dev/null; dovecot_cleanup; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
DOVECOT_EXTRA="default_process_limit = $((N + 50))
default_client_limit = $((N * 4 + 100))
service imap {
  process_limit = $((N + 50))
}
service imap-login {
  process_limit = $((N + 50))
}"
dovecot_start "$T/dovecot" || exit 1
HASH='$y$j9T$ADPlzq1mY4jM2BDiMWFZ./$27qbwzaph0ua2lw9H7xRgmmuc5pVWD8V37pCRBN0e5/'
printf 'pw\n' >"$T/pw"
chmod 600 "$T/pw"
printf '[server]\ndata_dir = %s\nlog_level = warn\n' "$T/data" >"$T/c.conf"
[ "$RUN" = serve ] && echo "listen = 127.0.0.1:0" >>"$T/c.conf"
i=0
while [ $i -lt "$N" ]; do
	dovecot_user "u$i" pw
	if [ "$MODE" = imaps ]; then
		url="imaps://u$i@127.0.0.1:$DOVECOT_TLS_PORT/INBOX"
		extra="imap_ca_file = $DOVECOT_CA"
	else
		url="imap://u$i@127.0.0.1:$DOVECOT_PORT/INBOX"
		extra="imap_tls = none"
	fi
	printf '\n[user u%d]\npassword = %s\nimap = %s\nimap_password_file = %s\n%s\n' \
	    $i "$HASH" "$url" "$T/pw" "$extra" >>"$T/c.conf"
	i=$((i + 1))
done
if [ "$RUN" = serve ]; then
	"$BIN" serve -c "$T/c.conf" >"$T/log" 2>&1 &
else
	build/tools/poll_driver -c "$T/c.conf" -o "$T/rec" 2>"$T/log" &
fi
DPID=$!
i=0
while [ $i -lt 600 ]; do
	idle=$(sqlite3 -cmd ".timeout 5000" "$T/data/calgate.db" \
	    "SELECT count(*) FROM accounts WHERE state = 'idle'" 2>/dev/null)
	[ "${idle:-0}" -ge "$N" ] && break
	sleep 0.2
	i=$((i + 1))
done
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$DPID/status)
thr=$(awk '/Threads/ {print $2}' /proc/$DPID/status)
echo "run=$RUN accounts=$N mode=$MODE idle=${idle:-0} rss_kb=$rss threads=$thr"
kill -TERM $DPID
wait $DPID
DPID=
[ "${idle:-0}" -ge "$N" ] && [ "$rss" -lt 102400 ]
