-- tide.sync: asyncio's synchronisation primitives for tide tasks.
--
-- Lock, Semaphore, BoundedSemaphore and Event live in C (stdlib/sync.c,
-- `tide._sync`), where their waiter lists are the engine's own.  Condition
-- and Barrier are written here on top of a Lock and the C waiter list,
-- following asyncio's algorithms.  Every type is built with `sync.X(...)`
-- or `sync.X.new(...)`.

local C = require "tide._sync"

package.loaded["tide._sync"] = nil

local tide = require "tide"
local is_error, new_error = tide.is_error, tide.error
local setmetatable, getmetatable, type, error, pcall =
  setmetatable, getmetatable, type, error, pcall

local sync = {}

-- A constructor table: T.new(...) and T(...) both build one.
local function constructor(new)
  return setmetatable({new = new}, {
    __call = function(_, ...) return new(...) end,
  })
end

local LockMT = debug.getregistry()["tide.Lock"]

sync.Lock = constructor(function() return C.lock() end)
sync.Event = constructor(function() return C.event() end)
sync.Semaphore = constructor(function(value)
  if value ~= nil and math.type(value) ~= "integer" then
    error(("bad argument #1 to 'Semaphore' (integer expected, got %s)")
          :format(type(value)), 3)
  end
  return C.semaphore(value)
end)
sync.BoundedSemaphore = constructor(function(value)
  if value ~= nil and math.type(value) ~= "integer" then
    error(("bad argument #1 to 'BoundedSemaphore' (integer expected, got %s)")
          :format(type(value)), 3)
  end
  return C.semaphore(value, true)
end)

-- ---- Condition -----------------------------------------------------------

local Condition = {}
Condition.__index = Condition
Condition.__name = "tide.Condition"

function Condition:__tostring()
  return ("Condition (%s, %d waiting)"):format(
    self._lock:locked() and "locked" or "unlocked", self._waiters:count())
end

local function is_interrupt(err)
  return is_error(err, "ECANCELED") or is_error(err, "ETIMEDOUT")
end

local function check_cond(self, fname)
  if getmetatable(self) ~= Condition then
    error(("bad argument #1 to '%s' (tide.Condition expected, got %s)")
          :format(fname, type(self)), 3)
  end
end

-- Condition([lock]): a condition variable over `lock` (a new Lock when
-- absent); several conditions may share one lock.
sync.Condition = constructor(function(lock)
  if lock == nil then
    lock = C.lock()
  elseif getmetatable(lock) ~= LockMT then
    error(("bad argument #1 to 'Condition' (tide.Lock expected, got %s)")
          :format(type(lock)), 3)
  end
  return setmetatable({_lock = lock, _waiters = C.waitlist()}, Condition)
end)

function Condition:acquire()
  check_cond(self, "acquire")
  return self._lock:acquire()
end

function Condition:release()
  check_cond(self, "release")
  return self._lock:release()
end

function Condition:locked()
  check_cond(self, "locked")
  return self._lock:locked()
end

-- Wait until notified.  The lock must be held; it is released while
-- waiting and held again when wait returns or raises, however the wait
-- ended (notified, cancelled or timed out): the guard of the acquire that
-- took it still releases it.
function Condition:wait()
  check_cond(self, "wait")
  local lock = self._lock
  local id = lock:_release_for_wait()
  local ok, err = pcall(self._waiters.wait, self._waiters)
  while true do
    local ok2, err2 = pcall(lock._reacquire, lock, id)
    if ok2 then break end
    if not is_interrupt(err2) then error(err2, 0) end
    -- Interrupted while waiting for the lock: keep the first error and
    -- wait again, as asyncio does.
    if ok then ok, err = false, err2 end
  end
  if not ok then error(err, 0) end
  return true
end

-- Wait until pred() returns a true value; returns that value.
function Condition:wait_for(pred)
  check_cond(self, "wait_for")
  if type(pred) ~= "function" then
    error(("bad argument #1 to 'wait_for' (function expected, got %s)")
          :format(type(pred)), 2)
  end
  local r = pred()
  while not r do
    self:wait()
    r = pred()
  end
  return r
end

-- Wake up to n (default 1) waiting tasks; the lock must be held.
function Condition:notify(n)
  check_cond(self, "notify")
  if n ~= nil and type(n) ~= "number" then
    error(("bad argument #1 to 'notify' (number expected, got %s)")
          :format(type(n)), 2)
  end
  if not self._lock:locked() then
    error("Condition:notify: lock is not acquired", 2)
  end
  self._waiters:notify(n or 1)
end

function Condition:notify_all()
  check_cond(self, "notify_all")
  if not self._lock:locked() then
    error("Condition:notify_all: lock is not acquired", 2)
  end
  self._waiters:notify(math.huge)
end

-- ---- Barrier ---------------------------------------------------------------
-- asyncio's algorithm: a barrier fills until `parties` tasks wait, then
-- drains (every waiter leaves) before it fills again.  reset() and abort()
-- break the current round; the waiters raise ECLOSED.

local FILLING, DRAINING, RESETTING, BROKEN = 0, 1, 2, 3

local Barrier = {}
Barrier.__index = Barrier
Barrier.__name = "tide.Barrier"

local function check_barrier(self, fname)
  if getmetatable(self) ~= Barrier then
    error(("bad argument #1 to '%s' (tide.Barrier expected, got %s)")
          :format(fname, type(self)), 3)
  end
end

sync.Barrier = constructor(function(parties)
  if math.type(parties) ~= "integer" or parties < 1 then
    error("bad argument #1 to 'Barrier' (positive integer expected)", 3)
  end
  return setmetatable({_cond = sync.Condition(), _parties = parties,
                       _state = FILLING, _count = 0}, Barrier)
end)

function Barrier:__tostring()
  local states = {[FILLING] = "filling", [DRAINING] = "draining",
                  [RESETTING] = "resetting", [BROKEN] = "broken"}
  return ("Barrier (%s, %d/%d waiting)"):format(states[self._state],
                                               self._count, self._parties)
end

local function broken(msg)
  return new_error("ECLOSED", msg, {op = "Barrier:wait"})
end

-- Wait until `parties` tasks wait; returns this task's arrival number
-- (1 for the first, `parties` for the one that releases the others).
function Barrier:wait()
  check_barrier(self, "wait")
  local cond = self._cond
  local guard <close> = cond:acquire()
  -- A new round starts only after the previous one has drained.
  cond:wait_for(function()
    return self._state ~= DRAINING and self._state ~= RESETTING
  end)
  if self._state == BROKEN then error(broken("barrier is broken"), 2) end
  local index = self._count + 1
  self._count = index
  local ok, err = pcall(function()
    if index == self._parties then
      self._state = DRAINING
      cond:notify_all()
    else
      cond:wait_for(function() return self._state ~= FILLING end)
      if self._state == BROKEN then error(broken("barrier is broken"), 0) end
      if self._state == RESETTING then
        error(broken("barrier was reset"), 0)
      end
    end
  end)
  -- Leaving, for any reason (a cancelled waiter included): the last one
  -- out lets the next round fill.
  self._count = self._count - 1
  if self._count == 0 then
    if self._state == RESETTING or self._state == DRAINING then
      self._state = FILLING
    end
    cond:notify_all()
  end
  if not ok then error(err, 0) end
  return index
end

-- Put the barrier back in its empty state; tasks waiting now raise ECLOSED.
function Barrier:reset()
  check_barrier(self, "reset")
  local cond = self._cond
  local guard <close> = cond:acquire()
  if self._count > 0 then
    self._state = RESETTING
  else
    self._state = FILLING
  end
  cond:notify_all()
end

-- Break the barrier: waiting and future wait() calls raise ECLOSED.
function Barrier:abort()
  check_barrier(self, "abort")
  local cond = self._cond
  local guard <close> = cond:acquire()
  self._state = BROKEN
  cond:notify_all()
end

function Barrier:parties()
  check_barrier(self, "parties")
  return self._parties
end

function Barrier:n_waiting()
  check_barrier(self, "n_waiting")
  return self._state == FILLING and self._count or 0
end

function Barrier:broken()
  check_barrier(self, "broken")
  return self._state == BROKEN
end

return sync
