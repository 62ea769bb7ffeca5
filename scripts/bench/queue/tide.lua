-- The queue benchmark, tide side: one producer task and one consumer task
-- pass N items (argument 1, default 1,000,000) through a bounded queue of
-- 100 (tide.queue).  A tenth of the work runs first, untimed, as in the
-- peers.  Prints key=value figures (see run.sh).
local Queue = require "tide.queue"

local N = tonumber(arg[1]) or 1000000

local function pass(n)
  local q = Queue.new(100)
  local t0 = tide.now()
  local producer = tide.spawn(function()
    for i = 1, n do q:put(i) end
  end)
  local consumer = tide.spawn(function()
    local sum = 0
    for _ = 1, n do sum = sum + q:get() end
    return sum
  end)
  producer:await()
  local sum = consumer:await()
  local dt = tide.now() - t0
  assert(sum == n * (n + 1) // 2, "items lost")
  return dt
end

pass(N // 10)
local dt = pass(N)
print(("items_per_s=%.0f"):format(N / dt))
print(("ns_per_item=%.1f"):format(dt * 1e9 / N))
