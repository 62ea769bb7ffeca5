-- Helpers shared by the fs, process and signal specs.
local fs = require "tide.fs"

local M = {}

-- Number of open file descriptors of this process (the listing's own
-- descriptor included, which is the same every time).
function M.nfds()
  return #fs.list("/proc/self/fd")
end

function M.pid()
  return require("tide.process").pid()
end

-- Is process `pid` still there (a zombie counts as there)?
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  f:close()
  return true
end

-- Wait (polling, at most `limit` seconds) until pred() is true.
function M.eventually(pred, limit)
  local deadline = tide.now() + (limit or 5)
  while not pred() do
    if tide.now() > deadline then return false end
    tide.sleep(0.01)
  end
  return true
end

-- A fresh temporary directory, removed by M.cleanup.
function M.tmpdir()
  return fs.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/tide-spec-")
end

function M.cleanup(dir)
  if dir then fs.remove(dir, {recursive = true}) end
end

function M.mkfifo(path)
  assert(os.execute("mkfifo " .. path))
  return path
end

-- The size of libuv's thread pool.
function M.pool_size()
  return tonumber(os.getenv("UV_THREADPOOL_SIZE") or "") or 4
end

-- The ```lua blocks of a document under docs/.
function M.doc_examples(name)
  local f = assert(io.open(helper.root .. "/docs/" .. name))
  local text = f:read("a")
  f:close()
  local blocks = {}
  for code in text:gmatch("\n```lua\n(.-)\n```") do
    blocks[#blocks + 1] = code
  end
  return blocks
end

-- Run every example of a document in its own tide process.
function M.check_doc(name)
  local blocks = M.doc_examples(name)
  assert(#blocks > 0, "no examples in docs/" .. name)
  for i, code in ipairs(blocks) do
    local status, out = helper.tide(code)
    assert(status == 0, ("docs/%s example %d failed:\n%s\n%s")
                        :format(name, i, code, out))
  end
  return #blocks
end

return M
