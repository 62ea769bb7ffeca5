#!/usr/bin/env bash
# one.sh SERVER: start one hello-world server (tide, nginx, node or
# asyncio), load it with wrk -t1 -c$CONNECTIONS for $DURATION seconds, stop
# it, and print the figures as key=value lines: rps, p50_ms, p99_ms,
# server_cpu and wrk_cpu (CPU time over the run's duration, in percent of
# one core).  With PIN_SERVER / PIN_CLIENT set to core numbers, the server
# and wrk are pinned to them.  Programs come from $TIDE, $NGINX, $NODE,
# $PYTHON and $WRK.
set -u
here=$(cd "$(dirname "$0")" && pwd)
id=$1
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
WRK=${WRK:-wrk}
server_pin=() client_pin=()
if command -v taskset >/dev/null; then
  [ -n "${PIN_SERVER:-}" ] && server_pin=(taskset -c "$PIN_SERVER")
  [ -n "${PIN_CLIENT:-}" ] && client_pin=(taskset -c "$PIN_CLIENT")
fi
tck=$(getconf CLK_TCK)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-http-bench.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# CPU ticks (user + system) of a process and its children.
ticks() {
  local total=0 p f
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }  # drop "pid (comm) " so the fields are fixed
    set -- $f
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start ID: start the server, set server_pid and port (0 on failure).
start() {
  local id=$1 i
  rm -f "$tmp/port"
  case $id in
    tide) "${server_pin[@]}" "$TIDE" "$here/tide.lua" "$tmp/port" \
            >"$tmp/server.log" 2>&1 & ;;
    node) "${server_pin[@]}" "$NODE" "$here/node.js" "$tmp/port" \
            >"$tmp/server.log" 2>&1 & ;;
    asyncio) "${server_pin[@]}" "$PYTHON" "$here/asyncio_proto.py" \
               "$tmp/port" >"$tmp/server.log" 2>&1 & ;;
    nginx)
      local p
      p=$(free_port)
      mkdir -p "$tmp/nginx.d"
      sed -e "s|@PORT@|$p|" -e "s|@DIR@|$tmp/nginx.d|" "$here/nginx.conf.in" \
        >"$tmp/nginx.d/nginx.conf"
      "${server_pin[@]}" "$NGINX" -c "$tmp/nginx.d/nginx.conf" -p "$tmp/nginx.d" \
        >"$tmp/server.log" 2>&1 &
      server_pid=$!
      for i in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$p/" && break
        sleep 0.05
      done
      echo "$p" >"$tmp/port"
      port=$p
      return ;;
  esac
  server_pid=$!
  port=0
  for i in $(seq 200); do
    [ -s "$tmp/port" ] && break
    sleep 0.05
  done
  [ -s "$tmp/port" ] && port=$(cat "$tmp/port")
}

stop() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
}

# Latency from wrk ("812.00us", "1.23ms", "1.05s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
  }'
}

start "$id"
if [ "$port" = 0 ]; then
  echo "one.sh: the $id server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
t0=$(ticks "$server_pid")
out=$(/usr/bin/time -o "$tmp/wrk.time" -f '%U %S' "${client_pin[@]}" \
      "$WRK" -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      "http://127.0.0.1:$port/" 2>&1)
t1=$(ticks "$server_pid")
stop
echo "$out"
if ! grep -q "Requests/sec" <<<"$out"; then
  echo "one.sh: wrk failed against $id" >&2
  exit 1
fi
if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
  echo "one.sh: $id answered with errors" >&2
  exit 1
fi
awk '/Requests\/sec/ { print "rps=" $2 }' <<<"$out"
echo "p99_ms=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
echo "p50_ms=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
awk -v a="$t0" -v b="$t1" -v tck="$tck" -v d="$DURATION" \
  'BEGIN { printf "server_cpu=%.0f\n", (b - a) / tck / d * 100 }'
awk -v d="$DURATION" '{ printf "wrk_cpu=%.0f\n", ($1 + $2) / d * 100 }' \
  "$tmp/wrk.time"
