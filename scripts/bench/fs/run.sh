#!/usr/bin/env bash
# The fs benchmark: write 1,000 files of 4 KiB and read them back, all
# concurrently, on a tmpfs (/dev/shm), for tide (tide.fs), Node.js
# (fs.promises), Python asyncio (asyncio.to_thread) and plain blocking Lua
# io (the floor: no concurrency, no thread pool).  Each program runs R
# rounds after a warm-up round and reports files/s (one write plus one read
# per file); each program runs BENCH_REPEAT times and the median is shown.
#
# The bar (issue 4): tide at least 1.5x Node.js and 1.3x asyncio.
#
# Settings: TIDE, LUA, NODE, PYTHON (programs), BENCH_REPEAT=3,
# FS_FILES=1000, FS_ROUNDS=20, FS_DIR=/dev/shm, BENCH_QUICK=1 (fewer
# rounds, for a validation run).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

TIDE=${TIDE:-$root/build/tide}
LUA=${LUA:-$(command -v lua5.4 || true)}
NODE=${NODE:-$(command -v node || command -v nodejs || true)}
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
  else PYTHON=$(command -v python3 || true); fi
fi
REPEAT=${BENCH_REPEAT:-3}
FILES=${FS_FILES:-1000}
ROUNDS=${FS_ROUNDS:-20}
DIR=${FS_DIR:-/dev/shm}
[ "${BENCH_QUICK:-0}" = 1 ] && ROUNDS=$(( (ROUNDS + 9) / 10 ))

if [ ! -x "$TIDE" ]; then
  echo "fs bench: $TIDE is not built (run make, or set TIDE=path)" >&2
  exit 2
fi
[ -d "$DIR" ] && [ -w "$DIR" ] || { echo "fs bench: $DIR is not writable" >&2; exit 2; }

# median_of KEY CMD...: run CMD $REPEAT times, print the median of KEY=.
median_of() {
  local key=$1 i out v
  shift
  local vals=()
  for ((i = 0; i < REPEAT; i++)); do
    if ! out=$("$@" "$FILES" "$ROUNDS" "$DIR" 2>&1); then
      echo "fs bench: failed: $* ($out)" >&2
      return 1
    fi
    v=$(printf '%s\n' "$out" | sed -n "s/^$key=//p")
    [ -n "$v" ] && vals+=("$v")
  done
  [ ${#vals[@]} -gt 0 ] || return 1
  printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 }
    END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo "fs bench: $FILES files x 4 KiB, $ROUNDS rounds, in $DIR," \
     "median of $REPEAT runs (about 30 s)" >&2
declare -A rate
names=(tide node asyncio lua-io)
rate[tide]=$(median_of files_per_s "$TIDE" "$here/tide.lua")
[ -n "$NODE" ] && rate[node]=$(median_of files_per_s "$NODE" "$here/node.js")
[ -n "$PYTHON" ] && rate[asyncio]=$(median_of files_per_s "$PYTHON" "$here/asyncio.py")
[ -n "$LUA" ] && rate[lua-io]=$(median_of files_per_s "$LUA" "$here/blocking.lua")

printf '\n== fs: write + read back %s files of 4 KiB concurrently (%s)\n' \
       "$FILES" "$DIR"
printf 'tide %s' "$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')"
[ -n "$NODE" ] && printf ', node %s' "$("$NODE" --version 2>/dev/null)"
[ -n "$PYTHON" ] && printf ', %s' "$("$PYTHON" --version 2>&1)"
[ -n "$LUA" ] && printf ', %s' "$("$LUA" -v 2>&1 | awk '{ print $1, $2 }')"
printf '; %s CPUs; median of %s runs\n\n' "$(nproc)" "$REPEAT"
printf '%-10s %14s %14s  %s\n' program files/s "tide vs it" bar
fail=0
for n in "${names[@]}"; do
  v=${rate[$n]:-}
  if [ -z "$v" ]; then
    printf '%-10s %14s %14s\n' "$n" "skipped" ""
    continue
  fi
  ratio="" bar="" verdict=""
  if [ "$n" != tide ] && [ -n "${rate[tide]}" ]; then
    ratio=$(awk -v a="${rate[tide]}" -v b="$v" 'BEGIN { printf "%.2fx", a / b }')
    case $n in
      node) bar=1.5 ;;
      asyncio) bar=1.3 ;;
      lua-io) bar="" ;;
    esac
    if [ -n "$bar" ]; then
      if awk -v a="${rate[tide]}" -v b="$v" -v m="$bar" 'BEGIN { exit !(a / b >= m) }'; then
        verdict=">= ${bar}x: met"
      else
        verdict=">= ${bar}x: NOT MET"
        fail=1
      fi
    else
      verdict="(floor: blocking, no concurrency)"
    fi
  fi
  printf '%-10s %14.0f %14s  %s\n' "$n" "$v" "$ratio" "$verdict"
done
[ "${BENCH_STRICT:-0}" = 1 ] && exit $fail
exit 0
