#!/usr/bin/env bash
# The hello-world HTTP server benchmark (issue 6, benchmark 1): wrk -t1
# -c64 against tide.http, nginx (one worker), Node.js `http` and a Python
# asyncio Protocol server, each serving "Hello, World!" from one core, in
# one run.  Reports requests/s and p99 latency with tide's ratio to each
# peer and the issue's bars (>= 0.9x nginx's requests/s, p99 <= 1.5x
# nginx's), plus the CPU share of each server and of wrk: one wrk thread
# saturates near 200k requests/s, so a server below 100% is waiting for
# wrk, not the other way round.
#
#   scripts/bench/http_server/run.sh                # 5 s runs
#   BENCH_QUICK=1 scripts/bench/http_server/run.sh  # 1 s runs
#
# Settings: lib.sh's (TIDE, NODE, PYTHON, BENCH_REPEAT, BENCH_PIN,
# BENCH_CPU, ...) plus NGINX, WRK, HTTP_SECONDS=5, HTTP_CONNECTIONS=64.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

bench_find_tool WRK wrk
if [ -z "$WRK" ]; then
  bench_log "http_server: wrk is missing (apt-get install wrk)"
  exit 2
fi
bench_find_tool NGINX nginx /usr/sbin/nginx
export TIDE NODE PYTHON NGINX WRK
export DURATION=${HTTP_SECONDS:-5} CONNECTIONS=${HTTP_CONNECTIONS:-64}
[ "$BENCH_QUICK" = 1 ] && DURATION=1
if [ "$BENCH_PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  export PIN_SERVER=$BENCH_CPU PIN_CLIENT=$(((BENCH_CPU + 1) % $(nproc)))
fi

bench_log "http_server: tide, nginx, node, asyncio; $BENCH_REPEAT x $DURATION s each (about $((BENCH_REPEAT * 4 * (DURATION + 2))) s)"
# one.sh pins the server and wrk itself, so bench_run does not pin.
bench_run tide -- "$here/one.sh" tide
[ -n "$NGINX" ] && bench_run nginx -- "$here/one.sh" nginx
[ -n "$NODE" ] && bench_run node -- "$here/one.sh" node
[ -n "$PYTHON" ] && bench_run py -- "$here/one.sh" asyncio

g() { bench_get "$@"; }
fig="hello world, c$CONNECTIONS"
bench_title "http_server: wrk -t1 -c$CONNECTIONS against tide.http, nginx, Node.js http, asyncio"
bench_row "$fig" req/s "$(g tide rps)" "nginx (1 worker)" "$(g nginx rps)" \
  "ratio>=0.9"
bench_row "$fig" req/s "$(g tide rps)" "node http" "$(g node rps)"
bench_row "$fig" req/s "$(g tide rps)" "asyncio Protocol" "$(g py rps)"
bench_row "p99 latency" ms "$(g tide p99_ms)" "nginx (1 worker)" \
  "$(g nginx p99_ms)" "ratio<=1.5"
bench_row "p99 latency" ms "$(g tide p99_ms)" "node http" "$(g node p99_ms)"
bench_row "p99 latency" ms "$(g tide p99_ms)" "asyncio Protocol" \
  "$(g py p99_ms)"
bench_row "server CPU share" "%" "$(g tide server_cpu)" "nginx (1 worker)" \
  "$(g nginx server_cpu)"
bench_row "wrk CPU share" "%" "$(g tide wrk_cpu)" "nginx (1 worker)" \
  "$(g nginx wrk_cpu)"
bench_note "CPU share: user + system time over the run (100 = one core busy);"
bench_note "  node: $(g node server_cpu)% (wrk $(g node wrk_cpu)%), asyncio: $(g py server_cpu)% (wrk $(g py wrk_cpu)%)."
bench_note "A server below 100% with wrk near 100% is limited by wrk's one thread."
if [ -n "${PIN_SERVER:-}" ]; then
  bench_note "Server pinned to cpu $PIN_SERVER, wrk to cpu $PIN_CLIENT."
fi
bench_table
bench_exit
