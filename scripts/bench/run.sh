#!/usr/bin/env bash
# Run every benchmark workload (scripts/bench/*/run.sh), or the ones named
# on the command line, and print their tables one after the other.
#
#   scripts/bench/run.sh              # everything
#   scripts/bench/run.sh core echo    # just these
#   BENCH_QUICK=1 scripts/bench/run.sh core   # sizes / 10, for a quick check
#
# Settings are the environment variables described in lib.sh; they pass
# through to each workload.  Exit status: 1 if a workload failed to run (or,
# with BENCH_STRICT=1, if one of its bars failed), else 0.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

shopt -s nullglob

workloads() {
  local d
  for d in "$here"/*/run.sh; do
    d=${d%/run.sh}
    printf '%s\n' "${d##*/}"
  done
}

usage() {
  echo "usage: $0 [workload...]"
  echo "workloads:" $(workloads)
}

case ${1:-} in -h|--help) usage; exit 0 ;; esac

if [ $# -eq 0 ]; then
  set -- $(workloads)
  if [ $# -eq 0 ]; then
    echo "bench: no workloads under $here" >&2
    exit 1
  fi
fi

status=0
for w in "$@"; do
  if [ ! -f "$here/$w/run.sh" ]; then
    echo "bench: no workload '$w'" >&2
    usage >&2
    status=1
    continue
  fi
  if ! bash "$here/$w/run.sh"; then
    echo "bench: workload '$w' failed" >&2
    status=1
  fi
done
exit $status
