-- Two workers share a queue of jobs, asyncio's classic Queue example.
-- Each job is a delay; a worker takes one, sleeps that long, marks it done
-- and takes the next.  Because the workers sleep at the same time, the
-- four delays (15 + 10 + 5 + 2 = 32 units) take about 17 units in all.
--
-- One unit is 0.1 s; set TIDE_EXAMPLE_SCALE to change it (seconds per
-- unit), e.g. TIDE_EXAMPLE_SCALE=1 tide scripts/examples/queue_workers.lua
local Queue = require "tide.queue"

local unit = tonumber(os.getenv("TIDE_EXAMPLE_SCALE")) or 0.1
local delays = {15, 10, 5, 2}

local queue = Queue.new()
local sum = 0
for _, d in ipairs(delays) do
  queue:put(d)
  sum = sum + d
end

local start = tide.now()
local function elapsed() return (tide.now() - start) / unit end

local function worker(name)
  for delay in queue:iter() do   -- ends when the queue is closed
    print(("%s running: %d units"):format(name, delay))
    tide.sleep(delay * unit)
    queue:task_done()
    print(("%s slept %d units, elapsed %.1f"):format(name, delay, elapsed()))
  end
end

local workers = {tide.spawn(worker, "worker-1"), tide.spawn(worker, "worker-2")}
queue:join()          -- every job is done
local total = elapsed()
queue:close()         -- let the workers leave their loops
tide.gather(workers)
print(("total: %.1f units (the delays add up to %d)"):format(total, sum))
