#!/usr/bin/env bash
# pair.sh RUNTIME CLIENTS SECONDS SIZE: start RUNTIME's echo server, run its
# client against it, print the client's figures plus cpu_us_per_msg (CPU
# time of server and client together, user + system, per round trip), then
# stop the server.  RUNTIME is tide, node or asyncio; the programs come from
# $TIDE, $NODE, $PYTHON.  With PIN_SERVER / PIN_CLIENT set to core numbers,
# each side is pinned to its own core (taskset).  WARMUP (seconds, default
# 0.5) runs before the counted time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rt=$1 clients=$2 seconds=$3 size=$4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-echo.XXXXXX")

case $rt in
  tide) prog=("$TIDE" "$here/tide.lua") ;;
  node) prog=("$NODE" "$here/node.js") ;;
  asyncio) prog=("$PYTHON" "$here/asyncio_echo.py") ;;
  *) echo "pair.sh: unknown runtime $rt" >&2; exit 2 ;;
esac
pin=()
if [ -n "${PIN_SERVER:-}" ] && command -v taskset >/dev/null; then
  pin=(taskset -c "$PIN_SERVER")
fi
"${pin[@]}" "${prog[@]}" server "$tmp/port" &
server_pid=$!
stop() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap stop EXIT
for _ in $(seq 100); do
  [ -s "$tmp/port" ] && break
  sleep 0.05
done
[ -s "$tmp/port" ] || { echo "pair.sh: $rt server did not start" >&2; exit 1; }

pin=()
if [ -n "${PIN_CLIENT:-}" ] && command -v taskset >/dev/null; then
  pin=(taskset -c "$PIN_CLIENT")
fi
/usr/bin/time -o "$tmp/time" -f '%U %S' "${pin[@]}" "${prog[@]}" client \
  "$(cat "$tmp/port")" "$clients" "$seconds" "$size" "${WARMUP:-0.5}" |
  tee "$tmp/out"

# The server's CPU time so far, from /proc (clock ticks).
read -r -a stat <"/proc/$server_pid/stat"
tck=$(getconf CLK_TCK)
total=$(sed -n 's/^messages_total=//p' "$tmp/out")
awk -v t="$(tail -n 1 "$tmp/time")" -v su="${stat[13]}" -v ss="${stat[14]}" \
    -v tck="$tck" -v n="$total" 'BEGIN {
  split(t, c, " ")
  cpu = c[1] + c[2] + (su + ss) / tck
  if (n > 0) printf "cpu_us_per_msg=%.2f\n", cpu / n * 1e6
}'
