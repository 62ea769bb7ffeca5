#!/bin/sh
# Run every libFuzzer target built in BUILD/fuzz for SECONDS each, starting
# from the committed seed corpus tests/fuzz/corpus/<target>/.  New inputs go
# to BUILD/fuzz-corpus/<target>/ (not committed; copy the interesting ones
# into the seed corpus by hand), crashes to BUILD/fuzz-artifacts/.  Prints
# one line per target and exits non-zero if any target found a crash, a
# leak or a hang.
#   tests/fuzz/run.sh [BUILD [SECONDS [TARGET...]]]
set -u
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
shift 2 2>/dev/null || shift $#
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
targets=${*:-$(cd "$BUILD/fuzz" && ls fuzz_* | sed 's/^fuzz_//')}
mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"
status=0
printf '%-12s %8s %10s %8s %7s  %s\n' target seconds execs exec/s cov result
for t in $targets; do
  seeds="tests/fuzz/corpus/$t"
  work="$BUILD/fuzz-corpus/$t"
  log="$BUILD/fuzz-logs/$t.log"
  mkdir -p "$work" "$seeds"
  # -timeout: an input running over 10 s is a hang; -rss_limit_mb keeps a
  # runaway input from taking the machine.
  "$BUILD/fuzz/fuzz_$t" "$work" "$seeds" -max_total_time="$SECONDS_EACH" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/fuzz-artifacts/$t-" >"$log" 2>&1
  rc=$?
  # The log holds fuzzed bytes: read it as text (-a) and take the last
  # figures.
  execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 |
    tr -dc 0-9)
  rate=$(grep -a '^stat::average_exec_per_sec:' "$log" | tail -1 |
    tr -dc 0-9)
  cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1 | tr -dc 0-9)
  if [ $rc -eq 0 ]; then result=ok; else result="FAILED (see $log)"; status=1; fi
  printf '%-12s %8s %10s %8s %7s  %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "$result"
done
exit $status
