-- demo.lua: a short tour of tide.  `make demo` runs it.
-- TIDE_EXAMPLE_SCALE shortens every wait (the tests run it at 0.05).
local scale = tonumber(os.getenv("TIDE_EXAMPLE_SCALE") or 1)
local function step(title) print(("\n== %s"):format(title)) end
local t0 = tide.now()
local function at() return ("%.2fs"):format((tide.now() - t0) / scale) end

step("tasks run concurrently: an async call is just a call")
local function brew(what, seconds)
  tide.sleep(seconds * scale)
  print(at(), what .. " ready")
  return what
end
local tea = tide.spawn(brew, "tea", 0.3)
local coffee = tide.spawn(brew, "coffee", 0.2)
local a, b = tea:await(), coffee:await()
print(at(), "both done:", a, "and", b)

step("gather, race and deadlines")
local toast, eggs = tide.gather(
  function() return brew("toast", 0.1) end,
  function() return brew("eggs", 0.2) end)
print(at(), "gathered:", toast, eggs)
local winner = tide.race(
  function() return brew("bus", 0.3) end,
  function() return brew("bike", 0.1) end)
print(at(), "race won by:", winner)
local ok, err = pcall(tide.timeout, 0.1 * scale, brew, "slow cooker", 10)
print(at(), "timeout:", ok, err.code)

step("structured concurrency with tide.group")
tide.group(function(g)
  for i = 1, 3 do
    g:spawn(function() tide.sleep(i * 0.05 * scale) print(at(), "worker", i, "done") end)
  end
end)

step("futures bridge callback code")
local answer = tide.future()
tide.spawn(function() tide.sleep(0.05 * scale) answer:set(42) end)
local value = await(answer)
print(at(), "the answer is", value)

step("generators may wait too")
local ticks = coroutine.wrap(function()
  for i = 1, 3 do tide.sleep(0.05 * scale) coroutine.yield(i) end
end)
local t1, t2, t3 = ticks(), ticks(), ticks()
print(at(), "ticks:", t1, t2, t3)

print("\ndone in " .. at())
