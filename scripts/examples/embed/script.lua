-- The script embed-host runs (see host.c).  Every delay is a multiple of
-- EMBED_DELAY_MS (default 100) so the tests can run it quickly.
local host = require "host"
local unit = tonumber(os.getenv("EMBED_DELAY_MS")) or 100
local name = ... or "world"

-- Async C functions are ordinary calls inside a task.
print("hello, " .. host.delay(unit, name))

-- Several at once: the timers and the pool job run concurrently.
local a, b, sum = tide.gather(
  function() return host.delay(2 * unit, "a") end,
  function() return host.delay(unit, "b") end,
  function() return host.checksum(("x"):rep(1e6)) end)
print("gathered", a, b, sum ~= 0)

-- A deadline cancels a pending host.delay: its cancel hook stops the timer.
local ok, err = pcall(tide.timeout, unit / 1000, host.delay, 60 * 1000)
print("timeout:", ok, err.code)

-- Errors from C are tide.Error objects with a code.
local ok2, err2 = pcall(host.delay, -1)
print("bad delay:", ok2, tostring(err2))

local sum = host.checksum("tide")

-- A background task outlives the script; the host lets it finish.
tide.spawn(function()
  host.delay(unit)
  print("background task done")
end)

return "done", sum
