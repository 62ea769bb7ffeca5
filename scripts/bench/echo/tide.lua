-- TCP echo workload for tide: `server PORTFILE` runs an echo server on a
-- free port (written to PORTFILE); `client PORT CLIENTS SECONDS SIZE
-- [WARMUP]` runs
-- CLIENTS connections that each send a SIZE-byte message and wait for its
-- echo, over and over, and prints messages_per_s=... (round trips per
-- second, all connections together, after a warm-up) and messages_total=
-- (every round trip, warm-up included).
local net = require "tide.net"

local mode = arg[1]

if mode == "server" then
  local server = net.listen{host = "127.0.0.1", port = 0, backlog = 1024,
    handler = function(s)
      while true do
        local data = s:read()
        if not data then return end
        s:write(data)
      end
    end}
  local f = assert(io.open(arg[2], "w"))
  f:write(server.port, "\n")
  f:close()
  return
end

local port, clients = tonumber(arg[2]), tonumber(arg[3])
local seconds, size = tonumber(arg[4]), tonumber(arg[5])
local warmup = tonumber(arg[6] or "0.5")
local message = ("x"):rep(size)
local counting, stop = false, false
local total, all = 0, 0

local function client()
  local s <close> = net.connect("127.0.0.1", port)
  local read_exactly, write = s.read_exactly, s.write
  while not stop do
    write(s, message)
    read_exactly(s, size)
    all = all + 1
    if counting then total = total + 1 end
  end
end

local tasks = {}
for i = 1, clients do tasks[i] = tide.spawn(client) end
tide.sleep(warmup) -- not counted
counting = true
local t0 = tide.now()
tide.sleep(seconds)
counting = false
local elapsed = tide.now() - t0
stop = true
tide.gather(tasks)
print(("messages_per_s=%.0f"):format(total / elapsed))
print(("messages_total=%d"):format(all))
