-- python3 -m http.server as a peer for the HTTP client specs: serves a
-- fresh temporary directory on a free loopback port (port 0: the server
-- picks one and prints it).
--
--   local pyhttp = require "support.pyhttp"
--   local srv = pyhttp.start{["hello.txt"] = "hi\n"}
--   srv:url("/hello.txt")     --> "http://127.0.0.1:<port>/hello.txt"
--   srv:stop()                -- kills the server, removes the directory

local M = {}

local function sh(cmd)
  return select(2, helper.sh(cmd))
end

local Server = {}
Server.__index = Server

function Server:url(path)
  return ("http://127.0.0.1:%s%s"):format(self.port, path)
end

function Server:stop()
  os.execute("kill " .. self.pid .. " 2>/dev/null; rm -rf " .. self.dir)
end

-- start(files) -> Server, once it listens; files maps names to contents.
function M.start(files)
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  for name, data in pairs(files) do
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(data)
    f:close()
  end
  local log = dir .. "/server.log"
  local pid = sh(("python3 -u -m http.server --bind 127.0.0.1 "
                  .. "--directory %s 0 >%s 2>&1 & echo $!")
                 :format(dir, log)):match("%d+")
  local srv = setmetatable({dir = dir, pid = pid}, Server)
  for _ = 1, 1000 do
    local lf = io.open(log)
    srv.port = lf and lf:read("a"):match("port (%d+)")
    if lf then lf:close() end
    if srv.port then return srv end
    tide.sleep(0.01)
  end
  srv:stop()
  error("python3 -m http.server did not start")
end

return M
