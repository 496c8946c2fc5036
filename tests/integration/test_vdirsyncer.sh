#!/bin/sh
# vdirsyncer: two-way sync of alice's default calendar with a local
# directory; a change on each side; a second sync converges with no
# conflicts; deletions on each side propagate; a resync is quiet.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
command -v vdirsyncer >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
calgate_start || { echo "0 passed, 1 failed"; exit 1; }

D=$CALGATE_DIR
CAL=$CALGATE_URL/dav/calendars/alice/default
mkdir -p "$D/local" "$D/status"
cat >"$D/vdirsyncer.conf" <<CONF
[general]
status_path = "$D/status/"

[pair cal]
a = "local"
b = "remote"
collections = ["from b"]
conflict_resolution = null

[storage local]
type = "filesystem"
path = "$D/local/"
fileext = ".ics"

[storage remote]
type = "caldav"
url = "$CALGATE_URL/"
username = "alice"
password = "alice-pw"
CONF

vds() { timeout 60 vdirsyncer -c "$D/vdirsyncer.conf" "$@" >"$D/vds.out" 2>&1; r=$?; cat "$D/vds.out"; return $r; }

event() {	# event UID SUMMARY
	printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260210T100000Z\r\nDTEND:20260210T110000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$1" "$2"
}
put() {		# put NAME UID SUMMARY [curl args]: prints the status
	n=$1; u=$2; s=$3; shift 3
	event "$u" "$s" | curl -s -o /dev/null -w '%{http_code}' -u alice:alice-pw \
	    -X PUT -H 'Content-Type: text/calendar' --data-binary @- "$@" "$CAL/$n"
}
etag() { curl -s -I -u alice:alice-pw "$CAL/$1" | sed -n 's/^ETag: *//Ip' | tr -d '\r'; }
code() { curl -s -o /dev/null -w '%{http_code}' -u alice:alice-pw "$@"; }

[ "$(put one.ics uid-one One)" = 201 ] && [ "$(put two.ics uid-two Two)" = 201 ] \
    && pass "events created on the server" || fail "events created on the server"

yes | vds discover cal >/dev/null && pass "vdirsyncer discover" || fail "vdirsyncer discover"
vds sync && pass "first sync" || fail "first sync"
L=$D/local/default
[ "$(ls "$L" 2>/dev/null | wc -l)" = 2 ] && pass "both events arrived locally" \
    || fail "both events arrived locally: $(ls "$L" 2>&1)"

# One change on each side.
event uid-three Three >"$L/uid-three.ics"
f=$(grep -l uid-one "$L"/*.ics | head -n 1)
sed -i 's/SUMMARY:One/SUMMARY:One (local edit)/' "$f"
[ "$(put two.ics uid-two 'Two (server edit)' -H "If-Match: $(etag two.ics)")" = 204 ] \
    && pass "server-side edit with If-Match" || fail "server-side edit with If-Match"
vds sync && pass "sync after changes on both sides" || fail "sync after changes on both sides"
grep -q 'Two (server edit)' "$L"/*.ics && pass "server edit reached the local dir" \
    || fail "server edit reached the local dir"
curl -s -u alice:alice-pw "$CAL/one.ics" | grep -q 'One (local edit)' \
    && pass "local edit reached the server" || fail "local edit reached the server"
n=$(curl -s -u alice:alice-pw -X PROPFIND -H 'Depth: 1' "$CAL/" | grep -o '<D:href>[^<]*\.ics</D:href>' | wc -l)
[ "$n" = 3 ] && pass "new local event reached the server" || fail "server has $n objects, want 3"

vds sync && ! grep -qi 'conflict\|error' "$D/vds.out" && \
    ! grep -q 'Copying\|Updating\|Deleting' "$D/vds.out" \
    && pass "second sync converged quietly" || fail "second sync converged quietly"

# Deletions on each side.
[ "$(code -X DELETE "$CAL/two.ics")" = 204 ] && pass "server-side delete" || fail "server-side delete"
rm -f "$L/uid-three.ics"
vds sync && pass "sync after deletions" || fail "sync after deletions"
[ "$(ls "$L" | wc -l)" = 1 ] && grep -q uid-one "$L"/*.ics && pass "local dir has one event" \
    || fail "local dir: $(ls "$L")"
n=$(curl -s -u alice:alice-pw -X PROPFIND -H 'Depth: 1' "$CAL/" | grep -o '<D:href>[^<]*\.ics</D:href>' | wc -l)
[ "$n" = 1 ] && pass "server has one event" || fail "server has $n objects, want 1"
vds sync && ! grep -q 'Copying\|Updating\|Deleting' "$D/vds.out" \
    && pass "resync is quiet" || fail "resync is quiet"
kill -0 "$CALGATE_PID" && pass "server still running" || fail "server still running"
finish
