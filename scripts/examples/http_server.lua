-- A small HTTP server: a greeting, an echo of POSTed bodies, a status page
-- in JSON, a streamed countdown, and a slow route that shows one slow
-- request does not hold up the others.
--
--   tide scripts/examples/http_server.lua [port]
--   curl localhost:8080/hello?name=you
--   curl -d 'some text' localhost:8080/echo
--   curl localhost:8080/countdown
--
-- Environment: HTTP_HOST (default 127.0.0.1), HTTP_PORT (default 8080; 0
-- picks a free port), HTTP_DURATION (stop after this many seconds; default:
-- run until Ctrl-C).
local http = require "tide.http"

local port = tonumber(arg[1] or os.getenv("HTTP_PORT") or "8080")
local duration = tonumber(os.getenv("HTTP_DURATION") or "")
local started = tide.now()
local served = 0

local routes = {}

routes["/hello"] = function(req)
  return ("Hello, %s!\n"):format(req.query.name or "world")
end

routes["/echo"] = function(req)
  if req.method ~= "POST" then
    return {status = 405, headers = {Allow = "POST"},
            body = "POST something\n"}
  end
  local body = req:body()  -- read only now, and only for this route
  return {headers = {["Content-Type"] =
                       req.headers["content-type"] or "text/plain"},
          body = body}
end

routes["/status"] = function()
  return {headers = {["Content-Type"] = "application/json"},
          body = ('{"uptime": %.3f, "served": %d, "tasks": %d}\n'):format(
            tide.now() - started, served, #tide.tasks())}
end

routes["/countdown"] = function()
  local n = 4
  return {body = function()          -- a streamed (chunked) body
    n = n - 1
    if n < 0 then return nil end
    if n < 3 then tide.sleep(0.05) end
    return n > 0 and (n .. "...\n") or "liftoff\n"
  end}
end

routes["/slow"] = function()
  tide.sleep(0.5)  -- only this connection waits
  return "that took a while\n"
end

local server = http.serve{
  host = os.getenv("HTTP_HOST") or "127.0.0.1",
  port = port,
  handler = function(req)
    served = served + 1
    local route = routes[req.path]
    if not route then
      return {status = 404, body = "try /hello, /echo, /status, " ..
                                   "/countdown or /slow\n"}
    end
    return route(req)
  end,
}
print(("listening on http://%s:%d"):format(server.host, server.port))
io.stdout:flush()

if duration then
  tide.sleep(duration)
  server:close()
end
server:wait()
print(("served %d requests"):format(served))
