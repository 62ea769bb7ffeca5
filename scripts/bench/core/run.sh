#!/usr/bin/env bash
# The engine benchmark (issue 2): task spawn+await, task switches, many
# concurrent sleepers and start-up, for tide against Node.js, Python asyncio
# and the floor of plain Lua coroutines under lua5.4.  Prints one table with
# the ratios and the issue's bars (PASS/FAIL).  See docs/benchmarks.md.
#
#   scripts/bench/core/run.sh               # the issue's sizes
#   BENCH_QUICK=1 scripts/bench/core/run.sh # a tenth of them, to check
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

n_spawn=$(bench_scale 100000)
n_switch=$(bench_scale 1000000)
n_sleep=$(bench_scale 100000)
secs=1 # how long each sleeper sleeps

bench_log "core: tide, lua5.4 floor, node, asyncio (about a minute or two)"

# tide, lua5.4 and asyncio run on one thread: pinned.  Node.js is not pinned:
# its garbage collector works on helper threads, and pinning would charge
# their work to the main thread.
#
# spawn+await is the figure this machine's drift moves most, and its bar is
# a ratio to Node.js: its runs alternate, one of each program per round, so
# the medians compare runs taken in the same minutes.  Each run is short, so
# the rounds are 2 x BENCH_REPEAT + 1.
spawn_rounds=$((2 * BENCH_REPEAT + 1))
for ((round = 1; round <= spawn_rounds; round++)); do
  more=()
  [ "$round" -gt 1 ] && more=(--append)
  BENCH_REPEAT=1 bench_run tide.spawn --pin "${more[@]}" -- \
    "$TIDE" "$here/tide.lua" spawn "$n_spawn"
  [ -n "$NODE" ] && BENCH_REPEAT=1 bench_run node.spawn "${more[@]}" -- \
    "$NODE" "$here/node.js" spawn "$n_spawn"
  [ -n "$LUA" ] && BENCH_REPEAT=1 bench_run lua.sched --pin "${more[@]}" -- \
    "$LUA" "$here/floor.lua" schedule "$n_spawn"
done
bench_run tide.switch --pin -- "$TIDE" "$here/tide.lua" switch "$n_switch"
bench_run tide.sleep --pin -- "$TIDE" "$here/tide.lua" sleep "$n_sleep" "$secs"
bench_run tide.sleep0 --pin -- "$TIDE" "$here/tide.lua" sleep 0 "$secs"
bench_startup tide.start --pin -- "$TIDE" "$here/empty.lua"
if [ -n "$LUA" ]; then
  bench_run lua.spawn --pin -- "$LUA" "$here/floor.lua" spawn "$n_spawn"
  bench_run lua.switch --pin -- "$LUA" "$here/floor.lua" switch "$n_switch"
  bench_run lua.sleep --pin -- "$LUA" "$here/floor.lua" suspend "$n_sleep"
  bench_run lua.sleep0 --pin -- "$LUA" "$here/floor.lua" suspend 0
  bench_startup lua.start --pin -- "$LUA" -e ''
fi
if [ -n "$NODE" ]; then
  bench_run node.switch -- "$NODE" "$here/node.js" switch "$n_switch"
  bench_run node.sleep -- "$NODE" "$here/node.js" sleep "$n_sleep" "$secs"
  bench_run node.sleep0 -- "$NODE" "$here/node.js" sleep 0 "$secs"
  bench_startup node.start -- "$NODE" -e ''
fi
if [ -n "$PYTHON" ]; then
  bench_run py.spawn --pin -- "$PYTHON" "$here/asyncio.py" spawn "$n_spawn"
  bench_run py.switch --pin -- "$PYTHON" "$here/asyncio.py" switch "$n_switch"
  bench_run py.sleep --pin -- "$PYTHON" "$here/asyncio.py" sleep "$n_sleep" "$secs"
  bench_run py.sleep0 --pin -- "$PYTHON" "$here/asyncio.py" sleep 0 "$secs"
  bench_startup py.start --pin -- "$PYTHON" -c ''
fi

# Peak RSS per sleeping task: (peak RSS with n sleepers - peak RSS of the
# same script with none) / n, in bytes.
per_task() {
  bench_calc '(a - b) * 1024 / n' \
    a="$(bench_get "$1.sleep" rss_kb)" b="$(bench_get "$1.sleep0" rss_kb)" \
    n="$n_sleep"
}
rss_tide=$(per_task tide)
rss_node=$(per_task node)
rss_py=$(per_task py)
rss_lua=$(per_task lua)

g() { bench_get "$@"; }

bench_title "core: the engine"
bench_row "spawn+await $n_spawn tasks" tasks/s "$(g tide.spawn spawn_await_per_s)" \
  node "$(g node.spawn spawn_await_per_s)" "ratio>=1.3"
bench_row "spawn+await $n_spawn tasks" tasks/s "$(g tide.spawn spawn_await_per_s)" \
  asyncio "$(g py.spawn spawn_await_per_s)" "ratio>=10"
bench_row "spawn+await $n_spawn tasks" tasks/s "$(g tide.spawn spawn_await_per_s)" \
  "lua5.4 create+resume" "$(g lua.spawn spawn_await_per_s)"
bench_row "spawn+await $n_spawn tasks" tasks/s "$(g tide.spawn spawn_await_per_s)" \
  "lua5.4 least scheduler" "$(g lua.sched spawn_await_per_s)"
bench_row "switch x$n_switch (sleep(0))" ns "$(g tide.switch switch_ns)" \
  "lua5.4 resume/yield" "$(g lua.switch switch_ns)" "ratio<=1.5"
bench_row "switch x$n_switch (sleep(0))" ns "$(g tide.switch switch_ns)" \
  "node promise hand-over" "$(g node.switch switch_ns)"
bench_row "switch x$n_switch (sleep(0))" ns "$(g tide.switch switch_ns)" \
  "node setImmediate" "$(g node.switch switch_immediate_ns)"
bench_row "switch x$n_switch (sleep(0))" ns "$(g tide.switch switch_ns)" \
  "asyncio sleep(0)" "$(g py.switch switch_ns)"
bench_row "$n_sleep sleepers: wall" s "$(g tide.sleep sleep_wall_s)" \
  "the ${secs} s sleep" "$secs" "ratio<=1.15"
bench_row "$n_sleep sleepers: wall" s "$(g tide.sleep sleep_wall_s)" \
  node "$(g node.sleep sleep_wall_s)"
bench_row "$n_sleep sleepers: wall" s "$(g tide.sleep sleep_wall_s)" \
  asyncio "$(g py.sleep sleep_wall_s)"
bench_row "$n_sleep sleepers: RSS/task" B "$rss_tide" node "$rss_node" "value<=800"
bench_row "$n_sleep sleepers: RSS/task" B "$rss_tide" asyncio "$rss_py"
bench_row "$n_sleep sleepers: RSS/task" B "$rss_tide" \
  "lua5.4 suspended coroutine" "$rss_lua"
bench_row "startup, empty script" ms "$(g tide.start startup_ms)" \
  "lua5.4 -e ''" "$(g lua.start startup_ms)" "ratio<=2"
bench_row "startup, empty script" ms "$(g tide.start startup_ms)" \
  "node -e ''" "$(g node.start startup_ms)"
bench_row "startup, empty script" ms "$(g tide.start startup_ms)" \
  "python3 -c ''" "$(g py.start startup_ms)"
bench_note "Rows with a bar are the issue's; the others are for reference."
bench_note "spawn, switch: timed after an untimed warm-up of a tenth of the work;"
bench_note "  spawn: tide, node and the least scheduler alternate over $spawn_rounds rounds;"
bench_note "  lua5.4 least scheduler: a table per task run in turn on one reused"
bench_note "  coroutine, results kept (floor.lua schedule);"
bench_note "  lua5.4 is timed with os.clock (CPU time), the others with a wall clock."
bench_note "sleepers: wall time from the first spawn to the last await; RSS/task ="
bench_note "  (peak RSS with $n_sleep sleepers - peak RSS with none) / $n_sleep."
bench_note "  lua5.4 suspended coroutine: the same for bare coroutines, each"
bench_note "  suspended in a function that yielded (no task record, no timer)."
bench_note "startup: $(bench_startup_method)."
bench_note "Node.js is not pinned to a core (its GC uses helper threads); the others are."
bench_table
bench_exit
