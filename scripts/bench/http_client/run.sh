#!/bin/sh
# HTTP client benchmark: fetch N small responses with C in flight from a
# local nginx (one worker), with tide.http_client and its peers: Node.js
# fetch, Node.js http.Agent (keep-alive), a Python asyncio streams client
# and, when python3-aiohttp is installed, aiohttp.  nginx runs on CPU 1 and
# each client on CPU 0, so a client has one core to itself.  Each client
# runs RUNS times; the best run counts.  Besides requests/s (and tide's
# ratio to each peer), the table gives each client's CPU time per request
# (and each peer's ratio to tide's: above 1 means tide uses less).
#
#   scripts/bench/http_client/run.sh            (N=10000 C=64 RUNS=3)
#   N=2000 RUNS=1 scripts/bench/http_client/run.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
N=${N:-10000}
C=${C:-64}
RUNS=${RUNS:-3}
TIDE=${TIDE:-$root/build/tide}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

[ -x "$TIDE" ] || { echo "build tide first (make)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is missing" >&2; exit 1; }

pin_server="" pin_client=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server="taskset -c 1"
  pin_client="taskset -c 0"
fi

dir=$(mktemp -d /tmp/tide-bench-httpc.XXXXXX)
cleanup() {
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null
  sleep 0.2
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# A free port: let nginx fail on a taken one and try the next.
port=$(( 20000 + $$ % 30000 ))
user=""
[ "$(id -u)" = 0 ] && user="user root root;"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  mkdir -p "$dir/tmp"
  cat > "$dir/nginx.conf" <<CONF
$user
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type text/plain; return 200 "hello, world\n"; }
  }
}
CONF
  $pin_server nginx -p "$dir" -c nginx.conf -e "$dir/error.log" \
    >"$dir/stderr.log" 2>&1 &
  i=0
  while [ ! -s "$dir/nginx.pid" ] && [ $i -lt 200 ]; do
    grep -q emerg "$dir/error.log" 2>/dev/null && break
    sleep 0.02; i=$((i + 1))
  done
  [ -s "$dir/nginx.pid" ] && break
  port=$((port + 1))
done
[ -s "$dir/nginx.pid" ] || { cat "$dir/error.log" >&2; exit 1; }
url="http://127.0.0.1:$port/"

# measure "<command>": run it RUNS times; print the best requests/s and
# the client's CPU time (user + system, startup included) per request in
# microseconds for that run.  The CPU figure holds up on a busy machine,
# where requests/s drops with the time slices the client gets.
TIME=""
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f %U,%S -o $dir/cpu"
measure() {
  best=0 cpu="-" r=0
  while [ $r -lt "$RUNS" ]; do
    rm -f "$dir/cpu"
    out=$($pin_client $TIME sh -c "$1" 2>"$dir/client.err") || {
      echo "failed: $1" >&2; cat "$dir/client.err" >&2; echo "0 -"; return; }
    rate=$(echo "$out" | awk '{ printf "%d", $1 / $2 }')
    if [ "$rate" -gt "$best" ]; then
      best=$rate
      cpu="-"
      [ -s "$dir/cpu" ] && cpu=$(awk -F, -v n="$N" -v c="$C" \
        'END { printf "%.1f", ($1 + $2) * 1e6 / (n + c) }' "$dir/cpu")
    fi
    r=$((r + 1))
  done
  echo "$best $cpu"
}

echo "HTTP client: $N requests, $C in flight, nginx at $url (best of $RUNS)"
set -- $(measure "$TIDE $here/client.lua $url $N $C")
tide_rate=$1 tide_cpu=$2

printf '%-28s %11s %8s %12s %8s\n' "client" "requests/s" "tide/x" \
  "cpu us/req" "x/tide"
printf '%-28s %11s %8s %12s %8s\n' "tide.http_client" "$tide_rate" "1.00" \
  "$tide_cpu" "1.00"
row() {
  set -- "$1" $(measure "$2")
  ratio=$(awk -v a="$tide_rate" -v b="$2" \
    'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  cratio=$(awk -v a="$tide_cpu" -v b="$3" \
    'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')
  printf '%-28s %11s %8s %12s %8s\n' "$1" "$2" "$ratio" "$3" "$cratio"
}
if command -v node >/dev/null; then
  row "node fetch" "node $here/node_fetch.mjs $url $N $C"
  row "node http.Agent keep-alive" "node $here/node_agent.js $url $N $C"
fi
row "python asyncio streams" "$PY $here/py_asyncio.py $url $N $C"
if $PY -c 'import aiohttp' 2>/dev/null; then
  row "python aiohttp" "$PY $here/py_aiohttp.py $url $N $C"
fi
