#!/bin/sh
# Memory per destination: deliver to N distinct domains (default 20000)
# through a real MX and a signed Knot zone, and print the relay's memory
# before the load, at its peak and after the queue drained.  The same
# check as tests/integration/test_dest_memory.py, with N of your choice:
#
#     bench/dest_memory.sh [N] [BUILD_DIR]
#
# Expect about 700 destinations per second on two cores.  The run fails
# when the anonymous memory left after draining exceeds
# TLSRELAY_DEST_SLACK_KB (6144 by default).
set -eu
n=${1:-20000}
build=${2:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$src/$build ;; esac
export TLSRELAY="$build/tlsrelay" TLSRELAY_SRCDIR="$src" TLSRELAY_DEST_COUNT="$n"
# Room for slow machines: about 1.5 ms per destination, at least 4 min.
export TLSRELAY_DEST_TIMEOUT=$(( n * 3 / 2000 > 240 ? n * 3 / 2000 : 240 ))
exec python3 "$src/tests/integration/test_dest_memory.py"
