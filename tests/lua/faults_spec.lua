-- Limits and faults: running out of memory (a Lua allocator limit set with
-- TIDE_MEMORY_LIMIT), out of file descriptors (a low `ulimit -n`), a full
-- disk (a small tmpfs) and peers that reset connections mid-request.  Each
-- must give an error in the task that hit it, never a crash of the
-- runtime, and the runtime must keep working afterwards.  The scenarios run
-- in child tide processes, so a crash shows up as a signal in the exit
-- status instead of taking the test runner down.
local F = require "tests.lua.support.faults"

describe("out of memory (TIDE_MEMORY_LIMIT)", function()
  it("fails the task that allocates, and the runtime carries on", function()
    local status, out = F.run([[
      local hog = tide.spawn(function()
        local t = {}
        for i = 1, 1e8 do t[i] = ("x"):rep(64) .. i end
      end)
      local ok, err = pcall(tide.await, hog)
      print("hog", ok, err, hog.status)
      -- The memory came back; ordinary work goes on.
      local list = {}
      for i = 1, 200 do
        list[i] = tide.spawn(function() tide.sleep(0.001) return i end)
      end
      local sum = 0
      for i = 1, 200 do sum = sum + list[i]:await() end
      print("sum", sum)
      local s = tide._stats()
      print("left", s.tasks, s.timers, s.handles)
    ]], {TIDE_MEMORY_LIMIT = "16M"})
    assert.equal(0, status, out)
    assert.matches("hog\tfalse\tnot enough memory\tfailed", out, 1, true)
    assert.matches("sum\t20100", out, 1, true)
    assert.matches("left\t1\t0\t0", out, 1, true)
  end)

  it("reports an uncaught out-of-memory error in the main task", function()
    local status, out = F.run([[
      local s = ("y"):rep(1024)
      while true do s = s .. s end
    ]], {TIDE_MEMORY_LIMIT = "8M"})
    assert.equal(1, status, out)
    assert.matches("not enough memory", out, 1, true)
  end)

  it("survives running out of memory while spawning tasks", function()
    local status, out = F.run([[
      local tasks = {}
      local ok, err = pcall(function()
        while true do
          tasks[#tasks + 1] = tide.spawn(tide.sleep, 0.01)
        end
      end)
      print("spawn", ok, err, #tasks > 1000)
      -- Those tasks never ran; cancelled now, they never will.
      for _, t in ipairs(tasks) do t:cancel() end
      tasks = nil
      tide.sleep(0)
      collectgarbage()
      local t = tide.spawn(function() return "still here" end)
      print(t:await())
      print("left", tide._stats().tasks, tide._stats().timers)
    ]], {TIDE_MEMORY_LIMIT = "8M"})
    assert.equal(0, status, out)
    assert.matches("spawn\tfalse\tnot enough memory\ttrue", out, 1, true)
    assert.matches("still here", out, 1, true)
    assert.matches("left\t1\t0", out, 1, true)
  end)

  it("fails only the tasks that hit the limit when many allocate", function()
    -- Ten tasks each want to hold 4 MiB at once under a 24 MiB limit: the
    -- first ones get their memory, the later ones fail, and the runtime
    -- comes out of it with nothing left behind.
    local status, out = F.run([[
      local list = {}
      for i = 1, 10 do
        list[i] = tide.spawn(function()
          local big = ("z"):rep(4 * 1024 * 1024)
          tide.sleep(0.01)
          return #big
        end)
      end
      local ok_n, oom_n = 0, 0
      for i = 1, 10 do
        local ok, r = pcall(tide.await, list[i])
        if ok then ok_n = ok_n + 1
        elseif r == "not enough memory" then oom_n = oom_n + 1
        else error(r) end
      end
      print("ok", ok_n, "oom", oom_n)
      local s = tide._stats()
      print("left", s.tasks, s.timers)
    ]], {TIDE_MEMORY_LIMIT = "24M"})
    assert.equal(0, status, out)
    local ok_n, oom_n = out:match("ok\t(%d+)\toom\t(%d+)")
    assert.is_truthy(ok_n, out)
    assert.is_true(tonumber(ok_n) > 0 and tonumber(oom_n) > 0, out)
    assert.matches("left\t1\t0", out, 1, true)
  end)
end)
