-- The queue soak: a producer, three stages and a consumer joined by
-- bounded queues move items for SOAK_SECONDS (or SOAK_ITEMS items), while
-- the process's RSS is sampled.  Exits non-zero if an item is lost or
-- duplicated (the count and the sum of what arrives), or if RSS after the
-- warm-up (the first quarter) grows by more than SOAK_RSS_BOUND_KB (8192).
--   build/tide tests/soak/queue_pipeline.lua
local Q = require "tide.queue"

local seconds = tonumber(os.getenv("SOAK_SECONDS")) or 10
local max_items = tonumber(os.getenv("SOAK_ITEMS")) or math.huge
local bound_kb = tonumber(os.getenv("SOAK_RSS_BOUND_KB")) or 8192

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

local q1, q2, q3 = Q.new(256), Q.new(256), Q.new(256)
local stop = false
local produced, consumed, sum_in, sum_out = 0, 0, 0, 0

local producer = tide.spawn(function()
  local i = 0
  while not stop and i < max_items do
    i = i + 1
    q1:put(i)
    sum_in = sum_in + i
  end
  produced = i
  q1:close()
end)

-- Stage: move items from a to b; the last one to finish closes b.
local function stages(a, b, n)
  local left = n
  for _ = 1, n do
    tide.spawn(function()
      for item in a:iter() do b:put(item) end
      left = left - 1
      if left == 0 then b:close() end
    end)
  end
end
stages(q1, q2, 3)
stages(q2, q3, 1)

local consumer = tide.spawn(function()
  for item in q3:iter() do
    consumed = consumed + 1
    sum_out = sum_out + item
  end
end)

local samples = {}
local t0 = tide.now()
while tide.now() - t0 < seconds and not producer:done() do
  tide.sleep(0.25)
  samples[#samples + 1] = rss_kb()
end
stop = true
producer:await()
consumer:await()

local elapsed = tide.now() - t0
local warm = math.max(1, #samples // 4)
local base, peak = samples[warm] or 0, 0
for i = warm, #samples do peak = math.max(peak, samples[i]) end
local ok = produced == consumed and sum_in == sum_out
    and peak - base <= bound_kb
print(("queue-pipeline items=%d seconds=%.1f items_per_s=%.0f "
  .. "rss_warm_kb=%d rss_peak_kb=%d growth_kb=%d lost=%d result=%s")
  :format(consumed, elapsed, consumed / elapsed, base, peak, peak - base,
          produced - consumed, ok and "ok" or "FAILED"))
if not ok then os.exit(1) end
