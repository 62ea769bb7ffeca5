-- fs workload, plain blocking Lua io (the floor): the same files, written
-- and read one after the other.  Usage: lua5.4 blocking.lua [N [R [dir]]]
local N = tonumber(arg[1]) or 1000
local R = tonumber(arg[2]) or 20
local base = arg[3] or "/dev/shm"
local SIZE = 4096

local dir = base .. "/tide-bench-fs-lua-" .. tostring(os.time()) ..
            tostring(math.random(1e9))
assert(os.execute("mkdir -p " .. dir))
local data = ("x"):rep(SIZE)
local paths = {}
for i = 1, N do paths[i] = ("%s/f%04d"):format(dir, i) end

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function round()
  for i = 1, N do
    local f = assert(io.open(paths[i], "wb"))
    f:write(data)
    f:close()
  end
  for i = 1, N do
    local f = assert(io.open(paths[i], "rb"))
    local s = f:read("a")
    f:close()
    if #s ~= SIZE then error("short read") end
  end
end

round()
local t0 = now()
for _ = 1, R do round() end
local dt = now() - t0
os.execute("rm -rf " .. dir)
print(("files_per_s=%.1f"):format(N * R / dt))
print(("ops_per_s=%.1f"):format(2 * N * R / dt))
print(("round_ms=%.3f"):format(dt / R * 1000))
