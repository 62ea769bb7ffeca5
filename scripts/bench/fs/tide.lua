-- fs workload, tide: write N files of 4 KiB and read them back, all
-- concurrently (one task per file), R rounds in a tmpfs directory.
-- Usage: tide tide.lua [N [R [dir]]]; prints key=value figures.
local fs = require "tide.fs"

local N = tonumber(arg[1]) or 1000
local R = tonumber(arg[2]) or 20
local base = arg[3] or "/dev/shm"
local SIZE = 4096

local dir = fs.mkdtemp(base .. "/tide-bench-fs-")
local data = ("x"):rep(SIZE)
local paths = {}
for i = 1, N do paths[i] = ("%s/f%04d"):format(dir, i) end

local spawn, write_file, read_file = tide.spawn, fs.write_file, fs.read_file

local function round()
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(write_file, paths[i], data) end
  for i = 1, N do tasks[i]:await() end
  for i = 1, N do tasks[i] = spawn(read_file, paths[i]) end
  for i = 1, N do
    if #tasks[i]:await() ~= SIZE then error("short read") end
  end
end

round() -- warm-up: creates the files, starts the thread pool
local t0 = tide.now()
for _ = 1, R do round() end
local dt = tide.now() - t0
fs.remove(dir, {recursive = true})
print(("files_per_s=%.1f"):format(N * R / dt))
print(("ops_per_s=%.1f"):format(2 * N * R / dt))
print(("round_ms=%.3f"):format(dt / R * 1000))
