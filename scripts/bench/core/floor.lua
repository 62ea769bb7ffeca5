-- The floor under the engine benchmark, run with a stock lua5.4: what plain
-- coroutines cost with no scheduler, no event loop and no task record.
--   lua5.4 floor.lua spawn  N   N bare coroutine.create + resume to
--                               completion (the least a task can cost)
--   lua5.4 floor.lua switch N   N coroutine.resume/coroutine.yield pairs
--                               (the least a task switch can cost)
--   lua5.4 floor.lua schedule N spawn+await done by the least scheduler
--                               plain Lua can have: a table per task, run
--                               in turn on one reused coroutine
--   lua5.4 floor.lua suspend N  N coroutines suspended at once, each in a
--                               function that yielded, as a sleeping task
--                               is (its peak RSS, less that of N = 0, is
--                               the least memory a sleeping task can take)
-- Prints the same keys as tide.lua.  Stock Lua has no wall clock finer
-- than a second, so this uses os.clock() (CPU time), which for a
-- single-threaded loop that never blocks is the wall time.

local mode, n = arg[1], tonumber(arg[2])
local create, resume, yield = coroutine.create, coroutine.resume,
  coroutine.yield
local clock = os.clock

local function body(i) return i end

local function spawn(count)
  for i = 1, count do
    local co = create(body)
    resume(co, i)
  end
end

-- The least scheduler: "spawn" records the function and argument, one
-- pooled coroutine runs each record in turn, "await" reads the result.
local worker = create(function()
  local f, a = yield()
  while true do f, a = yield(f(a)) end
end)
resume(worker)

local function schedule(count)
  local tasks = {}
  for i = 1, count do tasks[i] = {body, i} end
  for i = 1, count do
    local t = tasks[i]
    local _, r = resume(worker, t[1], t[2])
    t[3] = r
  end
  for i = 1, count do local _ = tasks[i][3] end
end

local function switch(count)
  local co = create(function()
    while true do yield() end
  end)
  for _ = 1, count do resume(co) end
end

if mode == "spawn" or mode == "schedule" then
  local run = mode == "spawn" and spawn or schedule
  run(n // 10)
  local t0 = clock()
  run(n)
  local dt = clock() - t0
  print(("spawn_await_per_s=%.1f"):format(n / dt))
  print(("spawn_await_ns=%.1f"):format(dt * 1e9 / n))
elseif mode == "switch" then
  switch(n // 10)
  local t0 = clock()
  switch(n)
  local dt = clock() - t0
  print(("switch_ns=%.2f"):format(dt * 1e9 / n))
elseif mode == "suspend" then
  local cos = {}
  local function sleeper(s) yield(s) end
  for i = 1, n do
    local co = create(sleeper)
    resume(co, 1)
    cos[i] = co
  end
  print(("suspended=%d"):format(#cos))
else
  io.stderr:write("usage: lua5.4 floor.lua spawn|schedule|switch|suspend N\n")
  os.exit(2)
end
