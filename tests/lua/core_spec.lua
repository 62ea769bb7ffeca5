-- The core API: sleep, spawn, await, async/await, gather, race, wait,
-- timeout, wait_for, shield, group, future, introspection and Task objects.

local function settle()
  -- let cancelled tasks run their cleanup
  for _ = 1, 3 do tide.sleep(0) end
end

local function assert_clean()
  settle()
  local s = tide._stats()
  assert.equal(1, s.tasks)   -- only the main task (busted's) is alive
  assert.equal(0, s.timers)
  assert.equal(0, s.handles)
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return e
end

describe("tide.sleep", function()
  it("suspends only the calling task", function()
    local order = {}
    local t = tide.spawn(function() order[#order + 1] = "child" end)
    local t0 = tide.now()
    tide.sleep(0.02)
    order[#order + 1] = "main"
    assert.is_true(tide.now() - t0 >= 0.019)
    assert.same({"child", "main"}, order)
    assert.equal("done", t.status)
  end)

  it("sleep(0) lets other ready tasks run, in FIFO order", function()
    local order = {}
    for i = 1, 3 do
      tide.spawn(function()
        order[#order + 1] = i
        tide.sleep(0)
        order[#order + 1] = i + 10
      end)
    end
    tide.sleep(0)
    tide.sleep(0)
    assert.same({1, 2, 3, 11, 12, 13}, order)
  end)

  it("wakes sleepers in deadline order", function()
    local order = {}
    for _, d in ipairs({0.03, 0.01, 0.02}) do
      tide.spawn(function() tide.sleep(d) order[#order + 1] = d end)
    end
    tide.sleep(0.05)
    assert.same({0.01, 0.02, 0.03}, order)
  end)

  it("keeps deadline order over thousands of sleepers, some cancelled", function()
    -- Enough sleepers for a deep timer heap, with equal deadlines (FIFO
    -- among them) and cancels that take nodes out of its middle.  Of two
    -- sleepers, the one spawned first with the shorter or equal sleep must
    -- wake first; a cancelled one must never wake.
    local rng = math.random
    math.randomseed(2)
    local n, woke, tasks, dur, cancelled = 3000, {}, {}, {}, {}
    for i = 1, n do
      dur[i] = rng(0, 20) / 1000
      tasks[i] = tide.spawn(function()
        tide.sleep(dur[i])
        woke[#woke + 1] = i
      end)
    end
    tide.sleep(0) -- every sleeper is now in the heap
    for i = 1, n, 7 do
      tasks[i]:cancel()
      cancelled[i] = true
    end
    tide.wait(tasks)
    local pos = {}
    for k, i in ipairs(woke) do
      assert.is_nil(cancelled[i], "a cancelled sleeper woke")
      pos[i] = k
    end
    local expect = 0
    for i = 1, n do if not cancelled[i] then expect = expect + 1 end end
    assert.equal(expect, #woke)
    -- Compare each sleeper with the next ones of shorter-or-equal and
    -- longer sleeps (all pairs would be quadratic).
    for i = 1, n - 1 do
      for j = i + 1, math.min(n, i + 50) do
        if pos[i] and pos[j] and dur[i] <= dur[j] then
          assert(pos[i] < pos[j], ("sleeper %d (%g s) woke after %d (%g s)")
                 :format(i, dur[i], j, dur[j]))
        end
      end
    end
    assert_clean()
  end)

  it("rejects a non-number", function()
    local e = err_of(tide.sleep, "soon")
    assert.matches("bad argument #1 to 'tide.sleep'", e)
  end)

  it("treats nil and negative as sleep(0)", function()
    tide.sleep()
    tide.sleep(-1)
  end)
end)

describe("tide.spawn and await", function()
  it("runs the task when the spawner yields, with its arguments", function()
    local ran = false
    local t = tide.spawn(function(a, b)
      ran = true
      return a + b, "x"
    end, 2, 3)
    assert.is_false(ran)
    assert.equal("pending", t.status)
    local a, b = t:await()
    assert.is_true(ran)
    assert.equal(5, a)
    assert.equal("x", b)
    assert.equal("done", t.status)
  end)

  it("returns all results and keeps them for later awaits", function()
    local t = tide.spawn(function() return 1, nil, 3 end)
    local r = table.pack(tide.await(t))
    assert.equal(3, r.n)
    assert.same({1, nil, 3}, {r[1], r[2], r[3]})
    assert.same({1, nil, 3}, {t:await()})
    assert.same({1, nil, 3}, {t:result()})
  end)

  it("re-raises the task's error", function()
    local t = tide.spawn(function() error({code = "X"}) end)
    local e = err_of(tide.await, t)
    assert.equal("X", e.code)
    assert.equal("failed", t.status)
  end)

  it("lets many tasks await one", function()
    local f = tide.spawn(function() tide.sleep(0.01) return "v" end)
    local got = {}
    local ws = {}
    for i = 1, 5 do
      ws[i] = tide.spawn(function() got[i] = f:await() end)
    end
    for i = 1, 5 do ws[i]:await() end
    assert.same({"v", "v", "v", "v", "v"}, got)
  end)

  it("refuses to await itself", function()
    local t
    t = tide.spawn(function() return pcall(tide.await, t) end)
    local ok, e = t:await()
    assert.is_false(ok)
    assert.matches("cannot await itself", e)
  end)

  it("rejects what is not a Task or Future", function()
    assert.matches("Task or Future expected", err_of(tide.await, 42))
    assert.matches("bad argument #1 to 'tide.spawn'", err_of(tide.spawn, 1))
  end)

  it("provides async and await globals", function()
    local add = async(function(a, b) tide.sleep(0) return a + b end)
    local t = add(1, 2)
    assert.is_true(tide.is_task(t))
    assert.equal(3, await(t))
  end)
end)

describe("Task", function()
  it("has id, name (writable), status and a tostring", function()
    local t = tide.spawn(function() tide.sleep(0.01) end)
    assert.is_number(t.id)
    assert.equal("task-" .. t.id, t.name)
    t.name = "worker"
    assert.equal("worker", t.name)
    assert.matches("Task %d+ %(worker%) pending", tostring(t))
    tide.sleep(0)
    assert.equal("waiting", t.status)
    t:await()
    assert.equal("done", t.status)
    assert.has_error(function() t.id = 3 end)
  end)

  it("result() raises EAGAIN while unfinished", function()
    local t = tide.spawn(tide.sleep, 0.01)
    local e = err_of(t.result, t)
    assert.equal("EAGAIN", e.code)
    t:await()
    assert.same({}, {t:result()})
  end)

  it("done() and cancelled()", function()
    local t = tide.spawn(tide.sleep, 1)
    assert.is_false(t:done())
    t:cancel()
    pcall(t.await, t)
    assert.is_true(t:done())
    assert.is_true(t:cancelled())
  end)

  it("knows where its function is defined", function()
    local t = tide.spawn(function() end)
    assert.matches("^function at .-core_spec.lua:%d+", t.where)
    t:await()
  end)

  it("records the exact spawn line with TIDE_DEBUG=1", function()
    local status, out = helper.sh("TIDE_DEBUG=1 " .. helper.bin ..
      " -e 'local t = tide.spawn(print) print(t.where)'")
    assert.equal(0, status)
    assert.matches("spawned at %(command line%):1", out)
  end)
end)

describe("cancellation", function()
  it("interrupts a sleep with ECANCELED carrying the message", function()
    local t = tide.spawn(function() tide.sleep(10) end)
    tide.sleep(0)
    assert.is_true(t:cancel("shutting down"))
    local e = err_of(t.await, t)
    assert.equal("ECANCELED", e.code)
    assert.matches("shutting down", e.message)
    assert.matches("ECANCELED", tostring(e))
    assert.equal("cancelled", t.status)
    assert_clean()
  end)

  it("never runs a task cancelled before it started", function()
    local ran = false
    local t = tide.spawn(function() ran = true end)
    t:cancel()
    local e = err_of(t.await, t)
    assert.equal("ECANCELED", e.code)
    assert.is_false(ran)
    assert_clean()
  end)

  it("does nothing to a finished task", function()
    local t = tide.spawn(function() return 1 end)
    t:await()
    assert.is_false(t:cancel())
    assert.equal(1, t:await())
  end)

  it("runs <close> and pcall cleanup in the cancelled task", function()
    local closed, caught = false, nil
    local t = tide.spawn(function()
      local guard <close> = setmetatable({}, {__close = function()
        closed = true
      end})
      local ok, e = pcall(tide.sleep, 10)
      caught = e
      error(e)
    end)
    tide.sleep(0)
    t:cancel()
    pcall(t.await, t)
    assert.is_true(closed)
    assert.equal("ECANCELED", caught.code)
  end)

  it("of a running task is delivered at its next await", function()
    local reached = false
    local t = tide.spawn(function()
      tide.current():cancel()
      reached = true
      tide.sleep(0)
      return "not here"
    end)
    local e = err_of(t.await, t)
    assert.is_true(reached)
    assert.equal("ECANCELED", e.code)
  end)

  it("of a task awaiting another cancels the awaited task too", function()
    local inner = tide.spawn(tide.sleep, 10)
    local outer = tide.spawn(function() return inner:await() end)
    tide.sleep(0)
    outer:cancel()
    pcall(outer.await, outer)
    settle()
    assert.equal("cancelled", inner.status)
    assert_clean()
  end)

  it("while awaiting a future leaves the future usable", function()
    local f = tide.future()
    local t = tide.spawn(function() return f:await() end)
    tide.sleep(0)
    t:cancel()
    assert.equal("ECANCELED", err_of(t.await, t).code)
    local t2 = tide.spawn(function() return f:await() end)
    tide.sleep(0)
    f:set("ok")
    assert.equal("ok", t2:await())
    assert_clean()
  end)

  it("while in gather cancels every child", function()
    local a = tide.spawn(tide.sleep, 10)
    local b = tide.spawn(tide.sleep, 10)
    local g = tide.spawn(function() return tide.gather(a, b) end)
    tide.sleep(0)
    g:cancel()
    assert.equal("ECANCELED", err_of(g.await, g).code)
    settle()
    assert.equal("cancelled", a.status)
    assert.equal("cancelled", b.status)
    assert_clean()
  end)

  it("while inside tide.timeout leaves no deadline behind", function()
    local t = tide.spawn(function() tide.timeout(5, tide.sleep, 10) end)
    tide.sleep(0)
    t:cancel()
    assert.equal("ECANCELED", err_of(t.await, t).code)
    assert_clean()
  end)

  it("cancelling thousands of sleepers leaves nothing", function()
    local ts = {}
    for i = 1, 2000 do ts[i] = tide.spawn(tide.sleep, 5 + i / 1000) end
    tide.sleep(0)
    for i = 1, 2000, 2 do ts[i]:cancel() end
    tide.sleep(0)
    for i = 2, 2000, 2 do ts[i]:cancel() end
    for i = 1, 2000 do pcall(ts[i].await, ts[i]) end
    assert_clean()
  end)
end)

describe("tide.gather", function()
  it("returns each task's first result, accepting functions", function()
    local t = tide.spawn(function() tide.sleep(0.01) return "a", "extra" end)
    local a, b, c = tide.gather(t, function() return "b" end,
                                function() tide.sleep(0.005) return "c" end)
    assert.same({"a", "b", "c"}, {a, b, c})
  end)

  it("takes a list and returns a list", function()
    local fns = {}
    for i = 1, 10 do fns[i] = function() tide.sleep(0.001 * (10 - i)) return i end end
    local r = tide.gather(fns)
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, r)
  end)

  it("runs concurrently", function()
    local t0 = tide.now()
    tide.gather(function() tide.sleep(0.05) end, function() tide.sleep(0.05) end)
    assert.is_true(tide.now() - t0 < 0.09)
  end)

  it("cancels the others on failure, waits for them, then raises", function()
    local cleaned = false
    local slow = tide.spawn(function()
      local ok, e = pcall(tide.sleep, 10)
      tide.sleep(0) -- cleanup that awaits is still allowed
      cleaned = true
      error(e)
    end)
    local e = err_of(tide.gather, slow, function()
      tide.sleep(0.01)
      error(tide.error("EBOOM", "child failed"))
    end)
    assert.equal("EBOOM", e.code)
    assert.is_true(cleaned)
    assert.equal("cancelled", slow.status)
    assert_clean()
  end)

  it("with no arguments returns nothing", function()
    assert.equal(0, select("#", tide.gather()))
    assert.same({}, tide.gather({}))
  end)

  it("rejects other values with the argument number", function()
    assert.matches("bad argument #2 to 'gather'",
                   err_of(tide.gather, function() end, 5))
  end)
end)

describe("tide.race", function()
  it("returns the first success and cancels the rest", function()
    local slow = tide.spawn(tide.sleep, 10)
    local a, b = tide.race(slow, function() tide.sleep(0.01) return "fast", 2 end)
    assert.equal("fast", a)
    assert.equal(2, b)
    settle()
    assert.equal("cancelled", slow.status)
    assert_clean()
  end)

  it("skips failures while something may still succeed", function()
    local r = tide.race(function() error("first fails") end,
                        function() tide.sleep(0.01) return "ok" end)
    assert.equal("ok", r)
  end)

  it("raises the last error when all fail", function()
    local e = err_of(tide.race,
      function() error(tide.error("E1", "one")) end,
      function() tide.sleep(0.01) error(tide.error("E2", "two")) end)
    assert.equal("E2", e.code)
  end)
end)

describe("tide.wait", function()
  it("waits for all by default and never raises", function()
    local a = tide.spawn(function() return 1 end)
    local b = tide.spawn(function() error("bad") end)
    local done, pending = tide.wait({a, b})
    assert.equal(2, #done)
    assert.equal(0, #pending)
    assert.equal("failed", b.status)
    pcall(b.await, b)
  end)

  it("mode first returns when one finishes, cancelling nothing", function()
    local a = tide.spawn(tide.sleep, 0.01)
    local b = tide.spawn(tide.sleep, 1)
    local done, pending = tide.wait({a, b}, {mode = "first"})
    assert.same({a}, done)
    assert.same({b}, pending)
    assert.equal("waiting", b.status)
    b:cancel()
    pcall(b.await, b)
  end)

  it("mode error returns at the first failure", function()
    local a = tide.spawn(function() tide.sleep(0.01) error("x") end)
    local b = tide.spawn(tide.sleep, 1)
    local done, pending = tide.wait({a, b}, {mode = "error"})
    assert.same({a}, done)
    assert.same({b}, pending)
    b:cancel()
    pcall(a.await, a)
    pcall(b.await, b)
  end)

  it("returns at the timeout with what is pending", function()
    local a = tide.spawn(tide.sleep, 1)
    local t0 = tide.now()
    local done, pending = tide.wait({a}, {timeout = 0.02})
    assert.is_true(tide.now() - t0 < 0.5)
    assert.same({}, done)
    assert.same({a}, pending)
    assert.equal("waiting", a.status)
    a:cancel()
    pcall(a.await, a)
    assert_clean()
  end)

  it("checks its arguments", function()
    assert.matches("bad argument #1 to 'wait'", err_of(tide.wait, 1))
    assert.matches("mode", err_of(tide.wait, {}, {mode = "some"}))
  end)
end)

describe("tide.timeout", function()
  it("returns the function's results in time", function()
    local a, b = tide.timeout(1, function(x) tide.sleep(0.001) return x, 2 end, 1)
    assert.equal(1, a)
    assert.equal(2, b)
    assert_clean()
  end)

  it("raises ETIMEDOUT when the deadline passes", function()
    local t0 = tide.now()
    local e = err_of(tide.timeout, 0.02, tide.sleep, 10)
    assert.equal("ETIMEDOUT", e.code)
    assert.equal("tide.timeout", e.op)
    assert.is_true(tide.now() - t0 < 1)
    assert_clean()
  end)

  it("nests: the earliest deadline wins (inner earlier)", function()
    local inner_hit = false
    local ok = pcall(tide.timeout, 5, function()
      local e = err_of(tide.timeout, 0.01, tide.sleep, 10)
      inner_hit = e.code == "ETIMEDOUT"
      return "outer continues"
    end)
    assert.is_true(ok)
    assert.is_true(inner_hit)
    assert_clean()
  end)

  it("nests: the earliest deadline wins (outer earlier)", function()
    local inner_returned = false
    local e = err_of(tide.timeout, 0.01, function()
      tide.timeout(5, tide.sleep, 10)
      inner_returned = true
    end)
    assert.equal("ETIMEDOUT", e.code)
    assert.is_false(inner_returned)
    assert_clean()
  end)

  it("names the interrupted operation in the inner error", function()
    local inner
    pcall(tide.timeout, 0.01, function()
      local ok, e = pcall(tide.sleep, 10)
      inner = e
    end)
    assert.equal("ETIMEDOUT", inner.code)
    assert.equal("sleep", inner.op)
  end)

  it("keeps raising inside an expired scope", function()
    local second
    local e = err_of(tide.timeout, 0.01, function()
      pcall(tide.sleep, 10)        -- swallowed
      local ok, e2 = pcall(tide.sleep, 10)
      second = e2
      error(e2)
    end)
    assert.equal("ETIMEDOUT", second.code)
    assert.equal("ETIMEDOUT", e.code)
  end)

  it("passes other errors through", function()
    local e = err_of(tide.timeout, 1, function() error("plain") end)
    assert.matches("plain", e)
  end)

  it("checks its arguments", function()
    assert.matches("bad argument #1 to 'timeout'", err_of(tide.timeout, "1", print))
    assert.matches("bad argument #2 to 'timeout'", err_of(tide.timeout, 1, 2))
  end)
end)

describe("tide.wait_for", function()
  it("returns the results in time", function()
    assert.equal(7, tide.wait_for(function() tide.sleep(0.001) return 7 end, 1))
  end)

  it("cancels the task on expiry and raises ETIMEDOUT", function()
    local t = tide.spawn(tide.sleep, 10)
    local e = err_of(tide.wait_for, t, 0.01)
    assert.equal("ETIMEDOUT", e.code)
    assert.equal("cancelled", t.status)
    assert_clean()
  end)
end)

describe("tide.shield", function()
  it("keeps the task running when the awaiter is cancelled", function()
    local inner = tide.spawn(function() tide.sleep(0.02) return "finished" end)
    local outer = tide.spawn(function() return tide.shield(inner) end)
    tide.sleep(0)
    outer:cancel()
    assert.equal("ECANCELED", err_of(outer.await, outer).code)
    assert.equal("finished", inner:await())
  end)

  it("keeps the task running when a timeout expires", function()
    local inner = tide.spawn(function() tide.sleep(0.03) return 1 end)
    local e = err_of(tide.timeout, 0.01, tide.shield, inner)
    assert.equal("ETIMEDOUT", e.code)
    assert.equal(1, inner:await())
  end)
end)

describe("tide.group", function()
  it("waits for every child and returns fn's results", function()
    local done = {}
    local r = tide.group(function(g)
      for i = 1, 3 do g:spawn(function() tide.sleep(0.005 * i) done[i] = true end) end
      return "body"
    end)
    assert.equal("body", r)
    assert.same({true, true, true}, done)
  end)

  it("cancels siblings on the first failure and raises it after", function()
    local sibling
    local e = err_of(tide.group, function(g)
      sibling = g:spawn(tide.sleep, 10)
      g:spawn(function() tide.sleep(0.01) error(tide.error("EBAD", "x")) end)
    end)
    assert.equal("EBAD", e.code)
    assert.equal("cancelled", sibling.status)
    assert_clean()
  end)

  it("cancels the body when a child fails, and raises the child's error", function()
    local body_saw
    local e = err_of(tide.group, function(g)
      g:spawn(function() tide.sleep(0.01) error(tide.error("ECHILD", "child")) end)
      local ok, why = pcall(tide.sleep, 10)   -- would block the group
      body_saw = why.code
      error(why)
    end)
    assert.equal("ECHILD", e.code)
    assert.equal("ECANCELED", body_saw)
    assert_clean()
  end)

  it("cancels the children when fn fails", function()
    local child
    local e = err_of(tide.group, function(g)
      child = g:spawn(tide.sleep, 10)
      error("body failed")
    end)
    assert.matches("body failed", e)
    assert.equal("cancelled", child.status)
    assert_clean()
  end)

  it("refuses spawns after it closed", function()
    local saved
    tide.group(function(g) saved = g end)
    assert.matches("group is closed", err_of(saved.spawn, saved, function() end))
  end)
end)

describe("tide.future", function()
  it("bridges callback code", function()
    local f = tide.future()
    assert.is_false(f:done())
    tide.spawn(function() tide.sleep(0.005) f:set(1, 2) end)
    local a, b = f:await()
    assert.same({1, 2}, {a, b})
    assert.is_true(f:done())
    assert.same({1, 2}, {await(f)})
  end)

  it("fails all its awaiters", function()
    local f = tide.future()
    local ts = {}
    for i = 1, 3 do ts[i] = tide.spawn(function() return f:await() end) end
    tide.sleep(0)
    f:fail(tide.error("EX", "no"))
    for i = 1, 3 do assert.equal("EX", err_of(ts[i].await, ts[i]).code) end
  end)

  it("resolves only once", function()
    local f = tide.future()
    f:set(nil)
    assert.matches("already resolved", err_of(f.set, f, 2))
    assert.matches("already resolved", err_of(f.fail, f, "x"))
    assert.is_nil(f:await())
  end)
end)

describe("introspection", function()
  it("current() is the running task", function()
    local me = tide.current()
    assert.is_true(tide.is_task(me))
    local t = tide.spawn(function() return tide.current() end)
    assert.equal(t, t:await())
  end)

  it("tasks() lists live tasks", function()
    local t = tide.spawn(tide.sleep, 0.01)
    local found = false
    for _, x in ipairs(tide.tasks()) do if x == t then found = true end end
    assert.is_true(found)
    t:await()
    for _, x in ipairs(tide.tasks()) do assert.are_not.equal(t, x) end
  end)

  it("dump() shows name, status, wait and traceback", function()
    local t = tide.spawn(function() tide.sleep(0.05) end)
    t.name = "dumped"
    tide.sleep(0)
    local d = tide.dump()
    assert.matches("%(dumped%) waiting on sleep", d)
    assert.matches("function at .-core_spec.lua:%d+", d)
    assert.matches("stack traceback", d)
    t:cancel()
    pcall(t.await, t)
  end)

  it("dump() lists many tasks whole", function()
    -- far more text than a luaL_Buffer starts with
    local list = {}
    for i = 1, 100 do
      list[i] = tide.spawn(function() tide.sleep(10) end)
      list[i].name = "many-" .. i
    end
    tide.sleep(0)
    local d = tide.dump()
    for i = 1, 100 do
      assert.matches("%(many%-" .. i .. "%) waiting on sleep", d)
    end
    local _, tracebacks = d:gsub("stack traceback", "")
    assert.is_true(tracebacks >= 100)
    for i = 1, 100 do list[i]:cancel() end
    for i = 1, 100 do pcall(list[i].await, list[i]) end
  end)

  it("now() is monotonic with sub-millisecond resolution", function()
    local a = tide.now()
    local b = tide.now()
    assert.is_true(b >= a)
    local seen = false
    for _ = 1, 1000 do
      local x = tide.now()
      if x ~= a and x - a < 0.001 then seen = true break end
    end
    assert.is_true(seen)
  end)

  it("run() refuses to nest inside a running loop", function()
    assert.matches("already running", err_of(tide.run, function() end))
  end)
end)

describe("errors", function()
  it("have code, message, op and a tostring", function()
    local e = tide.error("EPROTO", "bad frame", {op = "net.read", path = "/x"})
    assert.equal("EPROTO", e.code)
    assert.equal("bad frame", e.message)
    assert.equal("net.read: /x: EPROTO: bad frame", tostring(e))
    assert.is_true(tide.is_error(e))
    assert.is_true(tide.is_error(e, "EPROTO"))
    assert.is_false(tide.is_error(e, "ENOENT"))
    assert.is_false(tide.is_error("EPROTO"))
  end)

  it("print long fields whole", function()
    local path, msg = ("p"):rep(5000), ("m"):rep(3000)
    local e = tide.error("EIO", msg, {op = ("o"):rep(2000), path = path})
    assert.equal(("o"):rep(2000) .. ": " .. path .. ": EIO: " .. msg,
                 tostring(e))
    e = tide.error("EIO", msg, {addr = path})
    assert.equal(path .. ": EIO: " .. msg, tostring(e))
  end)

  it("get a traceback when they escape a task", function()
    local t = tide.spawn(function() tide.sleep(0) error(tide.error("EX", "m")) end)
    local e = err_of(t.await, t)
    assert.matches("stack traceback", e.traceback)
    assert.matches("core_spec.lua", e.traceback)
  end)
end)

describe("tide._unclaimed (servers' connections whose task has not run)",
         function()
  local function conn()
    return {closed = false, close = function(self) self.closed = true end}
  end

  it("closes only the connections of tasks cancelled before they ran",
     function()
    local u = tide._unclaimed()
    local conns, tasks = {}, {}
    for i = 1, 5 do
      conns[i] = conn()
      tasks[i] = tide.spawn(function() u:claim(tide.current()) end)
      u:add(tasks[i], conns[i])
    end
    -- nothing has run yet: nothing to release
    assert.equal(0, u:release())
    tasks[2]:cancel()
    tasks[4]:cancel()
    tide.wait(tasks)
    assert.equal(2, u:release())
    for i = 1, 5 do
      assert.equal(i == 2 or i == 4, conns[i].closed, "connection " .. i)
    end
    assert.equal(0, u:release())
    assert.is_nil(next(u.conns))
  end)

  it("waits for the scheduler to have run the tasks", function()
    local u = tide._unclaimed()
    local first = tide.spawn(function() end)
    local c1, c2 = conn(), conn()
    u:add(first, c1)
    local second = tide.spawn(function() end)
    second:cancel()
    u:add(second, c2)
    -- neither has been through the scheduler yet
    assert.equal(0, u:release())
    assert.is_false(c1.closed or c2.closed)
    tide.sleep(0)
    -- the first ran without claiming: it ended unclaimed too
    assert.equal(2, u:release())
    assert.is_true(c1.closed and c2.closed)
  end)
end)
