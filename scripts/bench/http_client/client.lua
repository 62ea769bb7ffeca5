-- tide: fetch N small responses from URL with C requests in flight, over
-- keep-alive connections.  Prints req_per_s= and cpu_us_per_req= (process
-- CPU time, user + system, of the timed part).
-- usage: tide client.lua URL [N] [C]
local http = require "tide.http_client"
local url = assert(arg[1], "usage: client.lua URL [N] [C]")
local n, c = tonumber(arg[2]) or 10000, tonumber(arg[3]) or 64
local get = http.get

local left
local function worker()
  while left > 0 do
    left = left - 1
    local r = get(url)
    if r.status ~= 200 then error("unexpected status " .. r.status) end
  end
end

local function run(count)
  left = count
  local list = {}
  for i = 1, c do list[i] = worker end
  tide.gather(list)
end

run(c) -- open the connections first
local t0, c0 = tide.now(), os.clock()
run(n)
local t1, c1 = tide.now(), os.clock()
print(("req_per_s=%.1f"):format(n / (t1 - t0)))
print(("cpu_us_per_req=%.2f"):format((c1 - c0) * 1e6 / n))
