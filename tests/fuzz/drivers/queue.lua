-- Fuzz driver for tide.queue: FIFO, LIFO and priority queues, bounded or
-- not, driven by a byte script of puts, gets (blocking, nowait and under
-- deadlines), iteration, task_done/join, cancels and close.
--
-- The first byte picks the kind and the bound, the second how many workers
-- run; then each worker gets a program (a length byte and that many op
-- bytes, each `op + 16 * k`); the rest drives the main task, which cancels
-- workers and finally closes the queue so no worker waits for ever.
--
-- Invariants (a failed assert is a bug): nothing put is lost or delivered
-- twice, and nothing comes out that no put returned for; size() stays
-- within 0..maxsize and agrees with empty() and full(); a priority queue
-- drained without concurrent puts comes out sorted; putting nil is an
-- argument error that changes nothing; once every item is task_done()'d,
-- join() returns; operations fail only with ECANCELED, ETIMEDOUT, EAGAIN
-- or ECLOSED; afterwards no task, timer or handle is left.
--
--   build/tide tests/fuzz/drivers/queue.lua < input
local data = ... or io.read("a")
local Q = require "tide.queue"

local UNIT = 0.0005
local EXPECTED = {ECANCELED = true, ETIMEDOUT = true, EAGAIN = true,
                  ECLOSED = true}

local base = tide._stats()
local pos, len = 0, #data
local function byte()
  pos = pos + 1
  return data:byte(pos) or 0
end

local function check(ok, e)
  if not ok and not (tide.is_error(e) and EXPECTED[e.code]) then
    error(e, 0)
  end
  return ok
end

local head = byte()
local kind = ({"new", "lifo", "priority"})[head % 3 + 1]
local maxsize = (head // 3) % 5 -- 0: unbounded
local q = Q[kind](maxsize)

local put, got = {}, {}   -- item -> true; list of items out
local counter = 0
local done_owed = 0       -- items taken and not yet task_done()'d
local workers = {}
local nworkers

local function small(k) return (k % 4) * UNIT end

local function new_item(k)
  counter = counter + 1
  -- Not monotonic, so the priority heap gets real work; unique all the
  -- same (counter < 4096 in any input the driver accepts).
  return (k * 7 + counter * 13) % 97 * 4096 + counter
end

local function took(item)
  assert(item ~= nil, "a get returned nil")
  got[#got + 1] = item
  done_owed = done_owed + 1
end

local function sizes()
  local n = q:size()
  assert(n >= 0, "negative size")
  if maxsize > 0 then assert(n <= maxsize, "size over maxsize") end
  assert(q:empty() == (n == 0), "empty() disagrees with size()")
  assert(q:full() == (maxsize > 0 and n >= maxsize),
         "full() disagrees with size()")
end

local ops = {}
ops[0] = function(k)
  local item = new_item(k)
  q:put(item)
  put[item] = true
end
ops[1] = function() took(q:get()) end
ops[2] = function(k)
  local item = new_item(k)
  if check(pcall(q.put_nowait, q, item)) then put[item] = true end
end
ops[3] = function()
  local ok, item = pcall(q.get_nowait, q)
  if check(ok, item) then took(item) end
end
ops[4] = function(k)
  local item = new_item(k)
  if check(pcall(tide.timeout, small(k), q.put, q, item)) then
    put[item] = true
  end
end
ops[5] = function(k)
  local ok, item = pcall(tide.timeout, small(k), q.get, q)
  if check(ok, item) then took(item) end
end
ops[6] = function(k, self)
  local t = workers[k % nworkers + 1]
  t:cancel("fuzz")
  if t == self then tide.sleep(0) end
end
ops[7] = function() tide.sleep(0) end
ops[8] = function(k)
  -- Rarely: close the queue in the middle of everything.
  if k == 15 then q:close() end
end
ops[9] = sizes
ops[10] = function(k)
  local n = 0
  for item in q:iter() do
    took(item)
    n = n + 1
    if n > k % 4 then break end
  end
end
ops[11] = function(k)
  for _ = 1, math.min(k % 4 + 1, done_owed) do
    q:task_done()
    done_owed = done_owed - 1
  end
end
ops[12] = function(k)
  check(pcall(tide.timeout, small(k), q.join, q))
end
ops[13] = function(k) tide.sleep(small(k)) end
ops[14] = function()
  local n = q:size()
  local ok, e = pcall(q.put, q, nil)
  assert(not ok and not tide.is_error(e), "putting nil was accepted")
  ok = pcall(q.put_nowait, q, nil)
  assert(not ok, "put_nowait(nil) was accepted")
  assert(q:size() == n, "a rejected nil changed the size")
end
ops[15] = function(k)
  -- A burst of nowait traffic.
  for _ = 1, k % 4 + 1 do ops[2](k) end
  for _ = 1, k % 3 + 1 do ops[3](k) end
end

local function worker(i, prog)
  local self = tide.current()
  for j = 1, #prog do
    local b = prog:byte(j)
    ops[b % 16](b // 16, self)
    sizes()
  end
  return i
end

nworkers = 1 + byte() % 8
for i = 1, nworkers do
  local n = byte() % 24
  local prog = data:sub(pos + 1, pos + n)
  pos = pos + n
  workers[i] = tide.spawn(worker, i, prog)
end

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

-- Let the programs run out, then close: blocked putters fail with
-- ECLOSED (their items were never added), blocked getters drain.
for _ = 1, 8 do tide.sleep(0) end
q:close()
for i, t in ipairs(workers) do
  local ok, r = pcall(tide.await, t)
  check(ok, r)
  if ok then assert(r == i, "a worker returned a wrong value") end
end

-- Drain what is left (a closed queue still gives its items to get()).
local rest = {}
while not q:empty() do
  local item = q:get()
  rest[#rest + 1] = item
  took(item)
end
if kind == "priority" then
  for i = 2, #rest do
    assert(rest[i - 1] <= rest[i], "the priority queue came out unsorted")
  end
end
local ok, e = pcall(q.get, q)
assert(not ok and tide.is_error(e, "ECLOSED"), "a drained closed get")

-- Conservation: what came out is exactly what went in.
local seen = {}
for _, item in ipairs(got) do
  assert(not seen[item], "an item was delivered twice")
  assert(put[item], "an item came out that no put returned for")
  seen[item] = true
end
for item in pairs(put) do assert(seen[item], "an item was lost") end

-- Accounting: once everything is task_done()'d, join() does not wait.
for _ = 1, done_owed do q:task_done() end
tide.timeout(1, q.join, q)

for _ = 1, 4 do tide.sleep(0) end
local s = tide._stats()
assert(s.tasks == base.tasks, "tasks left")
assert(s.timers == base.timers, "timers left")
assert(s.handles == base.handles, "handles left")
return true
