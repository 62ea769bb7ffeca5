local sync = require "tide.sync"

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

local function settle()
  for _ = 1, 3 do tide.sleep(0) end
end

describe("tide.sync", function()
  it("builds every type with T() and T.new()", function()
    for _, name in ipairs({"Lock", "Event", "Condition", "Semaphore",
                           "BoundedSemaphore"}) do
      assert.is_not_nil(sync[name]())
      assert.is_not_nil(sync[name].new())
    end
    assert.is_not_nil(sync.Barrier(2))
    assert.is_not_nil(sync.Barrier.new(2))
  end)

  describe("Lock", function()
    it("acquires, releases and reports its state", function()
      local lock = sync.Lock()
      assert.is_false(lock:locked())
      local g = lock:acquire()
      assert.is_true(lock:locked())
      assert.equal("Lock (locked)", tostring(lock))
      assert.equal("Guard (held)", tostring(g))
      g:release()
      assert.is_false(lock:locked())
      assert.is_true(g:released())
      g:release() -- idempotent
      assert.is_false(lock:locked())
    end)

    it("releases through <close> on normal exit and on error", function()
      local lock = sync.Lock()
      do
        local g <close> = lock:acquire()
        assert.is_true(lock:locked())
      end
      assert.is_false(lock:locked())
      local ok = pcall(function()
        local g <close> = lock:acquire()
        error("boom")
      end)
      assert.is_false(ok)
      assert.is_false(lock:locked())
    end)

    it("raises when released unlocked, and on bad self", function()
      local lock = sync.Lock()
      assert.has_error(function() lock:release() end,
        "Lock:release: lock is not acquired")
      assert.has_error(function() lock.acquire({}) end,
        "bad argument #1 to 'acquire' (tide.Lock expected, got table)")
      assert.has_error(function() lock.locked(sync.Event()) end)
    end)

    it("a stale guard does not release a later holder", function()
      local lock = sync.Lock()
      local g1 = lock:acquire()
      lock:release()          -- released directly, not through g1
      local g2 = lock:acquire()
      g1:release()            -- g1's acquisition is over: nothing happens
      assert.is_true(lock:locked())
      g2:release()
      assert.is_false(lock:locked())
    end)

    it("serves waiters first come, first served", function()
      local lock = sync.Lock()
      local order = {}
      local held = lock:acquire()
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = tide.spawn(function()
          local g <close> = lock:acquire()
          order[#order + 1] = i
          tide.sleep(0)
        end)
        settle()
      end
      held:release()
      -- the lock went to the first waiter: a newcomer must wait its turn
      assert.is_true(lock:locked())
      local late = tide.spawn(function()
        local g <close> = lock:acquire()
        order[#order + 1] = "late"
      end)
      tide.gather(tasks)
      late:await()
      assert.same({1, 2, 3, 4, 5, "late"}, order)
      assert.is_false(lock:locked())
    end)

    it("a waiter cancelled while waiting takes nothing", function()
      local lock = sync.Lock()
      local g = lock:acquire()
      local t1 = tide.spawn(function() return lock:acquire() end)
      local t2 = tide.spawn(function()
        local g2 <close> = lock:acquire()
        return "t2"
      end)
      settle()
      t1:cancel()
      settle()
      assert.equal("ECANCELED", err_of(t1.await, t1).code)
      g:release()
      assert.equal("t2", t2:await())
      assert.is_false(lock:locked())
    end)

    it("a waiter cancelled after the hand-off releases on unwind", function()
      local lock = sync.Lock()
      local g = lock:acquire()
      local got = false
      local t = tide.spawn(function()
        local g2 <close> = lock:acquire()
        got = true
        tide.sleep(10) -- the pending cancel is delivered here
      end)
      settle()
      g:release()   -- hands the lock to t
      t:cancel()    -- before t resumes
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.is_true(got)
      assert.is_false(lock:locked())
    end)

    it("times out and leaves the lock as it was", function()
      local lock = sync.Lock()
      local g = lock:acquire()
      local t = tide.spawn(function()
        return tide.timeout(0.02, lock.acquire, lock)
      end)
      assert.equal("ETIMEDOUT", err_of(t.await, t).code)
      assert.is_true(lock:locked())
      g:release()
      assert.is_false(lock:locked())
      local g2 = tide.wait_for(function() return lock:acquire() end, 1)
      assert.is_true(lock:locked())
      g2:release()
    end)
  end)

  describe("Event", function()
    it("sets, clears and wakes every waiter", function()
      local ev = sync.Event()
      assert.is_false(ev:is_set())
      local tasks = {}
      for i = 1, 3 do tasks[i] = tide.spawn(function() return ev:wait() end) end
      settle()
      assert.equal("waiting", tasks[1].status)
      ev:set()
      assert.is_true(ev:is_set())
      assert.same({true, true, true}, {tide.gather(tasks[1], tasks[2], tasks[3])})
      assert.is_true(ev:wait()) -- already set: returns at once
      ev:clear()
      assert.is_false(ev:is_set())
      assert.equal("Event (clear)", tostring(ev))
    end)

    it("can be cancelled and timed out while waiting", function()
      local ev = sync.Event()
      local t = tide.spawn(function() return ev:wait() end)
      settle()
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.equal("ETIMEDOUT", err_of(tide.timeout, 0.02, ev.wait, ev).code)
      local t2 = tide.spawn(function() return ev:wait() end)
      settle()
      ev:set()
      assert.is_true(t2:await())
    end)
  end)

  describe("Semaphore", function()
    it("counts permits", function()
      local sem = sync.Semaphore(2)
      assert.equal(2, sem:value())
      local a = sem:acquire()
      local b = sem:acquire()
      assert.is_true(sem:locked())
      local t = tide.spawn(function()
        local g <close> = sem:acquire()
        return "third"
      end)
      settle()
      assert.equal("waiting", t.status)
      a:release()
      assert.equal("third", t:await())
      b:release()
      assert.equal(2, sem:value())
      assert.equal(1, sync.Semaphore():value())
    end)

    it("rejects bad initial values", function()
      assert.has_error(function() sync.Semaphore(-1) end)
      assert.has_error(function() sync.Semaphore("x") end)
      assert.has_error(function() sync.BoundedSemaphore(1.5) end)
    end)

    it("allows over-release; a BoundedSemaphore raises", function()
      local sem = sync.Semaphore(1)
      sem:release()
      assert.equal(2, sem:value())
      local b = sync.BoundedSemaphore(1)
      local g = b:acquire()
      g:release()
      assert.has_error(function() b:release() end,
        "BoundedSemaphore:release: released too many times")
      assert.equal(1, b:value())
      assert.equal("BoundedSemaphore (value 1)", tostring(b))
    end)

    it("is fair and loses no permit to cancelled waiters", function()
      local sem = sync.Semaphore(1)
      local g = sem:acquire()
      local order = {}
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = tide.spawn(function()
          local p <close> = sem:acquire()
          order[#order + 1] = i
          tide.sleep(0)
        end)
        settle()
      end
      tasks[2]:cancel()
      settle()
      g:release()
      for _, i in ipairs({1, 3, 4}) do tasks[i]:await() end
      assert.equal("ECANCELED", err_of(tasks[2].await, tasks[2]).code)
      assert.same({1, 3, 4}, order)
      assert.equal(1, sem:value())
    end)

    it("a permit handed to a cancelled waiter comes back", function()
      local sem = sync.BoundedSemaphore(1)
      local g = sem:acquire()
      local t = tide.spawn(function()
        local p <close> = sem:acquire()
        tide.sleep(10)
      end)
      settle()
      g:release()
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.equal(1, sem:value())
    end)

    it("times out", function()
      local sem = sync.Semaphore(0)
      assert.equal("ETIMEDOUT", err_of(tide.timeout, 0.02, sem.acquire, sem).code)
      sem:release()
      assert.equal(1, sem:value())
    end)
  end)

  describe("Condition", function()
    it("waits for notify and holds the lock again", function()
      local cond = sync.Condition()
      local woke = {}
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = tide.spawn(function()
          local g <close> = cond:acquire()
          assert.is_true(cond:wait())
          assert.is_true(cond:locked())
          woke[#woke + 1] = i
        end)
      end
      settle()
      assert.is_false(cond:locked())
      do
        local g <close> = cond:acquire()
        cond:notify()
      end
      settle()
      assert.same({1}, woke)
      do
        local g <close> = cond:acquire()
        cond:notify_all()
      end
      tide.gather(tasks)
      assert.same({1, 2, 3}, woke)
      assert.is_false(cond:locked())
    end)

    it("wait_for re-checks its predicate", function()
      local cond = sync.Condition(sync.Lock())
      local value = 0
      local t = tide.spawn(function()
        local g <close> = cond:acquire()
        return cond:wait_for(function() return value >= 3 and value end)
      end)
      for _ = 1, 3 do
        settle()
        local g <close> = cond:acquire()
        value = value + 1
        cond:notify()
      end
      assert.equal(3, t:await())
      assert.has_error(function() cond:wait_for(42) end)
    end)

    it("requires the lock for wait and notify", function()
      local cond = sync.Condition()
      assert.has_error(function() cond:wait() end,
        "Condition:wait: lock is not acquired")
      assert.has_error(function() cond:notify() end)
      assert.has_error(function() cond:notify_all() end)
      assert.has_error(function() cond:release() end)
      assert.has_error(function() sync.Condition(42) end)
      assert.has_error(function() cond.wait({}) end)
    end)

    it("holds the lock again when the wait is cancelled", function()
      local cond = sync.Condition()
      local held_in_handler
      local t = tide.spawn(function()
        local g <close> = cond:acquire()
        local ok, err = pcall(cond.wait, cond)
        held_in_handler = cond:locked()
        error(err, 0)
      end)
      settle()
      -- another task holds the lock when the cancel arrives
      local other = cond:acquire()
      t:cancel()
      settle()
      assert.equal("waiting", t.status) -- waiting for the lock
      other:release()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.is_true(held_in_handler)
      assert.is_false(cond:locked())
    end)

    it("holds the lock again when the wait times out", function()
      local cond = sync.Condition()
      local g <close> = cond:acquire()
      local err = err_of(tide.timeout, 0.02, cond.wait, cond)
      assert.equal("ETIMEDOUT", err.code)
      assert.is_true(cond:locked())
      g:release()
      assert.is_false(cond:locked())
    end)

    it("a notified waiter cancelled before it resumes keeps the notification",
       function()
      local cond = sync.Condition()
      local returned = false
      local a = tide.spawn(function()
        local g <close> = cond:acquire()
        cond:wait()
        returned = true
        tide.sleep(10)
      end)
      local b = tide.spawn(function()
        local g <close> = cond:acquire()
        cond:wait()
        return "b"
      end)
      settle()
      do
        local g <close> = cond:acquire()
        cond:notify()
        a:cancel() -- a was notified, has not resumed yet
      end
      assert.equal("ECANCELED", err_of(a.await, a).code)
      assert.is_true(returned)
      assert.equal("waiting", b.status)
      do
        local g <close> = cond:acquire()
        cond:notify()
      end
      assert.equal("b", b:await())
      assert.is_false(cond:locked())
    end)
  end)

  it("random cancellations leave no lock held and no permit lost", function()
    math.randomseed(42)
    local lock = sync.Lock()
    local sem = sync.BoundedSemaphore(2)
    local cond = sync.Condition()
    local in_lock, in_sem = 0, 0
    local function leave(f)
      return setmetatable({}, {__close = f})
    end
    local function worker()
      while true do
        do
          local g <close> = lock:acquire()
          in_lock = in_lock + 1
          local out <close> = leave(function() in_lock = in_lock - 1 end)
          assert(in_lock == 1, "two holders of a lock")
          if math.random() < 0.5 then tide.sleep(0) end
        end
        do
          local p <close> = sem:acquire()
          in_sem = in_sem + 1
          local out <close> = leave(function() in_sem = in_sem - 1 end)
          assert(in_sem <= 2, "too many permits")
          if math.random() < 0.5 then tide.sleep(0) end
        end
        do
          local g <close> = cond:acquire()
          if math.random() < 0.5 then
            local ok, err = pcall(tide.timeout, 0.001, cond.wait, cond)
            -- a timeout is expected; a cancel must end the task
            if not ok and err.code ~= "ETIMEDOUT" then error(err, 0) end
          else
            cond:notify(math.random(0, 2))
          end
          assert(cond:locked())
        end
      end
    end
    local tasks = {}
    for i = 1, 8 do tasks[i] = tide.spawn(worker) end
    for _ = 1, 200 do
      tide.sleep(0)
      local i = math.random(#tasks)
      tasks[i]:cancel()
      tide.sleep(0)
      if tasks[i]:done() then
        assert.equal("ECANCELED", err_of(tasks[i].await, tasks[i]).code)
        tasks[i] = tide.spawn(worker)
      end
    end
    for _, t in ipairs(tasks) do t:cancel() end
    for _, t in ipairs(tasks) do
      local ok, err = pcall(t.await, t)
      assert(ok or err.code == "ECANCELED", tostring(err))
    end
    assert.is_false(lock:locked())
    assert.is_false(cond:locked())
    assert.equal(2, sem:value())
  end)

  describe("Barrier", function()
    it("releases every party together, round after round", function()
      local b = sync.Barrier(3)
      assert.equal(3, b:parties())
      for _ = 1, 2 do
        local arrived = {}
        local tasks = {}
        for i = 1, 3 do
          tasks[i] = tide.spawn(function()
            local n = b:wait()
            arrived[#arrived + 1] = n
          end)
          settle()
          if i < 3 then
            assert.equal(i, b:n_waiting())
            assert.equal(0, #arrived)
          end
        end
        tide.gather(tasks)
        table.sort(arrived)
        assert.same({1, 2, 3}, arrived)
      end
      assert.equal(0, b:n_waiting())
    end)

    it("a cancelled party leaves the count", function()
      local b = sync.Barrier(2)
      local t = tide.spawn(function() return b:wait() end)
      settle()
      assert.equal(1, b:n_waiting())
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.equal(0, b:n_waiting())
      local t2 = tide.spawn(function() return b:wait() end)
      settle()
      local n = tide.timeout(1, b.wait, b)
      assert.same({1, 2}, {t2:await(), n})
    end)

    it("abort breaks waiting and later parties with ECLOSED", function()
      local b = sync.Barrier(3)
      local t = tide.spawn(function() return b:wait() end)
      settle()
      b:abort()
      local err = err_of(t.await, t)
      assert.equal("ECLOSED", err.code)
      assert.is_true(b:broken())
      assert.equal("ECLOSED", err_of(b.wait, b).code)
    end)

    it("reset breaks the current round and starts over", function()
      local b = sync.Barrier(2)
      local t = tide.spawn(function() return b:wait() end)
      settle()
      b:reset()
      assert.equal("ECLOSED", err_of(t.await, t).code)
      assert.is_false(b:broken())
      local t2 = tide.spawn(function() return b:wait() end)
      settle()
      assert.equal(2, b:wait())
      assert.equal(1, t2:await())
    end)

    it("times out and stays usable", function()
      local b = sync.Barrier(2)
      assert.equal("ETIMEDOUT", err_of(tide.timeout, 0.02, b.wait, b).code)
      assert.equal(0, b:n_waiting())
      assert.has_error(function() sync.Barrier(0) end)
      assert.has_error(function() sync.Barrier("2") end)
    end)
  end)

  it("runs the examples of docs/sync.md", function()
    local examples = require "tests.lua.support.doc_examples"
    local blocks = examples(helper.root .. "/docs/sync.md")
    assert.is_true(#blocks >= 4)
    for _, block in ipairs(blocks) do
      local status, out = helper.tide(block.code)
      assert(status == 0, ("docs/sync.md:%d: %s"):format(block.line, out))
    end
  end)
end)
