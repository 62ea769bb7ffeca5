-- Cancellation torture: thousands of tasks run random programs of mixed
-- operations (sleep, deadlines, futures, child tasks, and whichever of
-- queue, sync, fs, net, http and process this build has) while a chaos
-- task cancels them at random await points.  The seed is fixed, so a
-- failure replays.  Afterwards: every task ended, with a result or an
-- expected error; nothing is left in tide._stats() (tasks, timers, active
-- handles, pending requests); no queue item or semaphore permit was lost
-- or duplicated; the lock works; and Lua memory, after a full collection,
-- is back near what it was after a warm-up round.
--
-- TIDE_TORTURE_TASKS (default 2000) and TIDE_TORTURE_SEED change the run.
local T = require "tests.lua.support.torture"

local NTASKS = tonumber(os.getenv("TIDE_TORTURE_TASKS")) or 2000
local SEED = tonumber(os.getenv("TIDE_TORTURE_SEED")) or 20261121

describe("cancellation torture", function()
  local baseline

  setup(function()
    baseline = T.stats()
  end)

  it("survives a warm-up round", function()
    local r = T.round(SEED, NTASKS)
    T.check(r, baseline)
  end)

  it("loses nothing and leaks nothing over further rounds", function()
    local mem0 = T.memory()
    local total = {tasks = 0, ops = 0, cancels = 0, cancelled = 0,
                   timedout = 0}
    for i = 1, 3 do
      local r = T.round(SEED + i, NTASKS)
      T.check(r, baseline)
      for k in pairs(total) do total[k] = total[k] + r[k] end
    end
    local mem1 = T.memory()
    io.stderr:write(("torture: kinds=%s tasks=%d ops=%d cancels=%d "
      .. "cancelled=%d timedout=%d lua_kb_before=%.0f lua_kb_after=%.0f\n")
      :format(table.concat(T.kinds(), ","), total.tasks, total.ops,
              total.cancels, total.cancelled, total.timedout, mem0, mem1))
    -- Three rounds of thousands of tasks may not leave more than a few
    -- hundred KiB behind (interned strings, table slack); a leak per task
    -- or per operation would be megabytes.
    assert.is_true(mem1 - mem0 < 512, ("Lua memory grew from %.0f KiB to "
      .. "%.0f KiB"):format(mem0, mem1))
  end)
end)
