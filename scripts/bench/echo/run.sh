#!/usr/bin/env bash
# The TCP echo benchmark (issue 5): N concurrent clients each send a small
# message and wait for its echo, over and over, against an echo server of
# the same runtime (server and client are separate processes): tide.net vs
# Node.js `net` vs Python asyncio streams.  Prints messages/s (round trips
# per second, all clients together) and CPU time per round trip (server +
# client), the median of BENCH_REPEAT runs, with ratios and the issue's
# bars (tide >= 1.5x Node.js, >= 2x asyncio on messages/s).
#
#   scripts/bench/echo/run.sh                 # 50 clients, 64 B, 5 s runs
#   BENCH_QUICK=1 scripts/bench/echo/run.sh   # 1 s runs, to check it works
#
# Settings: TIDE, NODE, PYTHON (programs; a missing peer is skipped),
# CLIENTS=50, SIZE=64, SECONDS=5, BENCH_REPEAT=3, BENCH_PIN=1 (server on
# core BENCH_CPU, client on the next one, when the machine has two).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

TIDE=${TIDE:-$root/build/tide}
case $TIDE in /*) ;; *) TIDE=$root/$TIDE ;; esac
if [ ! -x "$TIDE" ]; then
  echo "echo bench: $TIDE is not built (run make, or set TIDE=path)" >&2
  exit 2
fi
NODE=${NODE:-$(command -v node || command -v nodejs || true)}
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
  else PYTHON=$(command -v python3 || true); fi
fi
export TIDE NODE PYTHON

CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-64}
SECONDS_PER_RUN=${SECONDS:-5}
[ "${BENCH_QUICK:-0}" = 1 ] && SECONDS_PER_RUN=1
REPEAT=${BENCH_REPEAT:-3}
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null &&
   [ "$(nproc)" -ge 2 ]; then
  cpu=${BENCH_CPU:-0}
  export PIN_SERVER=$cpu PIN_CLIENT=$(((cpu + 1) % $(nproc)))
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-echo-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
errors=0

# run ID: BENCH_REPEAT runs of pair.sh, figures appended to $tmp/ID.
run() {
  local id=$1 i
  : >"$tmp/$id"
  for ((i = 1; i <= REPEAT; i++)); do
    if ! "$here/pair.sh" "$id" "$CLIENTS" "$SECONDS_PER_RUN" "$SIZE" \
         >"$tmp/$id.out" 2>&1; then
      echo "echo bench: $id failed:" >&2
      sed 's/^/  | /' "$tmp/$id.out" | tail -n 20 >&2
      errors=$((errors + 1))
      : >"$tmp/$id"
      return
    fi
    cat "$tmp/$id.out" >>"$tmp/$id"
  done
}

# median ID KEY: the median of KEY's values over the runs of ID, or "".
median() {
  sed -n "s/^$2=//p" "$tmp/$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo "echo bench: $CLIENTS clients, $SIZE-byte messages, ${SECONDS_PER_RUN} s runs, median of $REPEAT (about $((3 * REPEAT * (SECONDS_PER_RUN + 2))) s)" >&2
run tide
[ -n "$NODE" ] && run node
[ -n "$PYTHON" ] && run asyncio

fails=0
printf '\n%-22s %-9s %12s  %-18s %12s %8s  %s\n' \
  "echo ($CLIENTS clients)" unit tide peer "peer value" ratio bar
# row LABEL UNIT TIDE PEER PEERVAL HIGHER_IS_BETTER BAR
row() {
  local ratio="n/a" verdict=""
  if [ -n "$3" ] && [ -n "$5" ]; then
    ratio=$(awk -v a="$3" -v b="$5" -v h="$6" \
      'BEGIN { if (h) printf "%.2fx", a / b; else printf "%.2fx", b / a }')
    if [ -n "$7" ]; then
      if awk -v r="${ratio%x}" -v m="$7" 'BEGIN { exit !(r >= m) }'; then
        verdict=">=$7x PASS"
      else
        verdict=">=$7x FAIL"
        fails=$((fails + 1))
      fi
    fi
  fi
  printf '%-22s %-9s %12s  %-18s %12s %8s  %s\n' "$1" "$2" "${3:-n/a}" \
    "$4" "${5:-n/a}" "$ratio" "$verdict"
}
t_mps=$(median tide messages_per_s)
t_cpu=$(median tide cpu_us_per_msg)
row "round trips" msg/s "$t_mps" "node net" "$(median node messages_per_s)" 1 1.5
row "round trips" msg/s "$t_mps" "asyncio streams" "$(median asyncio messages_per_s)" 1 2
row "CPU per round trip" "us" "$t_cpu" "node net" "$(median node cpu_us_per_msg)" 0 ""
row "CPU per round trip" "us" "$t_cpu" "asyncio streams" "$(median asyncio cpu_us_per_msg)" 0 ""
echo
echo "ratio: how many times better tide is (higher msg/s, lower CPU time)."
echo "CPU per round trip: user + system time of server and client together,"
echo "  divided by every round trip of the run; less sensitive to a busy"
echo "  machine than msg/s.  Server and client are pinned to separate cores"
echo "  when BENCH_PIN=1 and the machine has two."
[ "$errors" -gt 0 ] && exit 1
[ "${BENCH_STRICT:-0}" = 1 ] && [ "$fails" -gt 0 ] && exit 1
exit 0
