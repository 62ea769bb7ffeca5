#!/bin/sh
# The queue workload: one producer and one consumer pass N items (default
# 1,000,000) through a bounded queue of 100, in tide, Python asyncio and a
# Node.js promise-based channel, one after the other; prints a table of
# items/s and tide's ratio to each peer.  Each runtime reports its best of
# REPEAT runs (default 3), which also lets Node's JIT warm up.
#   N=100000 REPEAT=1 scripts/bench/queue/run.sh    (a quick check)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
TIDE=${TIDE:-$root/build/tide}
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
N=${N:-1000000}
REPEAT=${REPEAT:-3}
export N REPEAT

if [ ! -x "$TIDE" ]; then
  echo "queue bench: $TIDE not found; run make first" >&2
  exit 1
fi

# run <label> <command...>: print "label seconds" (seconds "-" if the peer
# is missing or fails).
run() {
  label=$1
  shift
  if command -v "$1" >/dev/null 2>&1 && secs=$("$@" 2>/dev/null); then
    echo "$label $secs"
  else
    echo "$label -"
  fi
}

{
  run tide "$TIDE" "$here/tide_queue.lua"
  run python-asyncio "$PYTHON" "$here/asyncio_queue.py"
  run node-channel "$NODE" "$here/node_channel.js"
} | awk -v n="$N" -v rep="$REPEAT" '
  { name[NR] = $1; secs[NR] = $2 }
  END {
    printf "queue: %d items, producer -> bounded queue (100) -> consumer, best of %d\n", n, rep
    printf "%-16s %10s %12s %12s\n", "runtime", "seconds", "items/s", "tide is"
    tide = (secs[1] == "-") ? 0 : n / secs[1]
    for (i = 1; i <= NR; i++) {
      if (secs[i] == "-") {
        printf "%-16s %10s %12s %12s\n", name[i], "-", "missing", "-"
        continue
      }
      rate = n / secs[i]
      ratio = (i == 1 || tide == 0) ? "-" : sprintf("%.2fx", tide / rate)
      printf "%-16s %10.3f %11.2fM %12s\n", name[i], secs[i], rate / 1e6, ratio
    }
  }'
