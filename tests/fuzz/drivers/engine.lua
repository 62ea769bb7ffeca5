-- Fuzz driver for the engine: the scheduler, cancellation, deadlines,
-- futures and the combinators built on watches (gather, race, wait,
-- wait_for, shield, group), plus runtime waits inside user coroutines.
--
-- The input is a byte script.  The first byte picks how many workers run;
-- then each worker gets a program (a length byte and that many op bytes);
-- whatever is left drives the main task, which cancels workers at the
-- points the bytes choose.  Every op byte is `op + 16 * k`.
--
-- Invariants (a failed assert is a bug in tide): every worker ends; a
-- worker that ends normally returns its own index; a worker that fails
-- does so only with ECANCELED, ETIMEDOUT or the failure a program put in a
-- future on purpose; afterwards no task, timer, handle or request is left
-- beyond what existed when the driver started.
--
-- Runs under the libFuzzer harness (fuzz_lua.c), from the regression spec
-- (tests/lua/fuzz_corpus_spec.lua) and by hand:
--   build/tide tests/fuzz/drivers/engine.lua < input
local data = ... or io.read("a")

local FAIL = "fuzz-failure"
local UNIT = 0.0005 -- seconds: sleeps and deadlines are 0..3 units

local base = tide._stats()
local pos, len = 0, #data
local function byte()
  pos = pos + 1
  return data:byte(pos) or 0
end

local function expected(e)
  return e == FAIL or tide.is_error(e, "ECANCELED")
      or tide.is_error(e, "ETIMEDOUT")
end

-- Re-raise anything a pcall caught that is not an expected failure.
local function check(ok, e)
  if not ok and not expected(e) then error(e, 0) end
  return ok
end

local futures = {}
for i = 1, 4 do futures[i] = tide.future() end
local workers, extras = {}, {}
local nworkers

local function small(k) return (k % 4) * UNIT end

-- Tasks the programs spawn themselves.  tide.wait never cancels its tasks,
-- so a program interrupted inside it leaves them running, legitimately:
-- the end awaits them all.  Children the combinators spawn are theirs to
-- cancel; those only get a few turns to finish.
local function spawn(...)
  local t = tide.spawn(...)
  extras[#extras + 1] = t
  return t
end

local function sleeper(k)
  return function()
    tide.sleep(small(k))
    return k
  end
end

local ops = {}

ops[0] = function() tide.sleep(0) end
ops[1] = function(k) tide.sleep(small(k)) end
ops[2] = function(k) futures[k % 4 + 1]:await() end
ops[3] = function(k)
  local f = futures[k % 4 + 1]
  if not f:done() then
    if k >= 8 then f:fail(FAIL) else f:set(k) end
  end
end
ops[4] = function(k)
  local ok, e = pcall(tide.timeout, small(k), tide.sleep, small(k // 4))
  check(ok, e)
end
ops[5] = function(k, self)
  local t = workers[k % nworkers + 1]
  if t then t:cancel("fuzz") end
  -- Cancelling oneself is delivered at the next await point.
  if t == self then tide.sleep(0) end
end
ops[6] = function(k)
  local a, b = tide.gather(sleeper(k), sleeper(k // 4))
  assert(a == k and b == k // 4, "gather lost a result")
end
ops[7] = function(k)
  local r = tide.race(sleeper(k), sleeper(k + 1))
  assert(r == k or r == k + 1, "race returned a stranger's result")
end
ops[8] = function(k)
  local t = spawn(sleeper(k + 1))
  local ok, e = pcall(tide.wait_for, t, small(k // 4))
  check(ok, e)
  -- When the worker itself is interrupted, wait_for cancels the task but
  -- cannot wait for it; it finishes later, and the end checks see it.
  if ok then
    assert(t:done(), "wait_for returned before its task finished")
    assert(e == k + 1, "wait_for lost the result")
  end
end
ops[9] = function(k)
  local list = {spawn(sleeper(k)), spawn(sleeper(k // 4))}
  local mode = ({"all", "first", "error", "all"})[k % 4 + 1]
  local done, pending = tide.wait(list, {timeout = small(k // 4),
                                         mode = mode})
  assert(#done + #pending == 2, "wait lost a task")
  for _, t in ipairs(done) do assert(t:done()) end
  for _, t in ipairs(pending) do t:cancel() end
  for _, t in ipairs(list) do check(pcall(tide.shield, t)) end
end
ops[10] = function(k, _, i)
  -- Await an earlier worker without cancelling it: only earlier ones, so
  -- the programs cannot build an await cycle (a deadlock, not a bug).
  if i > 1 then
    local t = workers[k % (i - 1) + 1]
    local ok, e = pcall(tide.shield, t)
    check(ok, e)
  end
end
ops[11] = function(k)
  local ok, e = pcall(tide.group, function(g)
    g:spawn(sleeper(k))
    g:spawn(function()
      tide.sleep(small(k // 4))
      if k % 2 == 1 then error(FAIL, 0) end
    end)
  end)
  check(ok, e)
end
ops[12] = function(k)
  spawn(sleeper(k))
end
ops[13] = function(k)
  local gen = coroutine.wrap(function()
    tide.sleep(0)
    coroutine.yield(k)
    tide.sleep(small(k))
    coroutine.yield(k + 1)
  end)
  assert(gen() == k and gen() == k + 1, "a nested coroutine lost a value")
end
ops[14] = function()
  collectgarbage("step")
end
ops[15] = function(k)
  local ok, e = pcall(tide.timeout, small(k), tide.timeout, small(k // 4),
                      tide.sleep, UNIT)
  check(ok, e)
end

local function worker(i, prog)
  local self = tide.current()
  for j = 1, #prog do
    local b = prog:byte(j)
    ops[b % 16](b // 16, self, i)
  end
  return i
end

nworkers = 1 + byte() % 10
for i = 1, nworkers do
  local n = byte() % 24
  local prog = data:sub(pos + 1, pos + n)
  pos = pos + n
  workers[i] = tide.spawn(worker, i, prog)
end

-- The rest of the input: the main task's schedule of cancels and yields.
while pos < len do
  local b = byte()
  if b % 3 == 0 then
    workers[(b // 3) % nworkers + 1]:cancel("fuzz")
  elseif b % 3 == 1 then
    tide.sleep(0)
  else
    tide.sleep(UNIT)
  end
end

-- Resolve every future so no program waits for ever, then collect.
for _, f in ipairs(futures) do
  if not f:done() then f:set(0) end
end
for i, t in ipairs(workers) do
  local ok, r = pcall(tide.await, t)
  check(ok, r)
  if ok then assert(r == i, "a worker returned a wrong value") end
  assert(t:done(), "an awaited worker is not done")
end
local i = 1
while extras[i] do -- awaiting may not add more, but be safe
  check(pcall(tide.await, extras[i]))
  i = i + 1
end

-- Cancelled combinators settle their children within a few turns.
for _ = 1, 4 do tide.sleep(0) end
local s = tide._stats()
assert(s.tasks == base.tasks, ("tasks left: %d, was %d")
       :format(s.tasks, base.tasks))
assert(s.timers == base.timers, ("timers left: %d, was %d")
       :format(s.timers, base.timers))
assert(s.handles == base.handles, ("handles left: %d, was %d")
       :format(s.handles, base.handles))
assert(s.requests == base.requests, ("requests left: %d, was %d")
       :format(s.requests, base.requests))
return true
