#!/usr/bin/env bash
# The TCP echo benchmark (issue 5): N concurrent clients each send a small
# message and wait for its echo, over and over, against an echo server of
# the same runtime (server and client are separate processes): tide.net vs
# Node.js `net` vs Python asyncio streams.  Reports round trips per second
# (all clients together) with the issue's bars, and CPU time per round trip
# (server + client), which a busy machine disturbs less.
#
#   scripts/bench/echo/run.sh                 # 50 clients, 64 B, 5 s runs
#   BENCH_QUICK=1 scripts/bench/echo/run.sh   # 1 s runs, to check it works
#
# Settings: lib.sh's (TIDE, NODE, PYTHON, BENCH_REPEAT, BENCH_CPU, ...)
# plus ECHO_CLIENTS=50, ECHO_SIZE=64, ECHO_SECONDS=5, ECHO_PIN=0.
# BENCH_PIN does not apply: this workload is two processes talking over
# loopback, and pinning each to a fixed core made its figures depend on
# whatever else ran on those cores; the scheduler places them better.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

clients=${ECHO_CLIENTS:-50}
size=${ECHO_SIZE:-64}
secs=${ECHO_SECONDS:-5}
[ "$BENCH_QUICK" = 1 ] && secs=1
export TIDE NODE PYTHON
if [ "${ECHO_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  export PIN_SERVER=$BENCH_CPU PIN_CLIENT=$(((BENCH_CPU + 1) % $(nproc)))
fi

bench_log "echo: tide, node, asyncio; $BENCH_REPEAT x $secs s each" \
  "(about $((BENCH_REPEAT * 3 * (secs + 2))) s)"
# Pinning, if asked for, is done by pair.sh (server and client on separate
# cores), so bench_run does not pin.
bench_run tide -- "$here/pair.sh" tide "$clients" "$secs" "$size"
if [ -n "$NODE" ]; then
  bench_run node -- "$here/pair.sh" node "$clients" "$secs" "$size"
fi
if [ -n "$PYTHON" ]; then
  bench_run py -- "$here/pair.sh" asyncio "$clients" "$secs" "$size"
fi

g() { bench_get "$@"; }
fig="echo, $clients clients x $size B"
bench_title "echo: TCP round trips (tide.net, Node.js net, asyncio streams)"
bench_row "$fig" msg/s "$(g tide messages_per_s)" "node net" \
  "$(g node messages_per_s)" "ratio>=1.5"
bench_row "$fig" msg/s "$(g tide messages_per_s)" "asyncio streams" \
  "$(g py messages_per_s)" "ratio>=2"
bench_row "CPU per round trip" us "$(g tide cpu_us_per_msg)" "node net" \
  "$(g node cpu_us_per_msg)"
bench_row "CPU per round trip" us "$(g tide cpu_us_per_msg)" "asyncio streams" \
  "$(g py cpu_us_per_msg)"
bench_note "Each runtime runs its own server and client, as two processes;"
bench_note "  every client connection sends a message and waits for its echo."
bench_note "msg/s: round trips per second over ${secs} s, after a 0.5 s warm-up."
bench_note "CPU per round trip: user + system time of server and client,"
bench_note "  divided by every round trip of the run (warm-up included)."
if [ -n "${PIN_SERVER:-}" ]; then
  bench_note "Server pinned to cpu $PIN_SERVER, client to cpu $PIN_CLIENT."
else
  bench_note "Not pinned, whatever the header says (ECHO_PIN=1 pins)."
fi
bench_table
bench_exit
