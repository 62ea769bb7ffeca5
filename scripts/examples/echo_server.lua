-- An echo server: every connection gets back what it sends, line by line
-- or in chunks, until it closes.
--
--   tide scripts/examples/echo_server.lua [port]
--
-- Environment: ECHO_HOST (default 127.0.0.1), ECHO_PORT (default 7007, 0
-- picks a free port), ECHO_PATH (a Unix socket instead of TCP),
-- ECHO_DURATION (stop after this many seconds; default: run until Ctrl-C).
local net = require "tide.net"

local port = tonumber(arg[1] or os.getenv("ECHO_PORT") or "7007")
local path = os.getenv("ECHO_PATH")
local duration = tonumber(os.getenv("ECHO_DURATION") or "")

local connections = 0

local server = net.listen{
  host = os.getenv("ECHO_HOST") or "127.0.0.1",
  port = port,
  path = path,
  handler = function(stream)
    connections = connections + 1
    -- chunks() yields whatever arrived, until the peer closes; write()
    -- suspends only while the peer is not keeping up.
    for chunk in stream:chunks() do
      stream:write(chunk)
    end
  end,
}

print("listening on " .. (path or (server.host .. ":" .. server.port)))
io.stdout:flush()

if duration then
  tide.sleep(duration)
  server:close()   -- stop accepting; open connections finish
  server:wait()
  if path then os.remove(path) end
  print(("served %d connections"):format(connections))
end
