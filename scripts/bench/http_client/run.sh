#!/usr/bin/env bash
# The HTTP client benchmark (issue 6, part 2): fetch N small responses with
# C in flight, over keep-alive connections, from a local nginx (one worker,
# pinned to the core the clients do not use), with tide.http_client,
# Node.js fetch, Node.js http.get with a keep-alive http.Agent, a Python
# asyncio streams client and (when python3-aiohttp is installed) aiohttp.
# Prints one table with the issue's bars, plus each client's CPU time per
# request, which holds up better than requests/s on a busy machine.
#
#   scripts/bench/http_client/run.sh                # N=10000 C=64
#   BENCH_QUICK=1 scripts/bench/http_client/run.sh  # a tenth of N
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

N=$(bench_scale "${N:-10000}")
C=${C:-64}
server_cpu=1
[ "$BENCH_CPU" = 1 ] && server_cpu=0

if ! command -v nginx >/dev/null 2>&1; then
  bench_log "http_client: nginx is missing (apt-get install nginx-light)"
  exit 2
fi

# nginx, one worker, on a free port (it exits if the port is taken: try
# the next one).
ngx=$BENCH_TMP/nginx
mkdir -p "$ngx/tmp"
stop_nginx() {
  [ -s "$ngx/nginx.pid" ] && kill "$(cat "$ngx/nginx.pid")" 2>/dev/null
  rm -rf "$BENCH_TMP"
}
trap stop_nginx EXIT
user=""
[ "$(id -u)" = 0 ] && user="user root root;"
pin=()
[ "$BENCH_PIN" = 1 ] && pin=(taskset -c "$server_cpu")
port=$((20000 + $$ % 30000))
for _ in 1 2 3 4 5 6 7 8 9 10; do
  cat >"$ngx/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type text/plain; return 200 "hello, world\n"; }
  }
}
CONF
  : >"$ngx/error.log"
  "${pin[@]}" nginx -p "$ngx" -c nginx.conf -e "$ngx/error.log" \
    >/dev/null 2>&1 &
  for _ in $(seq 200); do
    [ -s "$ngx/nginx.pid" ] && break
    grep -q emerg "$ngx/error.log" && break
    sleep 0.02
  done
  [ -s "$ngx/nginx.pid" ] && break
  port=$((port + 1))
done
if [ ! -s "$ngx/nginx.pid" ]; then
  bench_log "http_client: nginx did not start:"
  cat "$ngx/error.log" >&2
  exit 1
fi
url="http://127.0.0.1:$port/"

bench_log "http_client: $N requests, $C in flight, from nginx at $url"
bench_run tide --pin -- "$TIDE" "$here/client.lua" "$url" "$N" "$C"
if [ -n "$NODE" ]; then
  bench_run node.fetch -- "$NODE" "$here/node_fetch.mjs" "$url" "$N" "$C"
  bench_run node.agent -- "$NODE" "$here/node_agent.js" "$url" "$N" "$C"
fi
if [ -n "$PYTHON" ]; then
  bench_run py.asyncio --pin -- "$PYTHON" "$here/py_asyncio.py" "$url" "$N" "$C"
  if "$PYTHON" -c 'import aiohttp' 2>/dev/null; then
    bench_run py.aiohttp --pin -- "$PYTHON" "$here/py_aiohttp.py" "$url" "$N" "$C"
  fi
fi

g() { bench_get "$@"; }
fig="$N requests, $C in flight"

bench_title "http_client: the client against nginx"
bench_row "$fig" req/s "$(g tide req_per_s)" \
  "node http.Agent keep-alive" "$(g node.agent req_per_s)" "ratio>=3"
bench_row "$fig" req/s "$(g tide req_per_s)" \
  "python asyncio streams" "$(g py.asyncio req_per_s)" "ratio>=1.2"
bench_row "$fig" req/s "$(g tide req_per_s)" \
  "node fetch" "$(g node.fetch req_per_s)"
bench_row "$fig" req/s "$(g tide req_per_s)" \
  "python aiohttp" "$(g py.aiohttp req_per_s)"
bench_row "CPU per request" us "$(g tide cpu_us_per_req)" \
  "node http.Agent keep-alive" "$(g node.agent cpu_us_per_req)"
bench_row "CPU per request" us "$(g tide cpu_us_per_req)" \
  "python asyncio streams" "$(g py.asyncio cpu_us_per_req)"
bench_row "CPU per request" us "$(g tide cpu_us_per_req)" \
  "node fetch" "$(g node.fetch cpu_us_per_req)"
bench_row "CPU per request" us "$(g tide cpu_us_per_req)" \
  "python aiohttp" "$(g py.aiohttp cpu_us_per_req)"
bench_note "Rows with a bar are the issue's; the others are for reference."
bench_note "Each client first opens its $C connections with $C untimed requests."
bench_note "CPU per request: the client process's user + system time over the"
bench_note "  timed part / $N (Node.js counts its helper threads too)."
bench_note "nginx: one worker, access log off$([ "$BENCH_PIN" = 1 ] && echo ", pinned to cpu $server_cpu")."
bench_note "Node.js is not pinned to a core (its GC uses helper threads); the others are."
bench_table
bench_exit
