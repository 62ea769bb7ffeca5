-- The `tide` table: the C primitives of tide._core (sleep, spawn, await,
-- futures, deadlines, watches) plus the combinators written on top of them:
-- gather, race, wait, timeout, wait_for, group and async.

local C = require "tide._core"

local spawn, await, shield = C.spawn, C.await, C.shield
local new_watch, new_deadline = C._watch, C._deadline
local is_error, new_error = C.is_error, C.error
local pack, unpack, select, type, error, pcall =
  table.pack, table.unpack, select, type, error, pcall

package.loaded["tide._core"] = nil -- so tracebacks say tide.sleep

local tide = {}
for k, v in pairs(C) do
  if k:sub(1, 1) ~= "_" then tide[k] = v end
end
tide._stats = C._stats

-- For servers that spawn a task per connection: the connections whose
-- task has not run yet.  A task cancelled before its first run never runs,
-- so nothing else would close its connection.  The task claims its
-- connection when it starts; release() closes those of tasks that ended
-- unclaimed.  Tasks start in spawn order, so release() stops at the first
-- one still waiting to run: each entry is looked at once, however many
-- connections one run of the accept loop takes.
local Unclaimed = {}
Unclaimed.__index = Unclaimed

function tide._unclaimed()
  return setmetatable({conns = {}, head = 1, tail = 0}, Unclaimed)
end

function Unclaimed:add(t, conn)
  local tail = self.tail + 1
  self.tail = tail
  self[tail] = t
  self.conns[t] = conn
end

function Unclaimed:claim(t)
  self.conns[t] = nil
end

-- Close the connections of tasks that ended unclaimed; returns how many.
function Unclaimed:release()
  local conns, h, n = self.conns, self.head, 0
  while h <= self.tail do
    local t = self[h]
    local conn = conns[t]
    if conn then
      if not t:done() then break end
      conns[t] = nil
      conn:close()
      n = n + 1
    end
    self[h] = nil
    h = h + 1
  end
  self.head = h
  return n
end

local registry = debug.getregistry()
local Task, FailedTask = registry["tide.Task"], registry["tide.Task(failed)"]

local function is_task(x)
  if type(x) ~= "userdata" then return false end
  local mt = getmetatable(x)
  return mt == Task or mt == FailedTask
end
tide.is_task = is_task

-- A task argument may also be a function, which is spawned.
local function as_task(x, fname, i)
  if type(x) == "function" then return spawn(x) end
  if is_task(x) then return x end
  error(("bad argument #%d to '%s' (Task or function expected, got %s)")
        :format(i, fname, type(x)), 3)
end

-- Accept either varargs or a single list table; returns the list, its
-- length and whether the list form was used.
local function collect(fname, ...)
  local n = select("#", ...)
  local first = ...
  if n == 1 and type(first) == "table" and not is_task(first) then
    local list = {}
    for i = 1, #first do list[i] = as_task(first[i], fname, i) end
    return list, #first, true
  end
  local list = {}
  for i = 1, n do list[i] = as_task((select(i, ...)), fname, i) end
  return list, n, false
end

-- Cancel every unfinished task of the list and wait until they finish.
-- Waiting is skipped when the caller itself can no longer wait (its
-- deadline expired): the cancels are delivered either way.
local function cancel_and_settle(list, count, w)
  for i = 1, count do list[i]:cancel() end
  pcall(function()
    while w:pending() > 0 do w:next() end
  end)
end

local function first_result(t)
  return (t:result())
end

-- gather(t1, t2, ...) -> r1, r2, ...; gather(list) -> {r1, r2, ...}
function tide.gather(...)
  local list, count, list_form = collect("gather", ...)
  local w <close> = new_watch()
  for i = 1, count do w:add(list[i]) end
  local failed
  local ok, err = pcall(function()
    for _ = 1, count do
      local t = w:next()
      if t.status ~= "done" then
        failed = t
        return
      end
    end
  end)
  if ok and not failed then
    local results = {}
    for i = 1, count do results[i] = first_result(list[i]) end
    if list_form then return results end
    return unpack(results, 1, count)
  end
  cancel_and_settle(list, count, w)
  if failed then failed:result() end -- raises the child's error
  error(err, 0)
end

-- race(...) -> all results of the first task to succeed; the rest are
-- cancelled.  If every task fails, the last error is raised.
function tide.race(...)
  local list, count = collect("race", ...)
  if count == 0 then error("bad argument #1 to 'race' (no tasks)", 2) end
  local w <close> = new_watch()
  for i = 1, count do w:add(list[i]) end
  local winner, last
  local ok, err = pcall(function()
    for _ = 1, count do
      local t = w:next()
      if t.status == "done" then
        winner = t
        return
      end
      pcall(t.result, t) -- mark the error as retrieved
      last = t
    end
  end)
  cancel_and_settle(list, count, w)
  if winner then return winner:result() end
  if not ok then error(err, 0) end
  return last:result()
end

-- wait(tasks, {timeout=, mode=}) -> done, pending.  Never raises the
-- tasks' errors and never cancels them.
function tide.wait(tasks, opts)
  if type(tasks) ~= "table" then
    error(("bad argument #1 to 'wait' (table expected, got %s)")
          :format(type(tasks)), 2)
  end
  opts = opts or {}
  local mode = opts.mode or "all"
  if mode ~= "all" and mode ~= "first" and mode ~= "error" then
    error("bad argument #2 to 'wait' (mode must be \"all\", \"first\" or "
          .. "\"error\")", 2)
  end
  local list, count = {}, #tasks
  for i = 1, count do list[i] = as_task(tasks[i], "wait", i) end
  local w <close> = new_watch()
  for i = 1, count do w:add(list[i]) end
  local function loop()
    while true do
      local t = w:next()
      if not t then return end
      if mode == "first" then return end
      if mode == "error" and t.status ~= "done" then return end
    end
  end
  if count > 0 then
    if opts.timeout then
      local ok, err = pcall(tide.timeout, opts.timeout, loop)
      if not ok and not is_error(err, "ETIMEDOUT") then error(err, 0) end
    else
      loop()
    end
  end
  local done, pending = {}, {}
  for i = 1, count do
    local t = list[i]
    if t:done() then done[#done + 1] = t else pending[#pending + 1] = t end
  end
  return done, pending
end

-- timeout(seconds, fn, ...) -> fn's results, or ETIMEDOUT when the
-- deadline passes first.  Nested scopes: the earliest deadline wins.
function tide.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" then
    error(("bad argument #1 to 'timeout' (number expected, got %s)")
          :format(type(seconds)), 2)
  end
  if type(fn) ~= "function" then
    error(("bad argument #2 to 'timeout' (function expected, got %s)")
          :format(type(fn)), 2)
  end
  local scope <close> = new_deadline(seconds)
  local r = pack(pcall(fn, ...))
  local expired = scope:close()
  if r[1] then return unpack(r, 2, r.n) end
  local err = r[2]
  if expired and is_error(err, "ETIMEDOUT") then
    error(new_error("ETIMEDOUT", ("timed out after %g s"):format(seconds),
                    {op = "tide.timeout"}), 0)
  end
  error(err, 0)
end

-- wait_for(task_or_fn, seconds): await with a deadline; on expiry the task
-- is cancelled (and waited for) and ETIMEDOUT is raised.
function tide.wait_for(x, seconds)
  local t = as_task(x, "wait_for", 1)
  if type(seconds) ~= "number" then
    error(("bad argument #2 to 'wait_for' (number expected, got %s)")
          :format(type(seconds)), 2)
  end
  local r = pack(pcall(tide.timeout, seconds, await, t))
  if r[1] then return unpack(r, 2, r.n) end
  if not t:done() then
    t:cancel()
    pcall(shield, t)
  end
  error(r[2], 0)
end

-- group(fn): structured concurrency.  fn(g) spawns children with
-- g:spawn(f, ...); group returns fn's results once every child is done.
-- The first child failure cancels the siblings and the body (as asyncio's
-- TaskGroup does) and is raised after they finish; an error in fn itself
-- cancels the children too.
function tide.group(fn)
  if type(fn) ~= "function" then
    error(("bad argument #1 to 'group' (function expected, got %s)")
          :format(type(fn)), 2)
  end
  local w <close> = new_watch()
  local children, n, closed, failed = {}, 0, false, nil
  local g = {}
  function g:spawn(f, ...)
    if closed then error("group is closed", 2) end
    if type(f) ~= "function" then
      error(("bad argument #1 to 'spawn' (function expected, got %s)")
            :format(type(f)), 2)
    end
    local t = spawn(f, ...)
    n = n + 1
    children[n] = t
    w:add(t)
    return t
  end
  w:arm(C.current())
  local r = pack(pcall(fn, g))
  if w:disarm() and not r[1] and is_error(r[2], "ECANCELED") then
    -- the body was cancelled because a child failed: raise that failure
    r = pack(true)
  end
  local ok2, err2 = true, nil
  if r[1] then
    ok2, err2 = pcall(function()
      while true do
        local t = w:next()
        if not t then return end
        if t.status == "failed" and not failed then
          failed = t
          for i = 1, n do children[i]:cancel() end
        end
      end
    end)
  end
  if not r[1] or not ok2 then cancel_and_settle(children, n, w) end
  closed = true
  if not r[1] then error(r[2], 0) end
  if failed then failed:result() end
  if not ok2 then error(err2, 0) end
  return unpack(r, 2, r.n)
end

-- async(fn) -> a function that spawns fn with its arguments.
function tide.async(fn)
  if type(fn) ~= "function" then
    error(("bad argument #1 to 'async' (function expected, got %s)")
          :format(type(fn)), 2)
  end
  return function(...) return spawn(fn, ...) end
end

return tide
