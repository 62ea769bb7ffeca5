-- An echo client: N concurrent connections each send a message, wait for
-- the echo and check it, as fast as they can, for a while; then it prints
-- how many round trips per second it saw.
--
--   tide scripts/examples/echo_client.lua
--
-- Environment: ECHO_HOST / ECHO_PORT or ECHO_PATH (where the server is;
-- ECHO_PORT=0 starts an echo server inside this process), ECHO_CLIENTS
-- (default 10), ECHO_DURATION (seconds, default 2), ECHO_SIZE (message
-- size in bytes, default 64).
local net = require "tide.net"

local host = os.getenv("ECHO_HOST") or "127.0.0.1"
local port = tonumber(os.getenv("ECHO_PORT") or "7007")
local path = os.getenv("ECHO_PATH")
local clients = tonumber(os.getenv("ECHO_CLIENTS") or "10")
local duration = tonumber(os.getenv("ECHO_DURATION") or "2")
local size = tonumber(os.getenv("ECHO_SIZE") or "64")

local server
if not path and port == 0 then
  server = net.listen{port = 0, handler = function(s)
    while true do
      local chunk = s:read()
      if not chunk then break end
      s:write(chunk)
    end
  end}
  port = server.port
end

-- Connect, retrying for a moment in case the server is still starting.
local function connect()
  local deadline = tide.now() + 2
  while true do
    local ok, s = pcall(net.connect, path and {path = path} or host, port)
    if ok then return s end
    if tide.now() > deadline then error(s, 0) end
    tide.sleep(0.05)
  end
end

local message = ("m"):rep(size - 1) .. "\n"
local stop = false

local function client()
  local s <close> = connect()
  local n = 0
  while not stop do
    s:write(message)
    local reply = s:read_line()
    assert(reply and #reply == size - 1, "bad echo")
    n = n + 1
  end
  return n
end

local tasks = {}
for i = 1, clients do tasks[i] = tide.spawn(client) end
local t0 = tide.now()
tide.sleep(duration)
stop = true
local total = 0
for _, n in ipairs(tide.gather(tasks)) do total = total + n end
local elapsed = tide.now() - t0
if server then server:close() end

print(("%d clients, %d round trips in %.2f s: %.0f messages/s")
      :format(clients, total, elapsed, total / elapsed))
