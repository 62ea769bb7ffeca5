#!/bin/sh
# The soak: tide's HTTP server under wrk with keep-alive and with a new
# connection per request, then a queue pipeline, each for SECONDS, with the
# RSS of the tide process sampled every second.  A load fails if wrk saw
# any socket error or non-2xx response, or if RSS after the warm-up (the
# first quarter of the run) grows by more than SOAK_RSS_BOUND_KB (8192).
# Prints one line per load and exits non-zero if any failed.
#   tests/soak/run.sh [BUILD [SECONDS]]
set -u
BUILD=${1:-build}
SECONDS_EACH=${2:-60}
BOUND=${SOAK_RSS_BOUND_KB:-8192}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TIDE="$BUILD/tide"
LOGS="$BUILD/soak"
mkdir -p "$LOGS"
status=0

# summarise NAME COUNT ERRORS RSSFILE: the warm-up base, the peak after
# it, and the verdict.
summarise() {
  name=$1 count=$2 errors=$3 rssfile=$4
  n=$(wc -l <"$rssfile")
  warm=$(( n / 4 )); [ "$warm" -lt 1 ] && warm=1
  base=$(sed -n "${warm}p" "$rssfile")
  peak=$(tail -n +"$warm" "$rssfile" | sort -n | tail -1)
  growth=$(( ${peak:-0} - ${base:-0} ))
  result=ok
  if [ "$errors" != 0 ] || [ "$growth" -gt "$BOUND" ] || [ "$count" = 0 ]; then
    result=FAILED
    status=1
  fi
  printf '%-16s %7s %12s %7s %12s %12s %10s  %s\n' "$name" "$SECONDS_EACH" \
    "$count" "$errors" "${base:-?}" "${peak:-?}" "$growth" "$result"
}

# http_load NAME WRK-ARGS...: start the server, run wrk, sample RSS.
http_load() {
  name=$1
  shift
  # Remove the last run's port first: the background job truncates the
  # file only once it runs, and the wait below must not see the old one.
  rm -f "$LOGS/$name.port"
  "$TIDE" tests/soak/http_server.lua >"$LOGS/$name.port" \
    2>"$LOGS/$name.server.log" &
  spid=$!
  i=0
  while [ ! -s "$LOGS/$name.port" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  port=$(head -1 "$LOGS/$name.port")
  if [ -z "$port" ]; then
    echo "$name: the server did not start (see $LOGS/$name.server.log)"
    kill "$spid" 2>/dev/null
    status=1
    return
  fi
  : >"$LOGS/$name.rss"
  wrk -t2 -c32 -d"${SECONDS_EACH}s" "$@" "http://127.0.0.1:$port/" \
    >"$LOGS/$name.wrk" 2>&1 &
  wpid=$!
  while kill -0 "$wpid" 2>/dev/null; do
    ps -o rss= -p "$spid" >>"$LOGS/$name.rss"
    sleep 1
  done
  wait "$wpid"
  alive=yes
  kill -0 "$spid" 2>/dev/null || alive=no
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  count=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$LOGS/$name.wrk")
  # "Socket errors: connect N, read N, write N, timeout N": sum them all.
  sockerr=$(grep 'Socket errors:' "$LOGS/$name.wrk" | tr -c '0-9\n' ' ')
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' \
    "$LOGS/$name.wrk")
  errors=0
  for e in $sockerr ${non2xx:-0}; do errors=$((errors + e)); done
  [ "$alive" = yes ] || errors=$((errors + 1))
  summarise "$name" "${count:-0}" "$errors" "$LOGS/$name.rss"
}

printf '%-16s %7s %12s %7s %12s %12s %10s  %s\n' load seconds requests/items \
  errors rss_warm_kb rss_peak_kb growth_kb result
http_load http-keepalive
http_load http-churn -H "Connection: close"

# The queue pipeline samples its own RSS and prints its own verdict.
out=$(SOAK_SECONDS="$SECONDS_EACH" SOAK_RSS_BOUND_KB="$BOUND" \
      "$TIDE" tests/soak/queue_pipeline.lua 2>&1)
rc=$?
echo "$out" >"$LOGS/queue.log"
items=$(echo "$out" | sed -n 's/.* items=\([0-9]*\).*/\1/p')
base=$(echo "$out" | sed -n 's/.*rss_warm_kb=\([0-9]*\).*/\1/p')
peak=$(echo "$out" | sed -n 's/.*rss_peak_kb=\([0-9]*\).*/\1/p')
lost=$(echo "$out" | sed -n 's/.*lost=\([0-9-]*\).*/\1/p')
result=ok
[ $rc -eq 0 ] || { result=FAILED; status=1; }
printf '%-16s %7s %12s %7s %12s %12s %10s  %s\n' queue-pipeline \
  "$SECONDS_EACH" "${items:-0}" "${lost:-?}" "${base:-?}" "${peak:-?}" \
  "$(( ${peak:-0} - ${base:-0} ))" "$result"
exit $status
