-- queue workload, tide: one producer task and one consumer task pass N
-- items through a bounded queue of 100.  Prints the best time of REPEAT
-- runs, in seconds.
local Queue = require "tide.queue"

local N = tonumber(os.getenv("N")) or 1000000
local REPEAT = tonumber(os.getenv("REPEAT")) or 3

local function once()
  local q = Queue.new(100)
  local t0 = tide.now()
  local producer = tide.spawn(function()
    for i = 1, N do q:put(i) end
  end)
  local consumer = tide.spawn(function()
    local sum = 0
    for _ = 1, N do sum = sum + q:get() end
    return sum
  end)
  producer:await()
  local sum = consumer:await()
  local dt = tide.now() - t0
  assert(sum == N * (N + 1) // 2, "items lost")
  return dt
end

local best = math.huge
for _ = 1, REPEAT do best = math.min(best, once()) end
print(("%.6f"):format(best))
