-- Run by a stock lua5.4 (not tide) in embed_spec.lua: loads tide through
-- package.cpath and drives it with tide.run.  The first argument is the
-- directory holding tide.so.
package.cpath = arg[1] .. "/?.so;" .. package.cpath
local tide = require "tide"
assert(tide == _G.tide and type(async) == "function" and type(await) == "function")
assert(require("tide") == tide)

local a, b, c = tide.run(function(x)
  local t = tide.spawn(function() tide.sleep(0.005) return "child" end)
  local f = tide.future()
  tide.spawn(function() tide.sleep(0) f:set("future") end)
  return x + 1, t:await(), f:await()
end, 41)
print("run", a, b, c)

local ok, err = pcall(tide.run, function() tide.sleep(0) error("inside") end)
print("error", ok, err)

-- tide.run cancels what its task left running, as asyncio.run does.
local bg = tide.run(function() return tide.spawn(tide.sleep, 60) end)
print("left", bg.status)

-- Not inside a task: async calls explain what to do.
local ok2, err2 = pcall(tide.sleep, 0.001)
print("outside", ok2, err2:match("not inside a task") ~= nil)
