#!/usr/bin/env bash
# The fs benchmark (issue 4): write 1,000 files of 4 KiB and read them back,
# all concurrently, on a tmpfs (/dev/shm), for tide (tide.fs), Node.js
# (fs.promises), Python asyncio (asyncio.to_thread) and plain blocking Lua
# io (the floor: one file after the other, no thread pool).  Each program
# runs FS_ROUNDS rounds after an untimed warm-up round and reports files/s
# (one write and one read per file).  The bars: tide at least 1.5x Node.js
# and 1.3x asyncio.
#
#   scripts/bench/fs/run.sh                # 20 rounds (about 30 s)
#   BENCH_QUICK=1 scripts/bench/fs/run.sh  # 2 rounds, to check
#
# Settings: those of lib.sh, plus FS_FILES=1000, FS_ROUNDS=20 and
# FS_DIR=/dev/shm.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bench_init

files=${FS_FILES:-1000}
rounds=$(bench_scale "${FS_ROUNDS:-20}")
[ "$rounds" -ge 1 ] || rounds=1
dir=${FS_DIR:-/dev/shm}
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
  bench_log "fs: $dir is not a writable directory (set FS_DIR)"
  exit 2
fi

bench_log "fs: tide, node, asyncio, lua5.4 io; $files files x $rounds rounds in $dir"

# Nothing is pinned: every runtime here uses a thread pool (tide's and
# Node.js's libuv pool, asyncio's executor), and so would the floor's
# kernel work if it could.
bench_run tide -- "$TIDE" "$here/tide.lua" "$files" "$rounds" "$dir"
[ -n "$NODE" ] &&
  bench_run node -- "$NODE" "$here/node.js" "$files" "$rounds" "$dir"
[ -n "$PYTHON" ] &&
  bench_run py -- "$PYTHON" "$here/asyncio.py" "$files" "$rounds" "$dir"
[ -n "$LUA" ] &&
  bench_run lua -- "$LUA" "$here/blocking.lua" "$files" "$rounds" "$dir"

g() { bench_get "$@"; }

fig="write+read $files x 4 KiB"
bench_title "fs: files through the thread pool"
bench_row "$fig" files/s "$(g tide files_per_s)" \
  "node fs.promises" "$(g node files_per_s)" "ratio>=1.5"
bench_row "$fig" files/s "$(g tide files_per_s)" \
  "asyncio.to_thread" "$(g py files_per_s)" "ratio>=1.3"
bench_row "$fig" files/s "$(g tide files_per_s)" \
  "lua5.4 io (blocking)" "$(g lua files_per_s)"
bench_row "one round" ms "$(g tide round_ms)" \
  "node fs.promises" "$(g node round_ms)"
bench_row "one round" ms "$(g tide round_ms)" \
  "asyncio.to_thread" "$(g py round_ms)"
bench_note "Rows with a bar are the issue's; the others are for reference."
bench_note "Each program: $rounds timed rounds after a warm-up round; in a round"
bench_note "  every file is written (all concurrently), then every file is read."
bench_note "tide does each read_file/write_file as one thread-pool job; the floor"
bench_note "  is plain io.open/read/write/close with no concurrency."
bench_table
bench_exit
