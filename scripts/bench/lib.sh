# Shared functions for the benchmark scripts: every scripts/bench/<workload>/
# run.sh sources this file (bash), runs the same workload under tide and its
# peers with bench_run, and prints one table with bench_row + bench_table.
#
#   . "$(dirname "$0")/../lib.sh"
#   bench_init
#   bench_run tide --pin -- "$TIDE" "$here/tide.lua" 100000
#   bench_run node       -- "$NODE" "$here/node.js" 100000
#   bench_title "my workload"
#   bench_row "requests" "req/s" "$(bench_get tide req_per_s)" \
#             node "$(bench_get node req_per_s)" "ratio>=1.3"
#   bench_table
#
# A workload script prints its figures on stdout as `key=value` lines (other
# lines are ignored); bench_run adds `wall_s` (wall time of the process) and
# `rss_kb` (its peak resident set size) from GNU time.  Each command runs
# BENCH_REPEAT times and bench_get returns the MEDIAN of the runs: the median
# needs no knowledge of whether higher or lower is better and is not fooled
# by one lucky or unlucky run.
#
# Settings (environment):
#   TIDE, LUA, NODE, PYTHON  the programs (default: build/tide under the
#                            repository, lua5.4, node, /usr/bin/python3 or
#                            python3 from PATH); a missing peer is skipped
#   BENCH_REPEAT=3           runs per command (the median is reported)
#   BENCH_PIN=1              pin single-threaded runtimes to one core
#   BENCH_CPU=0              the core they are pinned to
#   BENCH_QUICK=0            1 divides workload sizes by 10 (validation runs)
#   BENCH_STARTUP_RUNS=200   runs per startup measurement
#   BENCH_STRICT=0           1 makes run.sh exit 1 when a bar fails
#   BENCH_VERBOSE=0          1 prints every command and its raw figures

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_PIN=${BENCH_PIN:-1}
BENCH_CPU=${BENCH_CPU:-0}
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_STARTUP_RUNS=${BENCH_STARTUP_RUNS:-200}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_VERBOSE=${BENCH_VERBOSE:-0}
BENCH_FAILS=0  # bars that failed
BENCH_ERRORS=0 # commands that failed to run
BENCH_TIME=/usr/bin/time

bench_log() { printf '%s\n' "$*" >&2; }

# bench_find_tool VAR CANDIDATE...: set VAR to the absolute path of the
# first candidate that runs (an explicit value of VAR wins), or to "".
bench_find_tool() {
  local var=$1 cand path
  shift
  if [ -n "${!var:-}" ]; then
    path=$(command -v -- "${!var}" 2>/dev/null || true)
    [ -z "$path" ] && bench_log "bench: $var=${!var} not found; skipping it"
    printf -v "$var" '%s' "$path"
    return
  fi
  for cand in "$@"; do
    path=$(command -v -- "$cand" 2>/dev/null || true)
    if [ -n "$path" ]; then
      printf -v "$var" '%s' "$path"
      return
    fi
  done
  printf -v "$var" '%s' ""
}

# bench_init: find the programs, make a scratch directory (removed on exit)
# and check that GNU time is there.  Dies if tide itself is missing.
bench_init() {
  local tide=${TIDE:-build/tide}
  case $tide in /*) ;; *) tide=$BENCH_ROOT/$tide ;; esac
  if [ ! -x "$tide" ]; then
    bench_log "bench: $tide is not built (run make, or set TIDE=path)"
    exit 2
  fi
  TIDE=$tide
  bench_find_tool LUA lua5.4
  bench_find_tool NODE node nodejs
  if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
    PYTHON=/usr/bin/python3 # Debian's, not a per-user one
  fi
  bench_find_tool PYTHON python3
  if [ ! -x "$BENCH_TIME" ]; then
    bench_log "bench: GNU time ($BENCH_TIME) is missing: apt-get install time"
    exit 2
  fi
  if [ "$BENCH_PIN" = 1 ] && ! command -v taskset >/dev/null 2>&1; then
    bench_log "bench: taskset not found; running unpinned"
    BENCH_PIN=0
  fi
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tide-bench.XXXXXX")
  trap 'rm -rf "$BENCH_TMP"' EXIT
  : >"$BENCH_TMP/rows"
}

# bench_scale N: the workload size N, divided by 10 when BENCH_QUICK=1.
bench_scale() {
  if [ "$BENCH_QUICK" = 1 ]; then
    echo $(($1 / 10))
  else
    echo "$1"
  fi
}

# bench_run ID [--pin] [--append] -- CMD [ARG...]: run CMD BENCH_REPEAT times
# and record its key=value figures plus wall_s and rss_kb under ID.  --pin
# pins it to one core (use it for single-threaded runtimes only: pinning
# Node.js would also pin its garbage collector's helper threads).  --append
# adds to the runs ID already has instead of starting afresh, so a script can
# alternate the runs of tide and a peer (see core/run.sh).  If a run fails, its
# output is shown, the ID has no figures (its rows show n/a) and BENCH_ERRORS
# is counted up, so run.sh exits 1 at the end; the other runs go on.
bench_run() {
  local id=$1 pin=0 append=0 i out err tm
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --pin) pin=1; shift ;;
      --append) append=1; shift ;;
      --) shift; break ;;
      *) bench_log "bench_run: unknown option $1"; return 2 ;;
    esac
  done
  local -a prefix=()
  [ "$pin" = 1 ] && [ "$BENCH_PIN" = 1 ] && prefix=(taskset -c "$BENCH_CPU")
  out=$BENCH_TMP/$id.out
  err=$BENCH_TMP/$id.err
  tm=$BENCH_TMP/$id.time
  [ "$append" = 1 ] || rm -f "$BENCH_TMP/$id.samples"
  for ((i = 1; i <= BENCH_REPEAT; i++)); do
    [ "$BENCH_VERBOSE" = 1 ] && bench_log "bench: [$id $i/$BENCH_REPEAT] ${prefix[*]} $*"
    if ! "$BENCH_TIME" -o "$tm" -f '%e %M' "${prefix[@]}" "$@" >"$out" 2>"$err"; then
      bench_log "bench: $id failed: $*"
      sed 's/^/  | /' "$err" "$out" | tail -n 20 >&2
      rm -f "$BENCH_TMP/$id.samples"
      BENCH_ERRORS=$((BENCH_ERRORS + 1))
      return 0
    fi
    # GNU time writes "Command exited ..." lines first on failure; the
    # figures are always the last line.
    tail -n 1 "$tm" | awk '{ print "wall_s", $1; print "rss_kb", $2 }' \
      >>"$BENCH_TMP/$id.samples"
    sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\([-+]\{0,1\}[0-9.][-+0-9.eE]*\)[[:space:]]*$/\1 \2/p' \
      "$out" >>"$BENCH_TMP/$id.samples"
    [ "$BENCH_VERBOSE" = 1 ] && sed 's/^/  | /' "$out" >&2
  done
  return 0
}

# bench_startup ID [--pin] -- CMD [ARG...]: measure how long CMD takes to
# start and exit, over BENCH_STARTUP_RUNS runs; records startup_ms (the
# median run with hyperfine, which runs CMD without a shell in between;
# otherwise the mean of a loop of runs timed in one go).  Failures are
# handled as in bench_run.
bench_startup() {
  local id=$1 pin=0 csv t0 t1 i
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --pin) pin=1; shift ;;
      --) shift; break ;;
      *) bench_log "bench_startup: unknown option $1"; return 2 ;;
    esac
  done
  local -a prefix=()
  [ "$pin" = 1 ] && [ "$BENCH_PIN" = 1 ] && prefix=(taskset -c "$BENCH_CPU")
  rm -f "$BENCH_TMP/$id.samples"
  if ! "$@" >/dev/null 2>"$BENCH_TMP/$id.err"; then
    bench_log "bench: $id failed: $*"
    sed 's/^/  | /' "$BENCH_TMP/$id.err" >&2
    BENCH_ERRORS=$((BENCH_ERRORS + 1))
    return 0
  fi
  if command -v hyperfine >/dev/null 2>&1; then
    csv=$BENCH_TMP/$id.csv
    # -N runs the command directly, so no shell start-up is counted.
    if ! "${prefix[@]}" hyperfine -N --style none --warmup 10 \
         --runs "$BENCH_STARTUP_RUNS" --export-csv "$csv" \
         -- "$(printf '%q ' "$@")" >/dev/null 2>"$BENCH_TMP/$id.err"; then
      bench_log "bench: hyperfine failed for $id"
      sed 's/^/  | /' "$BENCH_TMP/$id.err" >&2
      BENCH_ERRORS=$((BENCH_ERRORS + 1))
      return 0
    fi
    # columns: command,mean,stddev,median,user,system,min,max (seconds)
    awk -F, 'NR == 2 { printf "startup_ms %.6f\n", $4 * 1000 }' "$csv" \
      >"$BENCH_TMP/$id.samples"
  else
    t0=$(date +%s%N)
    for ((i = 0; i < BENCH_STARTUP_RUNS; i++)); do
      "${prefix[@]}" "$@" >/dev/null 2>&1
    done
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" -v n="$BENCH_STARTUP_RUNS" \
      'BEGIN { printf "startup_ms %.6f\n", (b - a) / n / 1e6 }' \
      >"$BENCH_TMP/$id.samples"
  fi
}

# bench_startup_method: how bench_startup measures (for table notes).
bench_startup_method() {
  if command -v hyperfine >/dev/null 2>&1; then
    echo "hyperfine -N, median of $BENCH_STARTUP_RUNS runs"
  else
    echo "mean of a loop of $BENCH_STARTUP_RUNS runs (hyperfine not installed)"
  fi
}

# bench_get ID KEY: the median of KEY over the runs of ID ("" if none).
bench_get() {
  local f=$BENCH_TMP/$1.samples
  [ -f "$f" ] || return 0
  awk -v k="$2" '$1 == k { print $2 }' "$f" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) exit
      if (NR % 2) m = v[(NR + 1) / 2]
      else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.10g\n", m
    }'
}

# bench_calc EXPR NAME=VALUE...: evaluate an awk expression over the named
# values; prints "" if any value is empty (a skipped peer or failed run).
#   bench_calc '(n - z) * 1024 / c' n="$rss" z="$rss0" c=100000
bench_calc() {
  local expr=$1 kv
  local -a vars=()
  shift
  for kv in "$@"; do
    [ -z "${kv#*=}" ] && return 0
    vars+=(-v "$kv")
  done
  awk "${vars[@]}" "BEGIN { printf \"%.10g\\n\", ($expr) }"
}

# bench_title TEXT: start a new table.
bench_title() {
  BENCH_TITLE=$1
  : >"$BENCH_TMP/rows"
  : >"$BENCH_TMP/notes"
}

# bench_note TEXT: a line printed under the table.
bench_note() {
  printf '%s\n' "$*" >>"$BENCH_TMP/notes"
}

# bench_row FIGURE UNIT TIDE_VALUE PEER PEER_VALUE [BAR]: one table row.
# The ratio column is TIDE_VALUE / PEER_VALUE.  BAR, if given, is checked:
#   ratio>=X  ratio<=X   the ratio must be at least / at most X
#   value>=X  value<=X   tide's own figure must be at least / at most X
# A row whose values are missing shows n/a (and SKIP if it has a bar).
bench_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" \
    >>"$BENCH_TMP/rows"
}

# bench_table: print the table started by bench_title; adds the number of
# failed bars to BENCH_FAILS.
bench_table() {
  local fails
  printf '\n== %s\n' "$BENCH_TITLE"
  printf '%s\n' "$(bench_versions)"
  printf 'each figure is the median of %s run(s)\n' "$BENCH_REPEAT"
  echo "tide/peer = tide's figure / the peer's: for rates (unit */s) above 1"
  echo "means tide is faster; for costs (ns, ms, s, B) below 1 means tide is cheaper."
  awk -F'\t' -v failfile="$BENCH_TMP/fails" '
    function fmt(x,   a) {
      if (x == "") return "n/a"
      a = x < 0 ? -x : x
      if (a >= 1e9) return sprintf("%.3gG", x / 1e9)
      if (a >= 1e6) return sprintf("%.3gM", x / 1e6)
      if (a >= 1e4) return sprintf("%.3gk", x / 1e3)
      if (a >= 100) return sprintf("%.0f", x)
      return sprintf("%.3g", x)
    }
    {
      n++
      fig[n] = $1; unit[n] = $2; tv[n] = fmt($3); peer[n] = $4
      pv[n] = fmt($5); bar[n] = $6; verdict[n] = ""; ratio[n] = "n/a"
      have = ($3 != "" && $5 != "" && $5 + 0 != 0)
      if (have) { r = $3 / $5; ratio[n] = sprintf("%.2fx", r) }
      if ($6 != "") {
        kind = substr($6, 1, 5); op = substr($6, 6, 2); lim = substr($6, 8) + 0
        x = (kind == "value") ? $3 : (have ? r : "")
        if (x == "") verdict[n] = "SKIP"
        else if (op == ">=") verdict[n] = (x + 0 >= lim) ? "PASS" : "FAIL"
        else verdict[n] = (x + 0 <= lim) ? "PASS" : "FAIL"
        if (verdict[n] == "FAIL") fails++
        bar[n] = (kind == "value") ? op " " substr($6, 8) " " $2 : op " " substr($6, 8) "x"
      }
    }
    END {
      h[1] = "figure"; h[2] = "unit"; h[3] = "tide"; h[4] = "peer"
      h[5] = "peer value"; h[6] = "tide/peer"; h[7] = "bar"; h[8] = "verdict"
      for (c = 1; c <= 8; c++) w[c] = length(h[c])
      for (i = 1; i <= n; i++) {
        split(fig[i] SUBSEP unit[i] SUBSEP tv[i] SUBSEP peer[i] SUBSEP pv[i] \
              SUBSEP ratio[i] SUBSEP bar[i] SUBSEP verdict[i], col, SUBSEP)
        for (c = 1; c <= 8; c++) {
          cell[i, c] = col[c]
          if (length(col[c]) > w[c]) w[c] = length(col[c])
        }
      }
      line = ""
      for (c = 1; c <= 8; c++) {
        line = line sprintf(c <= 2 || c == 4 ? "%-*s" : "%*s", w[c], h[c])
        if (c < 8) line = line "  "
      }
      print line
      sep = ""
      for (c = 1; c <= 8; c++) { sep = sep sprintf("%*s", w[c], ""); if (c < 8) sep = sep "  " }
      gsub(/ /, "-", sep); print sep
      for (i = 1; i <= n; i++) {
        line = ""
        for (c = 1; c <= 8; c++) {
          line = line sprintf(c <= 2 || c == 4 ? "%-*s" : "%*s", w[c], cell[i, c])
          if (c < 8) line = line "  "
        }
        sub(/ +$/, "", line)
        print line
      }
      print fails + 0 > failfile
    }' "$BENCH_TMP/rows"
  fails=$(cat "$BENCH_TMP/fails")
  BENCH_FAILS=$((BENCH_FAILS + fails))
  if [ -s "$BENCH_TMP/notes" ]; then
    sed 's/^/  /' "$BENCH_TMP/notes"
  fi
  : >"$BENCH_TMP/rows"
  : >"$BENCH_TMP/notes"
}

# bench_versions: one line naming the programs compared, for the header.
bench_versions() {
  local v
  printf 'tide %s' "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo '?')"
  [ -n "$LUA" ] && printf ', %s' "$("$LUA" -v 2>&1 | awk '{ print $1, $2 }')"
  if [ -n "$NODE" ]; then
    v=$("$NODE" --version 2>/dev/null)
    printf ', node %s' "$v"
  fi
  [ -n "$PYTHON" ] && printf ', %s' "$("$PYTHON" --version 2>&1)"
  printf '; %s x%s; pinned: %s\n' \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)" \
    "$(nproc 2>/dev/null)" \
    "$([ "$BENCH_PIN" = 1 ] && echo "cpu $BENCH_CPU" || echo no)"
}

# bench_exit: end run.sh: exit 1 if a command failed to run, or if a bar
# failed and BENCH_STRICT=1; else 0.
bench_exit() {
  if [ "$BENCH_ERRORS" -gt 0 ]; then
    bench_log "bench: $BENCH_ERRORS command(s) failed to run"
    exit 1
  fi
  if [ "$BENCH_STRICT" = 1 ] && [ "$BENCH_FAILS" -gt 0 ]; then
    exit 1
  fi
  exit 0
}
