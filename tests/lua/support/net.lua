-- Helpers for net_spec.lua: echo servers and checks that nothing was left
-- behind on the loop.
local net = require "tide.net"
local C = require "tide._net"

local M = {}

-- Open (not closing) libuv handles on the loop.
M.handles = C._handles

-- Let close callbacks and woken tasks run.
function M.settle()
  for _ = 1, 5 do tide.sleep(0) end
  tide.sleep(0.005)
  for _ = 1, 5 do tide.sleep(0) end
end

-- An echo server on a free port; returns the server.
function M.echo_server(opts)
  opts = opts or {}
  opts.handler = opts.handler or function(s)
    -- A client that goes away mid-transfer (the cancellation specs do
    -- that on purpose) is not a failure of the server.
    local ok, err = pcall(function()
      for chunk in s:chunks() do s:write(chunk) end
    end)
    if not ok and not (tide.is_error(err, "ECONNRESET")
                       or tide.is_error(err, "EPIPE")) then
      error(err, 0)
    end
  end
  return net.listen(opts)
end

-- A server whose handler parks every connection (never reads) until
-- release() is called; `streams` lists them.
function M.parking_server()
  local streams = {}
  local release = tide.future()
  local srv = net.listen{port = 0, handler = function(s)
    streams[#streams + 1] = s
    release:await()
  end}
  return srv, streams, function() release:set() end
end

-- Wait until pred() is true (polling the loop), at most `secs`.
function M.until_true(pred, secs)
  local deadline = tide.now() + (secs or 5)
  while not pred() do
    if tide.now() > deadline then error("condition not reached", 2) end
    tide.sleep(0.001)
  end
end

-- Connect to the server on `port` and cancel the task it spawns for the
-- connection while that task is still pending, that is before it first
-- runs.  Returns the client's stream and the cancelled task.  Polls with
-- sleep(0), so this task runs ahead of tasks queued after it.
function M.connect_cancelled(port)
  local known, c = {}, nil
  for _, t in ipairs(tide.tasks()) do known[t] = true end
  known[tide.spawn(function() c = net.connect("127.0.0.1", port) end)] = true
  local deadline = tide.now() + 5
  while true do
    for _, t in ipairs(tide.tasks()) do
      if not known[t] and t.status == "pending" then
        t:cancel()
        M.until_true(function() return c ~= nil end)
        return c, t
      end
    end
    if tide.now() > deadline then error("no connection task", 2) end
    tide.sleep(0)
  end
end

-- A string of n pseudo-random bytes (deterministic).
function M.blob(n)
  local parts, x = {}, 12345
  local chunk = {}
  for i = 1, 4096 do
    x = (x * 1103515245 + 12345) % 2147483648
    chunk[i] = string.char(x % 256)
  end
  chunk = table.concat(chunk)
  for i = 1, n // 4096 do parts[i] = chunk end
  parts[#parts + 1] = chunk:sub(1, n % 4096)
  return table.concat(parts)
end

return M
