-- timeouts.lua: deadlines.  tide.timeout interrupts whatever the function
-- is waiting on; tide.wait_for also cancels the task it waited for.
local scale = tonumber(os.getenv("TIDE_EXAMPLE_SCALE") or 1)

local function slow_operation()
  tide.sleep(10 * scale)
  return "done"
end

-- A deadline that passes.
local ok, err = pcall(tide.timeout, 1 * scale, slow_operation)
print("timeout:", ok, err.code)

-- A deadline that does not.
print("in time:", tide.timeout(1 * scale, function()
  tide.sleep(0.1 * scale)
  return "quick"
end))

-- wait_for cancels the task on expiry.
local task = tide.spawn(slow_operation)
ok, err = pcall(tide.wait_for, task, 0.5 * scale)
print("wait_for:", ok, err.code, task.status)

-- Nested deadlines: the earliest one wins.
ok, err = pcall(tide.timeout, 5 * scale, function()
  return tide.timeout(0.2 * scale, slow_operation)
end)
print("nested:", ok, err.code)
