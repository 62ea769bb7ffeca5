#!/usr/bin/env bash
# The queue benchmark (issue 3): one producer and one consumer pass
# 1,000,000 items through a bounded queue of 100, in tide (tide.queue),
# Python asyncio (asyncio.Queue) and Node.js (a promise-based bounded
# channel, node.js here).  The bars: tide at least 1.3x the Node.js
# channel's items/s and at least 5x asyncio's.
#
#   scripts/bench/queue/run.sh                # about 10 s
#   BENCH_QUICK=1 scripts/bench/queue/run.sh  # 100,000 items, to check
#
# Settings: those of lib.sh, plus QUEUE_ITEMS=1000000.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

items=$(bench_scale "${QUEUE_ITEMS:-1000000}")

bench_log "queue: tide, node, asyncio; $items items through a queue of 100"

# tide and asyncio are single-threaded: pinned.  Node.js is not (its
# garbage collector has helper threads).
bench_run tide --pin -- "$TIDE" "$here/tide.lua" "$items"
[ -n "$NODE" ] && bench_run node -- "$NODE" "$here/node.js" "$items"
[ -n "$PYTHON" ] &&
  bench_run py --pin -- "$PYTHON" "$here/asyncio.py" "$items"

g() { bench_get "$@"; }

fig="producer->consumer"
bench_title "queue: $items items, one producer, one consumer, bound 100"
bench_row "$fig" items/s "$(g tide items_per_s)" \
  "node promise channel" "$(g node items_per_s)" "ratio>=1.3"
bench_row "$fig" items/s "$(g tide items_per_s)" \
  "asyncio.Queue" "$(g py items_per_s)" "ratio>=5"
bench_row "per item" ns "$(g tide ns_per_item)" \
  "node promise channel" "$(g node ns_per_item)"
bench_row "per item" ns "$(g tide ns_per_item)" \
  "asyncio.Queue" "$(g py ns_per_item)"
bench_note "Rows with a bar are the issue's; the others are for reference."
bench_note "Each program first passes a tenth of the items untimed (warm-up),"
bench_note "  then times one pass; producer: put(i) for i = 1..N, consumer:"
bench_note "  N get()s, summed and checked."
bench_table
bench_exit
