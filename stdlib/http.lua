-- tide.http: the HTTP/1.1 server (http.serve) on the C half in
-- stdlib/http_server.c, plus the client (get/post/request) re-exported
-- from tide.http_client when that module is built in.
--
-- Each accepted connection runs in its own task, which loops: read a
-- request head (C), call the handler, serialise the response (C).  Handler
-- errors become 500s and are logged with their traceback; malformed input
-- is answered by the C half with a 4xx and ends the connection.

local S = require "tide.http_server"
local tide = require "tide"

local spawn, current = tide.spawn, tide.current
local new_unclaimed = tide._unclaimed
local is_error, future = tide.is_error, tide.future
local type, pcall, xpcall, error, tostring, setmetatable =
  type, pcall, xpcall, error, tostring, setmetatable
local traceback = debug.traceback

local http = {}

-- The client half (get, post, request, ...), when it is built in.  Only
-- its absence is tolerated; an error while loading it is raised.
do
  local ok, client = pcall(require, "tide.http_client")
  if ok then
    for k, v in pairs(client) do http[k] = v end
  elseif not tostring(client):find("module 'tide.http_client' not found",
                                   1, true) then
    error(client, 0)
  end
end

local function default_log(msg)
  io.stderr:write("tide.http: ", msg, "\n")
  io.stderr:flush()
end

-- Message handler for the handler's xpcall: keep the error value and add
-- the traceback of where it was raised.
local function capture(e)
  if type(e) == "table" and is_error(e, "ECANCELED") then return e end
  return {err = e, tb = traceback(tostring(e), 2)}
end

-- Stream an iterator body chunk by chunk (conn:respond sent the head).
-- Returns true, or false and an error: a string (the iterator failed: the
-- handler's fault, logged) or a tide.Error (the connection failed).
local function stream_body(conn, body)
  while true do
    local ok, chunk = xpcall(body, capture)
    if not ok then
      if is_error(chunk, "ECANCELED") then error(chunk, 0) end
      return false, chunk.tb
    end
    if chunk == nil then break end
    if type(chunk) ~= "string" then
      return false, ("body iterator returned a %s, not a string")
                    :format(type(chunk))
    end
    local ok2, err = pcall(conn.write_chunk, conn, chunk)
    if not ok2 then return false, err end
  end
  return pcall(conn.end_chunks, conn)
end

local function describe(req)
  return (req.method or "?") .. " " .. (req.path or "?")
end

-- End a connection the server chose to end without losing its last
-- response: flush and send FIN, then drop what the peer still sends until
-- it closes (briefly), so closing does not answer its data with a reset
-- that could destroy the response in flight.
local LINGER = 2

local function linger(conn)
  local s = conn:stream()
  if s:closed() then return end
  pcall(tide.timeout, LINGER, function()
    s:shutdown()
    while s:read() do end
  end)
end

-- One connection: requests in order until the connection is done.
local function serve_conn(srv, conn, handler)
  local log = srv.log
  local recv, respond = conn.recv, conn.respond
  while true do
    local ok, req = pcall(recv, conn)
    if not ok then
      if is_error(req, "ECANCELED") then error(req, 0) end
      return -- idle or header deadline, reset, or closed by server:close()
    end
    if not req then break end
    local ok1, res = xpcall(handler, capture, req)
    if ok1 then
      -- respond() sends the whole response, or only the head of a
      -- streamed one and returns true.
      local ok2, err = pcall(respond, conn, res)
      if ok2 and err == true then ok2, err = stream_body(conn, res.body) end
      if not ok2 then
        if is_error(err, "ECANCELED") then error(err, 0) end
        if is_error(err) then
          -- The connection failed: reset, or a client that stopped
          -- reading for longer than the idle timeout.
          conn:abort()
          return
        end
        log(("error in the response to %s: %s"):format(describe(req),
                                               tostring(err)))
        conn:fail(500)
      end
    elseif is_error(res, "ECANCELED") then
      error(res, 0)
    elseif is_error(res.err, "EPROTO") and res.err.status then
      -- req:body() met a malformed or oversized body
      conn:fail(res.err.status)
    else
      log(("handler error in %s: %s"):format(describe(req), res.tb))
      conn:fail(500)
    end
  end
  linger(conn)
end

local Server = {}
Server.__index = Server

-- Set the done future once the server is closed and every connection has
-- ended.
local function settle(srv)
  if srv._closed and srv._accepting == false and srv._conns == 0 and
     not srv._done:done() then
    srv._done:set()
  end
end

-- Until its task first runs, a connection waits in srv._unclaimed; the
-- accept loop closes those of tasks cancelled before that (see
-- tide._unclaimed) when it next accepts and when it ends.
local function release_unclaimed(srv)
  local n = srv._unclaimed:release()
  if n > 0 then
    srv._conns = srv._conns - n
    settle(srv)
  end
end

local function conn_task(srv, conn, handler)
  srv._unclaimed:claim(current())
  local c <close> = conn
  local ok, err = pcall(serve_conn, srv, conn, handler)
  c:close()
  srv._conns = srv._conns - 1
  settle(srv)
  if not ok then error(err, 0) end
end

local function accept_loop(srv, l, handler)
  local ok, err = pcall(function()
    while true do
      local ok, conn = pcall(l.accept, l)
      release_unclaimed(srv)
      if not ok then
        if not is_error(conn) or is_error(conn, "ECANCELED") then
          error(conn, 0)
        end
        -- Out of file descriptors and the like: back off, keep serving.
        srv.log("accept failed: " .. tostring(conn))
        tide.sleep(0.05)
      elseif conn == nil then
        return
      else
        srv._conns = srv._conns + 1
        local t = spawn(conn_task, srv, conn, handler)
        t.name = "http.conn"
        srv._unclaimed:add(t, conn)
      end
    end
  end)
  l:close()
  srv._closed = true
  srv._accepting = false
  release_unclaimed(srv)
  settle(srv)
  if not ok then error(err, 0) end
end

-- http.serve{host=, port=, handler=, reuseport=, backlog=, limits=, log=}
-- -> Server
function http.serve(opts)
  if type(opts) ~= "table" then
    error(("bad argument #1 to 'serve' (table expected, got %s)")
          :format(type(opts)), 2)
  end
  local handler = opts.handler
  if type(handler) ~= "function" then
    error(("bad argument #1 to 'serve' (handler must be a function, got %s)")
          :format(type(handler)), 2)
  end
  local host = opts.host or "127.0.0.1"
  local port = opts.port or 8080
  if type(port) ~= "number" then
    error(("bad argument #1 to 'serve' (port must be a number, got %s)")
          :format(type(port)), 2)
  end
  if opts.log ~= nil and type(opts.log) ~= "function" then
    error("bad argument #1 to 'serve' (log must be a function)", 2)
  end
  local l = S.listen(host, port, {backlog = opts.backlog,
                                  reuseport = opts.reuseport,
                                  limits = opts.limits})
  local srv = setmetatable({
    host = host, port = l:port(), log = opts.log or default_log,
    _l = l, _conns = 0, _unclaimed = new_unclaimed(), _closed = false,
    _accepting = true,
    _done = future(),
  }, Server)
  srv._task = spawn(accept_loop, srv, l, handler)
  srv._task.name = "http.serve " .. host .. ":" .. srv.port
  return srv
end

-- Stop accepting; idle connections close now, busy ones after their
-- current response.  Returns at once; wait() waits for the end.
function Server:close()
  if self._closed then return end
  self._closed = true
  self._l:close()
  settle(self)
end
Server.__close = Server.close

-- Wait until the server is closed and every connection has ended.
function Server:wait()
  self._done:await()
end

-- The number of open connections.
function Server:connections()
  return self._conns
end

return http
