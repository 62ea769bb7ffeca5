-- A real nginx for the HTTP specs: writes a config into a fresh temporary
-- directory, makes a self-signed certificate with `openssl req`, starts
-- `nginx -p <dir> -c nginx.conf -g 'daemon off;'` on free loopback ports
-- and stops it again.  Used by the client specs (against it) and the server
-- specs (as a peer or a reverse proxy, through `extra`).
--
--   local nginx = require "support.nginx"   -- or dofile(...)
--   local srv = nginx.start{http2 = true}
--   srv:url("/text")          --> "http://127.0.0.1:<port>/text"
--   srv:url("/text", "https") --> "https://localhost:<ssl_port>/text"
--   srv.cert                  --> path of the self-signed certificate (PEM)
--   srv:stop()
--
-- Locations (all on both the plain and the TLS server):
--   /text            "hello, world\n", text/plain
--   /json            {"ok":true,"n":42,"list":[1,2,3]}, application/json
--   /status/<code>   an empty response with that status, for the codes in
--                    nginx.statuses
--   /redirect        302 to /text;  /redirect/2 -> /redirect -> /text
--   /redirect/abs    302 to the absolute URL of /text
--   /loop            302 to itself, forever
--   /gzip            a long text/plain body, gzip-compressed for clients
--                    that accept it
--   /chunked         a chunked body ("a\nb\nc\n") in three flushes
--   /slow            "done\n" after ?s= seconds (default 5)
--   /drip            five lines "line <i>\n", one every ?s= seconds
--                    (default 0.1), chunked
--   /large           a static file of nginx.large_size random bytes
--                    (large.bin in the directory, for comparisons)
--   /echo            the request body, as sent
--   /method          the request method
--   /header          the value of the request header X-Test
--   /conn            "<connection serial> <requests on it>", to see reuse
--
-- `extra` is inserted verbatim into both server blocks, for more
-- locations (for example a `proxy_pass` to a tide server).

local M = {}

M.statuses = {200, 201, 202, 204, 301, 400, 401, 403, 404, 418, 429, 500,
              502, 503}
M.large_size = 4 * 1024 * 1024
M.gzip_text = string.rep("All work and no play makes Jack a dull boy.\n",
                         400)

local ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- Wait a little without blocking other tasks when called from a task.
local function pause(s)
  if tide and tide.current and tide.current() then
    tide.sleep(s)
  else
    os.execute("sleep " .. s)
  end
end

local function have_echo()
  return io.open(ECHO_MODULE, "rb") ~= nil
end

local function locations(large_path, extra)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add([[
    location = /text { default_type text/plain; return 200 "hello, world\n"; }
    location = /json {
      default_type application/json;
      return 200 '{"ok":true,"n":42,"list":[1,2,3]}';
    }
    location = /redirect { return 302 /text; }
    location = /redirect/2 { return 302 /redirect; }
    location = /redirect/abs { return 302 $scheme://$http_host/text; }
    location = /loop { return 302 /loop; }
    location = /gzip {
      default_type text/plain;
      gzip on; gzip_min_length 1; gzip_types text/plain;
      gzip_http_version 1.0;
      alias ]] .. large_path:gsub("large%.bin$", "gzip.txt") .. [[;
    }
    location = /large {
      default_type application/octet-stream;
      alias ]] .. large_path .. [[;
    }
    location = /method { default_type text/plain; return 200 $request_method; }
    location = /header { default_type text/plain; return 200 $http_x_test; }
    location = /conn {
      default_type text/plain;
      return 200 "$connection $connection_requests";
    }
  ]])
  for _, code in ipairs(M.statuses) do
    add(("    location = /status/%d { return %d; }\n"):format(code, code))
  end
  if have_echo() then
    add([[
    location = /chunked {
      default_type text/plain;
      echo a; echo_flush; echo b; echo_flush; echo c;
    }
    location = /slow {
      default_type text/plain;
      set $s $arg_s;
      if ($s = "") { set $s 5; }
      echo_sleep $s; echo done;
    }
    location = /drip {
      default_type text/plain;
      set $s $arg_s;
      if ($s = "") { set $s 0.1; }
      echo_foreach_split "," "1,2,3,4,5";
        echo "line $echo_it"; echo_flush; echo_sleep $s;
      echo_end;
    }
    location = /echo {
      default_type application/octet-stream;
      client_body_buffer_size 16m;
      client_max_body_size 64m;
      echo_read_request_body;
      echo_request_body;
    }
    ]])
  end
  if extra then add(extra) end
  return table.concat(L)
end

local function config(dir, port, ssl_port, opts)
  local large = dir .. "/large.bin"
  local user = ""
  if sh("test \"$(id -u)\" = 0") then user = "user root root;\n" end
  local echo = have_echo() and ("load_module " .. ECHO_MODULE .. ";\n") or ""
  local locs = locations(large, opts.extra)
  local h2 = opts.http2 and " http2" or ""
  return echo .. user .. ([[
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log %s;
events { worker_connections 4096; }
http {
  access_log %s;
  client_body_temp_path %s/tmp/body;
  proxy_temp_path %s/tmp/proxy;
  fastcgi_temp_path %s/tmp/fastcgi;
  uwsgi_temp_path %s/tmp/uwsgi;
  scgi_temp_path %s/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:%d;
    server_name localhost;
%s
  }
  server {
    listen 127.0.0.1:%d ssl%s;
    server_name localhost;
    ssl_certificate %s/cert.pem;
    ssl_certificate_key %s/key.pem;
%s
  }
}
]]):format(dir, dir, opts.log_level or "warn",
           opts.access_log and (dir .. "/access.log") or "off",
           dir, dir, dir, dir, dir, port, locs, ssl_port, h2, dir, dir, locs)
end

local Server = {}
Server.__index = Server

-- srv:url(path [, scheme]) -> an absolute URL on this server.  https URLs
-- use the name "localhost", which the certificate is made out to.
function Server:url(path, scheme)
  path = path or "/"
  if scheme == "https" then
    return ("https://localhost:%d%s"):format(self.ssl_port, path)
  end
  return ("http://127.0.0.1:%d%s"):format(self.port, path)
end

-- The nginx error log so far (for diagnosing a failed spec).
function Server:log()
  return read(self.dir .. "/error.log") or ""
end

-- The access log, when started with access_log = true.
function Server:access_log()
  return read(self.dir .. "/access.log") or ""
end

local function alive(pid)
  return (sh("kill -0 " .. pid))
end

-- Stop nginx (fast shutdown), wait until it has exited and remove the
-- directory.  Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  if self.pid then
    sh("kill -TERM " .. self.pid)
    for _ = 1, 500 do
      if not alive(self.pid) then break end
      pause(0.01)
    end
    if alive(self.pid) then sh("kill -KILL " .. self.pid) end
  end
  if not self.keep then sh("rm -rf " .. q(self.dir)) end
end
Server.__close = Server.stop
Server.__gc = Server.stop

-- Make the self-signed certificate (for "localhost" and 127.0.0.1).
local function make_cert(dir)
  local ok, out = sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
    .. "-subj /CN=localhost -addext "
    .. "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem "
    .. "-out %s/cert.pem"):format(q(dir), q(dir)))
  if not ok then error("nginx helper: openssl req failed:\n" .. out, 3) end
end

-- The pid of this process: the parent of the shell io.popen starts.
M.self_pid = assert(io.popen("echo $PPID")):read("a"):match("%d+")

-- nginx.start{http2=, extra=, access_log=, log_level=, keep=} -> Server.
-- Tries random free ports until nginx binds both.
function M.start(opts)
  opts = opts or {}
  local ok, dir = sh("mktemp -d /tmp/tide-nginx.XXXXXX")
  dir = dir:gsub("%s+$", "")
  if not ok then error("nginx helper: mktemp failed: " .. dir, 2) end
  sh("mkdir -p " .. q(dir .. "/tmp") .. " && chmod 755 " .. q(dir))
  make_cert(dir)
  sh(("head -c %d /dev/urandom > %s"):format(M.large_size,
                                             q(dir .. "/large.bin")))
  write(dir .. "/gzip.txt", M.gzip_text)
  local srv = setmetatable({dir = dir, cert = dir .. "/cert.pem",
                            keep = opts.keep}, Server)
  for _ = 1, 20 do
    local port = math.random(20000, 59999)
    local ssl_port = port + 1
    write(dir .. "/nginx.conf", config(dir, port, ssl_port, opts))
    os.remove(dir .. "/nginx.pid")
    os.remove(dir .. "/error.log")
    -- A watchdog stops nginx and removes the directory if this process
    -- dies without calling stop() (a crash in a spec); it ends with nginx.
    sh(("nginx -p %s -c nginx.conf -e %s >%s 2>&1 & n=$!; "
        .. "(while kill -0 %s 2>/dev/null && kill -0 $n 2>/dev/null; do "
        .. "sleep 0.5; done; if ! kill -0 %s 2>/dev/null; then "
        .. "kill $n 2>/dev/null; sleep 1; rm -rf %s; fi) "
        .. ">/dev/null 2>&1 </dev/null &"):format(
      q(dir), q(dir .. "/error.log"), q(dir .. "/stderr.log"), M.self_pid,
      M.self_pid, q(dir)))
    -- nginx writes its pid file once the listening sockets are bound;
    -- it exits if a bind fails.
    for _ = 1, 500 do
      local pid = read(dir .. "/nginx.pid")
      if pid and pid:match("%d+") then
        srv.pid = pid:match("%d+")
        srv.port, srv.ssl_port = port, ssl_port
        return srv
      end
      local log = (read(dir .. "/error.log") or "")
                  .. (read(dir .. "/stderr.log") or "")
      if log:find("emerg") then
        if not log:find("Address already in use", 1, true) then
          sh("rm -rf " .. q(dir))
          error("nginx helper: nginx did not start:\n" .. log, 2)
        end
        break
      end
      pause(0.01)
    end
  end
  sh("rm -rf " .. q(dir))
  error("nginx helper: could not start nginx on a free port", 2)
end

-- Is nginx installed?
function M.available()
  return (sh("command -v nginx >/dev/null"))
end

return M
