-- Hello-world HTTP server for the benchmark: tide.http.serve.
-- Usage: tide tide.lua PORT_FILE  (binds a free loopback port, writes it)
local http = require "tide.http"
local srv = http.serve{host = "127.0.0.1", port = 0,
  handler = function() return "Hello, World!" end}
local f = assert(io.open(arg[1], "w"))
f:write(srv.port, "\n")
f:close()
srv:wait()
