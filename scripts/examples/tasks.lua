-- tasks.lua: asyncio's create_task example.  Two tasks sleep 1 s and 2 s
-- concurrently, so the whole thing takes about 2 s, not 3.
-- TIDE_EXAMPLE_SCALE=0.05 runs it 20 times faster.
local scale = tonumber(os.getenv("TIDE_EXAMPLE_SCALE") or 1)

local function say_after(delay, what)
  tide.sleep(delay * scale)
  print(what)
end

local t0 = tide.now()
print(string.format("started at %.2f", 0))
local task1 = tide.spawn(say_after, 1, "hello")
local task2 = tide.spawn(say_after, 2, "world")
task1:await()
task2:await()
print(string.format("finished at %.2f (units of %g s)", (tide.now() - t0) / scale, scale))
