#!/bin/sh
# CalDAV benchmark (issue 3, "Performance"): calgate against Radicale and
# Xandikos on the same generated events, driven by wrk over loopback.
# Not part of `make check`; `make bench` runs it through tests/bench/run.
# Knobs: DAV_BENCH_SIZES="1000 10000" DAV_BENCH_SECONDS=5
#        DAV_BENCH_SERVERS="calgate radicale xandikos"
cd "$(dirname "$0")/../.." || exit 1
exec /usr/bin/python3 tests/bench/dav_driver.py "$@"
