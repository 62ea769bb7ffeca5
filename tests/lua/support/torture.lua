-- The machinery of the cancellation torture (tests/lua/torture_spec.lua,
-- also driven by tests/soak/): a round spawns N workers that each run a
-- random program of operations, plus a chaos task that cancels random
-- workers at random moments; a ledger records what every operation
-- completed, so check() can prove nothing was lost.  Operation kinds are
-- added for each stdlib module this build has.
local M = {}

local function has(name)
  local ok, mod = pcall(require, name)
  return ok and mod or nil
end

local queue, sync = has "tide.queue", has "tide.sync"
local fs, net, process = has "tide.fs", has "tide.net", has "tide.process"
local http_client = net and has "tide.http_client"
local http_server = has "tide.http"

local EXPECTED = {ECANCELED = true, ETIMEDOUT = true}

local function expected(e)
  return type(e) == "table" and tide.is_error(e) and EXPECTED[e.code]
end

-- Re-raise what a pcall caught unless it is an interruption.
local function check(ok, e)
  if not ok and not expected(e) then error(e, 0) end
  return ok
end

function M.stats()
  return tide._stats()
end

-- Lua memory in KiB after full collections (finalizers run in the first).
function M.memory()
  collectgarbage("collect")
  collectgarbage("collect")
  return collectgarbage("count")
end

-- ---- the operation kinds ------------------------------------------------

-- Each kind is fn(w, r): w the round's world, r(n) a random integer in
-- 1..n from the worker's own generator.
local kinds, names = {}, {}
local function kind(name, fn)
  kinds[#kinds + 1] = fn
  names[#names + 1] = name
end

function M.kinds()
  local seen, out = {}, {}
  for _, n in ipairs(names) do
    local m = n:match("^[^.]+")
    if not seen[m] then
      seen[m] = true
      out[#out + 1] = m
    end
  end
  return out
end

local function tiny(r) return (r(3) - 1) * 0.001 end

kind("core.sleep", function(_, r) tide.sleep(tiny(r)) end)

kind("core.timeout", function(_, r)
  check(pcall(tide.timeout, tiny(r), tide.sleep, tiny(r)))
end)

kind("core.future", function(w, r)
  local f = w.futures[r(#w.futures)]
  if r(2) == 1 then
    f:await()
  elseif not f:done() then
    f:set(true)
  end
end)

kind("core.children", function(_, r)
  local n = r(3)
  local list = {}
  for i = 1, n do
    list[i] = function()
      tide.sleep(tiny(r))
      return i
    end
  end
  local res = tide.gather(list)
  for i = 1, n do assert(res[i] == i, "gather lost a result") end
end)

kind("core.wait_for", function(_, r)
  local t = tide.spawn(tide.sleep, tiny(r))
  -- On success the task is done.  When the caller is interrupted itself
  -- (cancelled, or its own outer deadline expired), wait_for cancels the
  -- task but cannot wait for it: the task finishes on its own later.
  if check(pcall(tide.wait_for, t, tiny(r))) then
    assert(t:done(), "wait_for returned before its task finished")
  end
end)

if queue then
  kind("queue.put", function(w)
    w.next_item = w.next_item + 1
    local item = w.next_item
    w.q:put(item)
    -- Only a put that returned counts: a cancelled put must not have
    -- added the item, and check() would find it as a stranger.
    w.put[item] = true
  end)
  kind("queue.get", function(w)
    local item = w.q:get()
    w.got[#w.got + 1] = item
  end)
  kind("queue.get_timeout", function(w, r)
    local ok, item = pcall(tide.timeout, tiny(r), w.q.get, w.q)
    if check(ok, item) then w.got[#w.got + 1] = item end
  end)
end

if sync then
  -- The counters are decremented by a to-be-closed guard declared after
  -- the lock's, so they unwind first, however the task ends.
  local function inside(w, field, max)
    w[field] = w[field] + 1
    assert(w[field] <= max, field .. " admitted too many tasks")
    return setmetatable({}, {__close = function() w[field] = w[field] - 1 end})
  end
  kind("sync.lock", function(w, r)
    local g <close> = w.lock:acquire()
    local c <close> = inside(w, "in_lock", 1)
    tide.sleep(tiny(r))
  end)
  kind("sync.semaphore", function(w, r)
    local g <close> = w.sem:acquire()
    local c <close> = inside(w, "in_sem", w.permits)
    tide.sleep(tiny(r))
  end)
  kind("sync.event", function(w, r)
    if r(4) == 1 then
      w.event:set()
    else
      check(pcall(tide.timeout, tiny(r), w.event.wait, w.event))
    end
  end)
end

if fs then
  -- Every write of a file puts FILE_SIZE copies of one letter: a reader
  -- may see any whole version, never a torn or mixed one when atomic.
  local FILE_SIZE = 8192
  local LETTERS = "abcdefgh"
  local function letter(r)
    local i = r(#LETTERS)
    return LETTERS:sub(i, i)
  end
  kind("fs.write_atomic", function(w, r)
    local path = w.dir .. "/a" .. r(4)
    fs.write_file(path, letter(r):rep(FILE_SIZE), {atomic = true})
  end)
  kind("fs.read_atomic", function(w, r)
    local ok, data = pcall(fs.read_file, w.dir .. "/a" .. r(4))
    if not ok then
      if not tide.is_error(data, "ENOENT") then check(ok, data) end
      return
    end
    assert(#data == FILE_SIZE and not data:find("[^" .. data:sub(1, 1)
           .. "]"), "an atomically written file was torn")
  end)
  kind("fs.file", function(w, r)
    local f <close> = fs.open(w.dir .. "/f" .. r(8), "w")
    f:write(letter(r):rep(r(3) * 1024))
    if r(2) == 1 then f:sync() end
  end)
  kind("fs.stat", function(w, r)
    local ok, st = pcall(fs.stat, w.dir .. "/f" .. r(8))
    if ok then
      assert(st.type == "file")
    elseif not tide.is_error(st, "ENOENT") then
      check(ok, st)
    end
  end)
end

if net then
  kind("net.echo", function(w, r)
    local c <close> = net.connect("127.0.0.1", w.server.port)
    local line = ("%d:%s"):format(r(1000000), ("x"):rep(r(64)))
    c:write(line .. "\n")
    if r(3) == 1 then tide.sleep(tiny(r)) end
    assert(c:read_line() == line, "the echo came back different")
  end)
end

if process then
  -- Children are expensive next to the other operations: only one pick
  -- in four starts one.
  kind("process.run", function(_, r)
    if r(4) > 1 then return tide.sleep(0) end
    local res = process.run("sh", {"-c", r(2) == 1 and "exit 3" or
                                   "sleep 0.01"})
    assert(res.code == 3 or res.code == 0, "a child exited wrongly")
  end)
end

if http_client then
  -- Against the round's server: tide's own when the build has it (then
  -- both ends of every request are cancelled at random), else a small
  -- responder on tide.net.
  kind("http.get", function(w, r)
    local path = r(2) == 1 and "slow" or ""
    local res = http_client.get(w.http_url .. path, {timeout = 10})
    assert(res.status == 200 and res.body == "ok", "a wrong HTTP response")
  end)
end

M.add_kind = kind

-- ---- a round --------------------------------------------------------------

-- A small xorshift generator per worker, so the programs depend on the
-- seed only, not on scheduling or on math.random's state.
local function rng(seed)
  local s = (seed * 2654435761) % 4294967296
  if s == 0 then s = 1 end
  return function(n)
    s = s ~ ((s << 13) & 0xffffffff)
    s = s ~ (s >> 17)
    s = s ~ ((s << 5) & 0xffffffff)
    return s % n + 1
  end
end

local function world()
  local w = {futures = {}, put = {}, got = {}, next_item = 0,
             in_lock = 0, in_sem = 0, permits = 3}
  for i = 1, 8 do w.futures[i] = tide.future() end
  if queue then w.q = queue.new(8) end
  if fs then w.dir = fs.mkdtemp() end
  if net then
    w.server = net.listen{host = "127.0.0.1", port = 0, handler = function(c)
      for line in function() return c:read_line() end do
        c:write(line .. "\n")
      end
    end}
  end
  if http_client and http_server then
    w.http = http_server.serve{host = "127.0.0.1", port = 0,
      log = function() end, handler = function(req)
        if req.path == "/slow" then tide.sleep(0.001) end
        return "ok"
      end}
    w.http_url = ("http://127.0.0.1:%d/"):format(w.http.port)
  elseif http_client then
    -- Closes after each answer, so no connection stays in libcurl's pool
    -- past the round.
    w.http = net.listen{host = "127.0.0.1", port = 0, handler = function(c)
      if c:read_until("\r\n\r\n", 65536) then
        c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                .. "Connection: close\r\n\r\nok")
      end
    end}
    w.http_url = ("http://127.0.0.1:%d/"):format(w.http.port)
  end
  if sync then
    w.lock = sync.Lock()
    w.sem = sync.Semaphore(w.permits)
    w.event = sync.Event()
  end
  return w
end

local function worker(w, seed, ops)
  local r = rng(seed)
  local n = r(8)
  local function program()
    for _ = 1, n do
      ops[1] = ops[1] + 1
      kinds[r(#kinds)](w, r)
    end
  end
  if r(4) == 1 then
    program = (function(p)
      return function() tide.timeout(tiny(r) + 0.001, p) end
    end)(program)
  end
  program()
  return seed
end

-- Run one round of n workers; returns the world and the figures.
function M.round(seed, n)
  local w = world()
  local r = rng(seed)
  local ops = {0}
  local workers = {}
  for i = 1, n do workers[i] = tide.spawn(worker, w, seed * 100003 + i, ops) end
  -- Chaos: cancel random unfinished workers until all have finished,
  -- releasing futures now and then so waiters do not all starve.
  local cancels = 0
  local chaos = tide.spawn(function()
    local alive = {}
    for i = 1, n do alive[i] = workers[i] end
    while #alive > 0 do
      tide.sleep(r(4) == 1 and 0.001 or 0)
      -- Cancel about one in eight of the workers still alive, wherever
      -- each happens to be waiting.
      for _ = 1, r(#alive // 8 + 1) do
        local t = alive[r(#alive)]
        if not t:done() then
          t:cancel("torture")
          cancels = cancels + 1
        end
      end
      if r(8) == 1 then
        local f = w.futures[r(#w.futures)]
        if not f:done() then f:set(true) end
      end
      local still = {}
      for _, t in ipairs(alive) do
        if not t:done() then still[#still + 1] = t end
      end
      alive = still
    end
  end)
  local res = {tasks = n, cancelled = 0, timedout = 0, done = 0}
  for i = 1, n do
    local ok, e = pcall(tide.await, workers[i])
    if ok then
      assert(e == seed * 100003 + i, "a worker returned a wrong value")
      res.done = res.done + 1
    elseif tide.is_error(e, "ECANCELED") then
      res.cancelled = res.cancelled + 1
    elseif tide.is_error(e, "ETIMEDOUT") then
      res.timedout = res.timedout + 1
    else
      error(e, 0)
    end
  end
  chaos:await()
  -- Round resources go before the checks, which count handles.
  for _, srv in ipairs({w.server, w.http}) do
    srv:close()
    srv:wait()
  end
  res.ops, res.cancels, res.world = ops[1], cancels, w
  return res
end

-- Wait (a bounded number of turns) for late callbacks of cancelled work
-- to arrive: a cancelled fs request or closing handle finishes in libuv
-- after its task has moved on.
local function settle(base)
  for _ = 1, 200 do
    local s = tide._stats()
    if s.tasks == base.tasks and s.timers == base.timers
        and s.handles == base.handles and s.requests == base.requests then
      return s
    end
    tide.sleep(0.005)
  end
  return tide._stats()
end

-- The invariants after a round.
function M.check(res, base)
  local w = res.world
  assert(res.done + res.cancelled + res.timedout == res.tasks,
         "a worker did not end")
  local s = settle(base)
  assert(s.tasks == base.tasks, ("%d tasks left"):format(s.tasks - base.tasks))
  assert(s.timers == base.timers, "timers left")
  assert(s.handles == base.handles, ("%d handles left")
         :format(s.handles - base.handles))
  assert(s.requests == base.requests, ("%d requests left")
         :format(s.requests - base.requests))
  if w.q then
    while not w.q:empty() do w.got[#w.got + 1] = w.q:get_nowait() end
    local seen = {}
    for _, item in ipairs(w.got) do
      assert(not seen[item], "item " .. item .. " was delivered twice")
      assert(w.put[item], "item " .. item .. " came from a cancelled put")
      seen[item] = true
    end
    for item in pairs(w.put) do
      assert(seen[item], "item " .. item .. " was lost")
    end
  end
  if http_client then
    collectgarbage()
    local hs = http_client._stats()
    assert(hs.transfers == 0 and hs.waiting == 0 and hs.live == 0,
           "the HTTP client holds a transfer, a waiter or a response")
  end
  if w.dir then
    -- A cancelled atomic write leaves no temporary file behind.
    for _, name in ipairs(fs.list(w.dir)) do
      assert(name:match("^[af]%d$"), "left behind: " .. name)
    end
    fs.remove(w.dir, {recursive = true})
  end
  if w.lock then
    assert(not w.lock:locked(), "the lock is still held")
    assert(w.in_lock == 0 and w.in_sem == 0, "a guard did not unwind")
    -- Every permit is back: all of them can be taken without waiting, and
    -- then one more cannot.
    local guards = {}
    for i = 1, w.permits do
      guards[i] = tide.timeout(1, w.sem.acquire, w.sem)
    end
    local ok, e = pcall(tide.timeout, 0.001, w.sem.acquire, w.sem)
    assert(not ok and tide.is_error(e, "ETIMEDOUT"),
           "the semaphore has a permit too many")
    for i = 1, w.permits do guards[i]:release() end
  end
end

return M
