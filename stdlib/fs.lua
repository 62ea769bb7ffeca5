-- tide.fs: files through libuv's thread pool.  The C half (tide._fs) does
-- the work, one thread-pool job per operation; this file adds what reads
-- better in Lua.

local C = require "tide._fs"

local fs = {}
for k, v in pairs(C) do fs[k] = v end
fs.watch = require("tide.fswatch").watch

-- fs.lines(path, ...) -> iterator over the file's lines (or the given
-- formats), like io.lines: the file is closed at the end of the loop, or
-- when the loop is left early (the fourth value is the File to close).
function fs.lines(path, ...)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'lines' (string expected, got %s)")
          :format(type(path)), 2)
  end
  local f = C.open(path, "r")
  local it = f:lines(...)
  return function()
    local v = it()
    if v == nil then f:close() end
    return v
  end, nil, nil, f
end

return fs
