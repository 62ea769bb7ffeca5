-- tide.net: TCP and Unix-socket streams, servers, UDP and name resolution.
-- The C half (tide._net, stdlib/net.c) does the I/O; this file turns
-- options tables into calls, applies connect timeouts, and runs one task
-- per accepted connection.

local C = require "tide._net"
local tide = require "tide"

local spawn, current = tide.spawn, tide.current
local new_unclaimed = tide._unclaimed
local is_error, new_error = tide.is_error, tide.error
local type, error, xpcall, tostring, setmetatable =
  type, error, xpcall, tostring, setmetatable
local traceback = debug.traceback
local connect_tcp, connect_pipe = C.connect_tcp, C.connect_pipe
local resolve, is_ip = C.resolve, C.is_ip

local net = {}

net.resolve = resolve

local function argerror(i, fname, expected, v)
  error(("bad argument #%d to '%s' (%s expected, got %s)")
        :format(i, fname, expected, type(v)), 3)
end

local function check_opt(opts, key, want, fname, i)
  local v = opts[key]
  if v ~= nil and type(v) ~= want then
    error(("bad argument #%d to '%s' (field '%s': %s expected, got %s)")
          :format(i, fname, key, want, type(v)), 3)
  end
  return v
end

-- connect(host, port [, opts]) or connect{host=, port=, path=, timeout=,
-- limits=} -> Stream
function net.connect(host, port, opts)
  local path, i = nil, 3
  if type(host) == "table" then
    opts, i = host, 1
    path, host, port = host.path, host.host, host.port
    if path == nil and host == nil then host = "127.0.0.1" end
  else
    if type(host) ~= "string" then argerror(1, "connect", "string", host) end
    if math.type(port) ~= "integer" then
      argerror(2, "connect", "integer", port)
    end
    if opts ~= nil and type(opts) ~= "table" then
      argerror(3, "connect", "table", opts)
    end
    opts = opts or {}
  end
  if path ~= nil and type(path) ~= "string" then
    argerror(i, "connect", "string path", path)
  end
  if path == nil then
    if type(host) ~= "string" then argerror(i, "connect", "string host", host) end
    if math.type(port) ~= "integer" then
      argerror(i, "connect", "integer port", port)
    end
  end
  local timeout = check_opt(opts, "timeout", "number", "connect", i)
  local limits = check_opt(opts, "limits", "table", "connect", i)
  local s
  if timeout then
    local ok, err = pcall(tide.timeout, timeout,
                          path and connect_pipe or connect_tcp,
                          path or host, port)
    if not ok then
      if is_error(err, "ETIMEDOUT") and err.op == "tide.timeout" then
        err = new_error("ETIMEDOUT",
                        ("connect timed out after %g s"):format(timeout),
                        {op = "net.connect",
                         addr = path or (host .. ":" .. port)})
      end
      error(err, 0)
    end
    s = err
  elseif path then
    s = connect_pipe(path)
  else
    s = connect_tcp(host, port)
  end
  if limits then s:limits(limits) end
  return s
end

-- ---- servers ----------------------------------------------------------------

local Server = {}
Server.__index = Server
Server.__name = "tide.net.Server"

local function report(srv, err)
  local msg
  if is_error(err) then
    msg = tostring(err) .. "\n" .. (err.traceback or "")
  else
    msg = tostring(err)
  end
  io.stderr:write("tide.net: connection handler failed (",
                  srv.path or (srv.host .. ":" .. tostring(srv.port)),
                  "): ", msg, "\n")
  io.stderr:flush()
end

-- Keep the traceback of where the handler failed.
local function msgh(e)
  if is_error(e) then
    if not e.traceback and not is_error(e, "ECANCELED") then
      e.traceback = traceback("", 2)
    end
    return e
  end
  return traceback(tostring(e), 2)
end

local function settle(srv)
  if srv._n == 0 and srv._c:closed() and srv._done then
    local f = srv._done
    srv._done = nil
    f:set()
  end
end

-- Until its task first runs, a connection waits in srv._unclaimed; the
-- accept loop closes those of tasks cancelled before that (see
-- tide._unclaimed) when it next accepts and when it ends.
local function release_unclaimed(srv)
  local n = srv._unclaimed:release()
  if n > 0 then
    srv._n = srv._n - n
    settle(srv)
  end
end

-- The task of one connection: run the handler, close the stream whatever
-- happens, log a failure (a cancel is passed on, not logged).
local function serve_one(srv, s)
  srv._unclaimed:claim(current())
  local ok, err = xpcall(srv._handler, msgh, s)
  s:close()
  srv._n = srv._n - 1
  settle(srv)
  if not ok then
    if is_error(err, "ECANCELED") then error(err, 0) end
    report(srv, err)
  end
end

local function accept_loop(srv)
  local c, limits = srv._c, srv._limits
  -- However the loop ends (closed, cancelled), release what it accepted.
  local _ <close> = setmetatable({}, {__close = function()
    release_unclaimed(srv)
    settle(srv)
  end})
  while true do
    local ok, s = pcall(c.accept, c)
    release_unclaimed(srv)
    if not ok then
      if is_error(s, "ECANCELED") or c:closed() then error(s, 0) end
      -- Out of descriptors or similar: say so and let the moment pass.
      report(srv, s)
      tide.sleep(0.05)
    elseif not s then
      break
    else
      if limits then s:limits(limits) end
      srv._n = srv._n + 1
      srv._unclaimed:add(spawn(serve_one, srv, s), s)
    end
  end
end

-- listen{host=, port=, path=, backlog=, handler=, limits=} -> Server
function net.listen(opts)
  if type(opts) ~= "table" then argerror(1, "listen", "table", opts) end
  local handler = check_opt(opts, "handler", "function", "listen", 1)
  local path = check_opt(opts, "path", "string", "listen", 1)
  local backlog = check_opt(opts, "backlog", "number", "listen", 1) or 511
  if math.type(backlog) ~= "integer" or backlog < 1 then
    error("bad argument #1 to 'listen' (field 'backlog': positive integer "
          .. "expected)", 2)
  end
  local limits = check_opt(opts, "limits", "table", "listen", 1)
  local host, c
  if path then
    c = C.listen_pipe(path, backlog)
  else
    host = check_opt(opts, "host", "string", "listen", 1) or "127.0.0.1"
    local port = opts.port or 0
    if math.type(port) ~= "integer" then
      error(("bad argument #1 to 'listen' (field 'port': integer expected, "
             .. "got %s)"):format(type(port)), 2)
    end
    if not is_ip(host) then host = resolve(host)[1] end
    c = C.listen_tcp(host, port, backlog)
  end
  local srv = setmetatable({
    _c = c, _handler = handler, _limits = limits, _n = 0,
    _unclaimed = new_unclaimed(),
    host = host, port = c:port(), path = path,
  }, Server)
  if handler then
    srv._task = spawn(accept_loop, srv)
    srv._task.name = "net.listen " .. (path or (host .. ":" .. srv.port))
  end
  return srv
end

-- server:accept() -> Stream or nil once closed (servers without handler).
function Server:accept()
  if self._handler then
    error("server:accept: this server runs a handler for each connection", 2)
  end
  local s = self._c:accept()
  if s and self._limits then s:limits(self._limits) end
  return s
end

-- server:close(): stop accepting; running connections go on.
function Server:close()
  self._c:close()
  settle(self)
end
Server.__close = Server.close

function Server:closed()
  return self._c:closed()
end

-- server:wait(): until the server is closed and its connections are done.
function Server:wait()
  if self._n == 0 and self._c:closed() then
    if self._task then tide.await(self._task) end
    return
  end
  self._done = self._done or tide.future()
  self._done:await()
  if self._task then tide.await(self._task) end
end

function Server:__tostring()
  return ("tide.net.Server (%s%s)"):format(
    self.path or (self.host .. ":" .. tostring(self.port)),
    self._c:closed() and ", closed" or "")
end

-- ---- UDP ----------------------------------------------------------------------

local UDP = debug.getregistry()["tide.UDP"].__index
local udp_send = UDP.send

-- udp:send(data, host, port): host may be a name.
function UDP.send(u, data, host, port)
  if type(host) == "string" and not is_ip(host) then
    host = resolve(host, "inet")[1]
  end
  udp_send(u, data, host, port)
end

-- udp{host=, port=} -> UDP socket (bound when host or port is given)
function net.udp(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(1, "udp", "table", opts)
  end
  opts = opts or {}
  local host = check_opt(opts, "host", "string", "udp", 1)
  local port = opts.port
  if port ~= nil and math.type(port) ~= "integer" then
    error(("bad argument #1 to 'udp' (field 'port': integer expected, got %s)")
          :format(type(port)), 2)
  end
  if host == nil and port ~= nil then host = "127.0.0.1" end
  if host and not is_ip(host) then host = resolve(host, "inet")[1] end
  return C.udp(host, port)
end

return net
