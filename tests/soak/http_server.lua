-- The server the soak puts under wrk (tests/soak/run.sh): a hello-world
-- handler and a 4 KiB one, on a free loopback port that it prints first.
-- Runs until killed.
local http = require "tide.http"

local body = ("x"):rep(4096)
local srv = http.serve{
  host = "127.0.0.1",
  port = tonumber(arg[1]) or 0,
  handler = function(req)
    if req.path == "/4k" then
      return {status = 200, headers = {["content-type"] = "text/plain"},
              body = body}
    end
    return "hello"
  end,
}
io.stdout:write(srv.port, "\n")
io.stdout:flush()
srv:wait()
