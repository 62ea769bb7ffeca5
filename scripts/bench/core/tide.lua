-- The engine benchmark, tide side.  Usage:
--   tide tide.lua spawn  N      spawn N tasks, then await each
--   tide tide.lua switch N      N task switches: two tasks ping-pong
--                               through tide.sleep(0)
--   tide tide.lua sleep  N S    N tasks sleep S seconds concurrently
-- Prints key=value figures (see scripts/bench/core/run.sh).  spawn and
-- switch first run a tenth of the work untimed, like the peers do, so every
-- runtime is measured warm.

local mode, n, secs = arg[1], tonumber(arg[2]), tonumber(arg[3] or "1")
local now, spawn, await, sleep = tide.now, tide.spawn, tide.await, tide.sleep

local function body(i) return i end

local function spawn_await(count)
  local tasks = {}
  for i = 1, count do tasks[i] = spawn(body, i) end
  for i = 1, count do await(tasks[i]) end
end

local function player(rounds)
  for _ = 1, rounds do sleep(0) end
end

-- Two tasks each sleep(0) count/2 times; with both ready, every sleep(0)
-- hands the turn to the other: count switches in all.
local function switch(count)
  local a = spawn(player, count // 2)
  local b = spawn(player, count // 2)
  await(a)
  await(b)
end

local function sleeper(s) sleep(s) end

if mode == "spawn" then
  spawn_await(n // 10)
  local t0 = now()
  spawn_await(n)
  local dt = now() - t0
  print(("spawn_await_per_s=%.1f"):format(n / dt))
  print(("spawn_await_ns=%.1f"):format(dt * 1e9 / n))
elseif mode == "switch" then
  switch(n // 10)
  local t0 = now()
  switch(n)
  local dt = now() - t0
  print(("switch_ns=%.2f"):format(dt * 1e9 / n))
elseif mode == "sleep" then
  local t0 = now()
  local tasks = {}
  for i = 1, n do tasks[i] = spawn(sleeper, secs) end
  for i = 1, n do await(tasks[i]) end
  print(("sleep_wall_s=%.4f"):format(now() - t0))
  print(("sleepers=%d"):format(n))
else
  io.stderr:write("usage: tide tide.lua spawn|switch|sleep N [seconds]\n")
  os.exit(2)
end
