#!/usr/bin/env bash
# The hello-world HTTP server benchmark (issue 6, benchmark 1): wrk -t1
# -c64 against tide.http, nginx (one worker), Node.js `http` and a Python
# asyncio Protocol server, each serving "Hello, World!" from one core, in
# one run.  Prints requests/s and p99 latency (median of BENCH_REPEAT runs)
# with tide's ratio to each peer and the issue's bars (>= 0.9x nginx's
# requests/s, p99 <= 1.5x nginx's), plus the CPU share of the server and
# of wrk: one wrk thread saturates near 200k requests/s, so a server that
# is not at 100% is waiting for wrk, not the other way round.
#
#   scripts/bench/http_server/run.sh                # 5 s runs, median of 3
#   BENCH_QUICK=1 scripts/bench/http_server/run.sh  # 1 s runs, once
#
# Settings: TIDE, NODE, PYTHON, NGINX, WRK (programs; a missing peer is
# skipped), DURATION=5, CONNECTIONS=64, BENCH_REPEAT=3, BENCH_PIN=1 (the
# server on core BENCH_CPU, wrk on the next core), BENCH_STRICT=1 (exit 1
# when a bar fails).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

TIDE=${TIDE:-$root/build/tide}
case $TIDE in /*) ;; *) TIDE=$root/$TIDE ;; esac
if [ ! -x "$TIDE" ]; then
  echo "http_server bench: $TIDE is not built (run make, or set TIDE=path)" >&2
  exit 2
fi
WRK=${WRK:-$(command -v wrk || true)}
if [ -z "$WRK" ]; then
  echo "http_server bench: wrk is missing (apt-get install wrk)" >&2
  exit 2
fi
NODE=${NODE:-$(command -v node || command -v nodejs || true)}
NGINX=${NGINX:-$(command -v nginx || true)}
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
  else PYTHON=$(command -v python3 || true); fi
fi

DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
REPEAT=${BENCH_REPEAT:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  DURATION=1
  REPEAT=1
fi
server_pin=() client_pin=()
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null; then
  cpu=${BENCH_CPU:-0}
  server_pin=(taskset -c "$cpu")
  [ "$(nproc)" -ge 2 ] && client_pin=(taskset -c "$(((cpu + 1) % $(nproc)))")
fi
tck=$(getconf CLK_TCK)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-http-bench.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null &&
    wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
errors=0

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

# run ID: BENCH_REPEAT runs; figures appended to $tmp/ID as key=value.
run() {
  local id=$1 i t0 t1 out
  : >"$tmp/$id"
  for ((i = 1; i <= REPEAT; i++)); do
    start "$id"
    if [ "$port" = 0 ]; then
      echo "http_server bench: $id did not start:" >&2
      sed 's/^/  | /' "$tmp/server.log" | tail -n 20 >&2
      errors=$((errors + 1))
      stop
      return
    fi
    t0=$(ticks "$server_pid")
    out=$(/usr/bin/time -o "$tmp/wrk.time" -f '%U %S' "${client_pin[@]}" \
          "$WRK" -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
          "http://127.0.0.1:$port/" 2>&1)
    t1=$(ticks "$server_pid")
    stop
    if ! grep -q "Requests/sec" <<<"$out"; then
      echo "http_server bench: wrk failed against $id:" >&2
      sed 's/^/  | /' <<<"$out" >&2
      errors=$((errors + 1))
      return
    fi
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
      echo "http_server bench: $id had errors:" >&2
      grep "Non-2xx\|Socket errors" <<<"$out" | sed 's/^/  | /' >&2
    fi
    {
      awk '/Requests\/sec/ { print "rps=" $2 }' <<<"$out"
      echo "p99_ms=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
      echo "p50_ms=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
      awk -v a="$t0" -v b="$t1" -v tck="$tck" -v d="$DURATION" \
        'BEGIN { printf "server_cpu=%.0f\n", (b - a) / tck / d * 100 }'
      awk -v d="$DURATION" '{ printf "wrk_cpu=%.0f\n", ($1 + $2) / d * 100 }' \
        "$tmp/wrk.time"
    } >>"$tmp/$id"
  done
}

median() {
  sed -n "s/^$2=//p" "$tmp/$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

n=1
[ -n "$NGINX" ] && n=$((n + 1))
[ -n "$NODE" ] && n=$((n + 1))
[ -n "$PYTHON" ] && n=$((n + 1))
echo "http_server bench: wrk -t1 -c$CONNECTIONS -d${DURATION}s, median of $REPEAT (about $((n * REPEAT * (DURATION + 2))) s)" >&2
run tide
[ -n "$NGINX" ] && run nginx
[ -n "$NODE" ] && run node
[ -n "$PYTHON" ] && run asyncio

fails=0
fmt='%-14s %-6s %10s  %-16s %10s %8s  %s\n'
# row LABEL UNIT TIDE PEER PEERVAL MODE BAR: MODE "rate" gives tide/peer,
# "cost" gives peer/tide... both printed as tide/peer; BAR ">=x" or "<=x".
row() {
  local ratio="n/a" verdict="" r
  if [ -n "$3" ] && [ -n "$5" ] && [ "$5" != 0 ]; then
    r=$(awk -v a="$3" -v b="$5" 'BEGIN { printf "%.2f", a / b }')
    ratio="${r}x"
    case $7 in
      ">="*) if awk -v r="$r" -v m="${7#>=}" 'BEGIN { exit !(r >= m) }'
             then verdict="$7x PASS"; else verdict="$7x FAIL"; fails=$((fails + 1)); fi ;;
      "<="*) if awk -v r="$r" -v m="${7#<=}" 'BEGIN { exit !(r <= m) }'
             then verdict="$7x PASS"; else verdict="$7x FAIL"; fails=$((fails + 1)); fi ;;
    esac
  fi
  printf "$fmt" "$1" "$2" "${3:-n/a}" "$4" "${5:-n/a}" "$ratio" "$verdict"
}

printf "\n$fmt" "hello world" unit tide peer "peer value" tide/peer bar
t_rps=$(median tide rps)
t_p99=$(median tide p99_ms)
if [ -n "$NGINX" ]; then
  row "requests" "req/s" "$t_rps" "nginx (1 worker)" "$(median nginx rps)" rate ">=0.9"
fi
[ -n "$NODE" ] && row "requests" "req/s" "$t_rps" "node http" "$(median node rps)" rate ""
[ -n "$PYTHON" ] && row "requests" "req/s" "$t_rps" "asyncio Protocol" "$(median asyncio rps)" rate ""
if [ -n "$NGINX" ]; then
  row "p99 latency" "ms" "$t_p99" "nginx (1 worker)" "$(median nginx p99_ms)" cost "<=1.5"
fi
[ -n "$NODE" ] && row "p99 latency" "ms" "$t_p99" "node http" "$(median node p99_ms)" cost ""
[ -n "$PYTHON" ] && row "p99 latency" "ms" "$t_p99" "asyncio Protocol" "$(median asyncio p99_ms)" cost ""
echo
printf '%-18s %12s %12s %12s\n' "CPU share" "server %" "wrk %" "p50 ms"
for id in tide nginx node asyncio; do
  [ -s "$tmp/$id" ] || continue
  printf '%-18s %12s %12s %12s\n' "$id" "$(median "$id" server_cpu)" \
    "$(median "$id" wrk_cpu)" "$(median "$id" p50_ms)"
done
echo
echo "tide/peer: tide's figure divided by the peer's (above 1 is better for"
echo "  req/s, below 1 is better for latency).  Each server is pinned to one"
echo "  core and wrk (one thread) to another when BENCH_PIN=1; CPU share is"
echo "  user + system time over the run's duration (100 = one core busy)."
[ "$errors" -gt 0 ] && exit 1
[ "${BENCH_STRICT:-0}" = 1 ] && [ "$fails" -gt 0 ] && exit 1
exit 0
