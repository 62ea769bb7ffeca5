-- files.lua: write a file and read it back without blocking the loop,
-- the tide version of the aiofiles example people know from Python:
--
--   async with aiofiles.open(path, "w") as f:
--       await f.write("...")
--   async with aiofiles.open(path) as f:
--       async for line in f: ...
--
-- Every file operation runs in libuv's thread pool, so the ticker task
-- below keeps running while the files are written and read.
--
-- Run: tide scripts/examples/files.lua [count]   (count: files, default 50)

local fs = require "tide.fs"

local count = tonumber(arg and arg[1]) or 50
local dir = fs.mkdtemp()
local path = dir .. "/hello.txt"

local ticks = 0
local ticker = tide.spawn(function()
  while true do
    ticks = ticks + 1
    tide.sleep(0)
  end
end)

-- Write: the File is closed when the block ends (<close>).
do
  local f <close> = fs.open(path, "w")
  f:write("first line\n", "second line\n")
  f:write("third line\n")
end

-- Read it back line by line.
local n = 0
do
  local f <close> = fs.open(path)
  for line in f:lines() do
    n = n + 1
    print(("%d: %s"):format(n, line))
  end
end
print(("read back %d lines"):format(n))

-- Whole files at once, many at the same time: each write_file and
-- read_file is a single job in the thread pool.
local writers = {}
for i = 1, count do
  writers[i] = function()
    fs.write_file(("%s/file%03d.txt"):format(dir, i), ("line %d\n"):format(i))
  end
end
tide.gather(writers)

local readers = {}
for i, name in ipairs(fs.list(dir)) do
  readers[i] = function() return #fs.read_file(dir .. "/" .. name) end
end
local sizes = tide.gather(readers)
local total = 0
for _, s in ipairs(sizes) do total = total + s end
print(("%d files, %d bytes, while the ticker ran %s times")
      :format(#sizes, total, ticks > 0 and "many" or "no"))

-- An atomic write never leaves a half-written file behind.
fs.write_file(path, "replaced\n", {atomic = true})
print(fs.read_file(path))

ticker:cancel()
fs.remove(dir, {recursive = true})
