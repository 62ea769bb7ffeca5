-- Fuzz driver for the HTTP server's request path end to end: the bytes
-- go over a real loopback connection to http.serve, in chunks the input
-- sizes, then the client half-closes and reads everything the server
-- sends until it closes.  Covers pipelining, chunked and Content-Length
-- bodies, Expect: 100-continue, handler errors (500), streamed (chunked)
-- responses, limits and malformed input.
--
-- Input: byte 1 picks the limits; byte 2 the number of write chunk sizes
-- that follow (0..15); the rest is what the client sends.  A request for
-- /error makes the handler raise, /stream gets a chunked response.
--
-- Invariants: the server's output is a well-formed sequence of HTTP/1.1
-- responses; it answers, in order, exactly the requests that the same
-- bytes hold according to the parser object (tide.http_parser, run on the
-- whole input) up to the first malformed one or the first that ends the
-- connection, each with what the handler returned for it; after those it
-- sends at most one 4xx/5xx and closes; it never hangs; and once the
-- server is closed no task, timer or handle is left.
--
--   build/tide tests/fuzz/drivers/http_server.lua < input
local data = ... or io.read("a")
local http = require "tide.http"
local net = require "tide.net"
local P = require "tide.http_parser"

local base = tide._stats()
local b1, b2 = data:byte(1) or 0, data:byte(2) or 0
local nsplit = b2 % 16
local cuts = {data:byte(3, 2 + nsplit)}
local input = data:sub(3 + nsplit)
local limits = {header_timeout = 5, idle_timeout = 5}
if b1 % 4 == 1 then
  limits.header_bytes, limits.body_bytes = 64 + b1, 16 + b1 // 4
elseif b1 % 4 == 2 then
  limits.body_bytes = 1
end

local STREAM = {"a", "bb", "ccc"}

-- What the parser object makes of the whole input: the requests the
-- server must answer normally, and whether it then owes an error.
local function expected_requests()
  local p = P.new(limits)
  local list, head = {}, nil
  -- Input first, then the end of it, as the server sees them.
  local function drain()
    while true do
      if not head then
        local ok, h = pcall(p.next, p)
        if not ok then return true, h.status end
        if not h then return false end
        head = h
      end
      local ok, body = pcall(p.body, p)
      if not ok then return true, body.status end
      if not body then return false end
      list[#list + 1] = {method = head.method, path = head.path, body = body}
      -- The server ends the connection after a request that asks for it
      -- and after a 500.
      if not head.keep_alive or head.path == "/error" then return true end
      head = nil
    end
  end
  p:feed(input)
  local stop, status = drain()
  if stop then return list, status end
  p:feed(nil)
  stop, status = drain()
  return list, status
end

local function answer(r)
  if r.path == "/error" then return 500, nil end
  if r.path == "/stream" then return 200, table.concat(STREAM) end
  return 200, r.method .. " " .. r.path .. " " .. #r.body
end

local server = http.serve{
  host = "127.0.0.1", port = 0, limits = limits,
  log = function() end, -- handler errors are expected here
  handler = function(req)
    local body = req:body()
    if req.path == "/error" then error("handler failure on purpose") end
    if req.path == "/stream" then
      local i = 0
      return {status = 200, body = function()
        i = i + 1
        if i > 1 then tide.sleep(0) end
        return STREAM[i]
      end}
    end
    return {status = 200, body = req.method .. " " .. req.path .. " "
            .. #body}
  end,
}

-- Send, half-close, read everything.
local c <close> = net.connect("127.0.0.1", server.port)
local received = tide.timeout(10, function()
  local pos = 1
  local ok = pcall(function()
    for i, n in ipairs(cuts) do
      c:write(input:sub(pos, pos + n - 1))
      pos = pos + n
      if i % 2 == 0 then tide.sleep(0) end
    end
    c:write(input:sub(pos))
    c:shutdown()
  end)
  -- The server may close before taking everything (after an error
  -- response); writing then fails, which is fine.
  local _ = ok
  local parts = {}
  while true do
    local okr, s = pcall(c.read, c)
    if not okr then
      assert(tide.is_error(s, "ECONNRESET"), tostring(s))
      break
    end
    if not s then break end
    parts[#parts + 1] = s
  end
  return table.concat(parts)
end)

-- ---- parse what came back -------------------------------------------------
local rpos = 1

local function line()
  local e = received:find("\r\n", rpos, true)
  assert(e, "a response line without CRLF")
  local l = received:sub(rpos, e - 1)
  rpos = e + 2
  return l
end

local function response(method, strict_body)
  local status_line = line()
  local status = status_line:match("^HTTP/1%.1 (%d%d%d) ")
  assert(status, "a malformed status line: " .. status_line)
  local headers = {}
  while true do
    local l = line()
    if l == "" then break end
    local k, v = l:match("^([%w%-]+):%s*(.-)%s*$")
    assert(k, "a malformed response header: " .. l)
    headers[k:lower()] = v
  end
  status = tonumber(status)
  local body = ""
  if status >= 200 and status ~= 204 and status ~= 304 and method ~= "HEAD"
  then
    if headers["transfer-encoding"] == "chunked" then
      local parts = {}
      while true do
        local size = tonumber(line():match("^(%x+)"), 16)
        assert(size, "a malformed chunk size")
        if size == 0 then
          assert(line() == "", "a chunked body without its last CRLF")
          break
        end
        parts[#parts + 1] = received:sub(rpos, rpos + size - 1)
        rpos = rpos + size
        assert(line() == "", "a chunk without its CRLF")
      end
      body = table.concat(parts)
    elseif not headers["content-length"] then
      -- Delimited by the end of the connection (an HTTP/1.0 client).
      assert(headers["connection"] == "close",
             "a response without a length on a kept connection")
      body = received:sub(rpos)
      rpos = #received + 1
    else
      local n = tonumber(headers["content-length"])
      assert(n, "a malformed Content-Length")
      body = received:sub(rpos, rpos + n - 1)
      assert(#body == n or not strict_body, "a truncated response body")
      rpos = rpos + n
    end
  end
  return status, body
end

-- The next final response (1xx interim responses are skipped).
local function final(method, strict)
  while true do
    local status, body = response(method, strict)
    if status >= 200 then return status, body end
    assert(status == 100, "an unexpected interim status " .. status)
  end
end

local list, err_status = expected_requests()
for i, r in ipairs(list) do
  assert(rpos <= #received, ("request %d of %d got no response")
         :format(i, #list))
  local status, body = final(r.method, true)
  local want_status, want_body = answer(r)
  assert(status == want_status, ("request %d: status %d, expected %d")
         :format(i, status, want_status))
  if want_body and r.method ~= "HEAD" then
    assert(body == want_body, ("request %d: body %q, expected %q")
           :format(i, body, want_body))
  end
end
if rpos <= #received then
  -- At most one more response: the error that ended the connection.
  local status = final("GET", false)
  assert(status >= 400 and status < 600, "an extra response " .. status)
  -- The server counts blank lines after the last request as the start of
  -- a next one (for its header deadline), so it answers 400 when the
  -- stream ends there; the parser object just sees nothing.
  assert(err_status or (status == 400 and input:find("[\r\n]$")),
         "an error response the parser does not explain")
end

-- ---- nothing left behind --------------------------------------------------
c:close()
server:close()
server:wait()
for _ = 1, 200 do
  local s = tide._stats()
  if s.tasks == base.tasks and s.handles == base.handles
      and s.timers == base.timers then
    break
  end
  tide.sleep(0.001)
end
local s = tide._stats()
assert(s.tasks == base.tasks, "tasks left")
assert(s.timers == base.timers, "timers left")
assert(s.handles == base.handles, "handles left")
return true
