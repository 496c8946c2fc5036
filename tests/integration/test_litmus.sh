#!/bin/sh
# litmus (the WebDAV server test suite) against a user's home: the basic,
# copymove, props and http suites must pass. Prints litmus's own counts,
# summed over the suites, as "N passed, M failed".
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
command -v litmus >/dev/null || { echo "litmus missing"; echo "0 passed, 1 failed"; exit 1; }
calgate_start || { echo "0 passed, 1 failed"; exit 1; }

total_p=0; total_f=0
out=$CALGATE_DIR/litmus.out
for suite in basic copymove props http; do
	# litmus keeps its scratch collection, litmus/, under the URL;
	# its debug.log lands in $CALGATE_DIR.
	(cd "$CALGATE_DIR" && TESTS=$suite \
	    timeout 60 litmus "$CALGATE_URL/dav/calendars/alice/" alice alice-pw \
	    >"$out" 2>&1 </dev/null)
	rc=$?
	cat "$out"
	line=$(grep -E '^<- summary for' "$out" | tail -n 1)
	p=$(echo "$line" | sed -nE "s/.* ([0-9]+) passed.*/\\1/p")
	f=$(echo "$line" | sed -nE "s/.* ([0-9]+) failed.*/\\1/p")
	if [ -z "$p" ] || [ -z "$f" ]; then
		echo "litmus $suite: no summary (exit $rc)"
		p=0; f=1
	fi
	total_p=$((total_p + p)); total_f=$((total_f + f))
done
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
