-- tide.signal: wait for POSIX signals, or run a function on each one.
-- While a wait or a handler for "INT" is active, Ctrl-C is delivered to it
-- instead of cancelling the main task.

local C = require "tide._signal"
local tide = require "tide"

local signal = {
  kill = C.kill,
  name = C.name,
  number = C.number,
}

-- Raise a "bad argument" error in the caller's name when `sig` is not a
-- signal name or number.
local function check(sig, fname)
  local ok, err = pcall(C.number, sig)
  if not ok then
    local why = tostring(err):match("%((.*)%)$") or tostring(err)
    error(("bad argument #1 to '%s' (%s)"):format(fname, why), 3)
  end
end

-- signal.wait(name) -> name: suspend the calling task until the signal
-- arrives.  The wait keeps the process alive, as a pending timer does.
function signal.wait(name)
  check(name, "wait")
  local w <close> = C.watch(name, true)
  return w:next()
end

local Handler = {}
Handler.__index = Handler

-- handler:close(): stop running the function for this signal.
function Handler:close()
  if self._w then
    self._w:close()
    self._w = nil
  end
end
Handler.__close = Handler.close

function Handler:__tostring()
  return ("SignalHandler (%s%s)"):format(self.signal,
                                         self._w and "" or ", closed")
end

-- signal.on(name, fn) -> handler: run fn(name) in a new task each time the
-- signal arrives, until handler:close().  Like a Node.js signal listener it
-- does not keep the process alive by itself.
function signal.on(name, fn)
  if type(fn) ~= "function" then
    error(("bad argument #2 to 'on' (function expected, got %s)")
          :format(type(fn)), 2)
  end
  check(name, "on")
  local w = C.watch(name, false)
  local canon = C.name(name) or name
  local h = setmetatable({signal = canon, _w = w}, Handler)
  local t = tide.spawn(function()
    while true do
      local s = w:next()
      if not s then return end
      tide.spawn(fn, s)
    end
  end)
  t.name = "signal.on " .. canon
  return h
end

return signal
