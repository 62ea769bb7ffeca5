-- Fuzz driver for the HTTP client's response handling (tide.http_client):
-- a tiny server on a loopback port answers every request with the fuzzed
-- bytes, in chunks the input sizes, and closes; the client fetches it
-- buffered, streamed, and under a deadline.  The URL is plain http://, so
-- the client's own path parses it (stdlib/http_fast.c on the shared
-- http-parser core): the response parser, gzip, the header table, body
-- accumulation, the streaming reader, max_size, the pool, error mapping and
-- cancellation.
--
-- Input: byte 1 holds options (bit 0: HEAD; bit 1: a small max_size;
-- bits 2-4: the deadline of the third fetch); byte 2 the number of chunk
-- sizes that follow (0..15); the rest is the response.
--
-- Invariants: a fetch returns a Response (integer status, a header table
-- that ignores case, a string body) or raises a tide.Error with a code;
-- streamed and buffered fetches of the same bytes agree (same status and
-- body, or both fail); a fetch under a deadline returns or raises
-- ETIMEDOUT; afterwards the client holds no transfer, waiter or live
-- response, and no task or timer is left.
--
--   build/tide tests/fuzz/drivers/http_client.lua < input
local data = ... or io.read("a")
local net = require "tide.net"
local http = require "tide.http_client"

local base = tide._stats()
local b1, b2 = data:byte(1) or 0, data:byte(2) or 0
local nsplit = b2 % 16
local cuts = {data:byte(3, 2 + nsplit)}
local response = data:sub(3 + nsplit)
local method = b1 & 1 == 1 and "HEAD" or "GET"
local max_size = b1 & 2 == 2 and 64 or nil
local deadline = ((b1 >> 2) & 7) * 0.0005

local server = net.listen{host = "127.0.0.1", port = 0, handler = function(s)
  local ok = pcall(function()
    if not s:read_until("\r\n\r\n", 65536) then return end
    local pos = 1
    for i, n in ipairs(cuts) do
      s:write(response:sub(pos, pos + n - 1))
      pos = pos + n
      if i % 2 == 0 then tide.sleep(0) end
    end
    s:write(response:sub(pos))
    s:shutdown()
    -- One response per connection.  libcurl may keep the connection for
    -- the next fetch; give it a moment to hang up, then close.
    tide.timeout(0.05, function() while s:read() do end end)
  end)
  s:close()
  local _ = ok -- the client may hang up first: that is its business
end}
local url = ("http://127.0.0.1:%d/fuzz"):format(server.port)

local function check_error(e)
  assert(tide.is_error(e), "a fetch raised a non-tide error: " .. tostring(e))
  assert(type(e.code) == "string" and e.code:match("^E[A-Z0-9]+$"),
         "an error without a code: " .. tostring(e))
end

local function check_response(r)
  assert(math.type(r.status) == "integer", "a status that is no integer")
  assert(type(r.headers) == "table", "no header table")
  for k, v in pairs(r.headers) do
    assert(k == k:lower(), "a header name is not lower case")
    assert(type(v) == "string", "a header value is not a string")
    assert(r.headers[k:upper()] == v, "header lookup does not ignore case")
  end
end

local function fetch(stream)
  return pcall(function()
    local r = http.request{url = url, method = method, max_size = max_size,
                           stream = stream, timeout = 5}
    check_response(r)
    if not stream then
      assert(type(r.body) == "string", "a body that is not a string")
      return r.status, r.body
    end
    local parts = {}
    for piece in r:chunks() do
      assert(type(piece) == "string" and #piece > 0, "an empty chunk")
      parts[#parts + 1] = piece
    end
    r:close()
    return r.status, table.concat(parts)
  end)
end

local ok1, s1, body1 = fetch(false)
if not ok1 then check_error(s1) end
local ok2, s2, body2 = fetch(true)
if not ok2 then check_error(s2) end
if ok1 then
  assert(ok2, "the streamed fetch failed where the buffered one did not: "
         .. tostring(s2))
  assert(s1 == s2, "streamed and buffered statuses differ")
  assert(body1 == body2, "streamed and buffered bodies differ")
else
  assert(not ok2, "the streamed fetch succeeded where the buffered one "
         .. "failed with " .. tostring(s1))
end

-- Under a deadline: a result or ETIMEDOUT, nothing else new.
local ok3, e3 = pcall(tide.timeout, deadline, http.request,
                      {url = url, method = method, max_size = max_size})
if not ok3 and not tide.is_error(e3, "ETIMEDOUT") then check_error(e3) end

server:close()
server:wait()
for _ = 1, 200 do
  collectgarbage()
  local st, hs = tide._stats(), http._stats()
  if st.tasks == base.tasks and st.timers == base.timers
      and hs.transfers == 0 and hs.waiting == 0 and hs.live == 0 then
    break
  end
  tide.sleep(0.001)
end
local st, hs = tide._stats(), http._stats()
assert(hs.transfers == 0, "transfers left in the client")
assert(hs.waiting == 0, "tasks left waiting in the client")
assert(hs.live == 0, "live responses left")
assert(st.tasks == base.tasks, "tasks left")
assert(st.timers == base.timers, "timers left")
return true
