-- Fuzz driver for the Stream's framing: read, read_exactly, read_line and
-- read_until over a real loopback TCP connection, with the bytes arriving
-- in chunks whose sizes and timing the input chooses, reads interrupted by
-- deadlines, and line limits small enough to trip.
--
-- Input: byte 1 sets max_line (1..64, or the default when >= 128); byte 2
-- gives the number of reader op bytes that follow (0..31); the rest is the
-- payload the peer sends.  Each op byte is `op + 8 * k`.
--
-- The reader keeps its own offset into the payload and checks every result
-- against it: what a read returns is exactly the next bytes; read_line
-- returns a line without "\n" (and a "\r" before it) and with no "\n"
-- inside; read_until returns the bytes before the first separator; a read
-- interrupted by a deadline or refused by a limit (EPROTO) consumes
-- nothing; EOF comes only at the end; at the end everything was consumed.
-- Afterwards no task, timer or handle is left.
--
--   build/tide tests/fuzz/drivers/net_framing.lua < input
local data = ... or io.read("a")
local net = require "tide.net"

local base = tide._stats()
local b1, b2 = data:byte(1) or 0, data:byte(2) or 0
local nops = b2 % 32
local ops = data:sub(3, 2 + nops)
local payload = data:sub(3 + nops)
local max_line = b1 < 128 and b1 % 64 + 1 or nil
local SEPS = {"\n", "\r\n", "--", "ab", "\0", "xyz"}

-- The peer: send the payload in chunks, yielding between some of them.
local function send(s)
  local i, j = 1, 1
  while i <= #payload do
    local b = ops:byte((j - 1) % math.max(#ops, 1) + 1) or 7
    local n = 1 + (b * 7 + j) % 17
    s:write(payload:sub(i, i + n - 1))
    if b % 3 == 0 then tide.sleep(0) elseif b % 3 == 1 then s:flush() end
    i, j = i + n, j + 1
  end
  s:shutdown()
end

local server = net.listen{host = "127.0.0.1", port = 0, handler = function(s)
  send(s)
  -- Hold the connection until the reader is done with it.
  while s:read() do end
end}

local c <close> = net.connect("127.0.0.1", server.port)
if max_line then c:limits{max_line = max_line} end

local off = 1 -- the next payload byte the reader has not consumed
local eof = false

local function at(s)
  assert(payload:sub(off, off + #s - 1) == s,
         ("read returned bytes that were not next (offset %d)"):format(off))
end

local function is(e, code) return tide.is_error(e, code) end

-- A partial result at the end of the stream: all the rest, then EOF.
local function partial_end(e)
  local p = e.partial or ""
  at(p)
  assert(off + #p == #payload + 1, "EPROTO with a partial before the end")
  off = #payload + 1
  eof = true
end

local function do_line(timeout)
  local ok, l
  if timeout then
    ok, l = pcall(tide.timeout, timeout, c.read_line, c)
  else
    ok, l = pcall(c.read_line, c)
  end
  if not ok then
    if is(l, "ETIMEDOUT") then return end       -- consumed nothing
    if is(l, "EPROTO") and l.partial then return partial_end(l) end
    assert(is(l, "EPROTO"), tostring(l))
    assert(max_line, "EPROTO from read_line without a small max_line")
    return                                       -- the bytes stay
  end
  if l == nil then
    assert(off == #payload + 1, "read_line saw EOF before the end")
    eof = true
    return
  end
  at(l)
  assert(not l:find("\n", 1, true), "a line holds a newline")
  local rest = payload:sub(off + #l, off + #l + 1)
  if rest:sub(1, 1) == "\n" then
    off = off + #l + 1
  elseif rest == "\r\n" then
    off = off + #l + 2
  else
    assert(off + #l == #payload + 1, "a line ended without a newline "
           .. "before the end of the stream")
    off = off + #l
  end
end

local function do_until(sep, max, timeout)
  local ok, s
  if timeout then
    ok, s = pcall(tide.timeout, timeout, c.read_until, c, sep, max)
  else
    ok, s = pcall(c.read_until, c, sep, max)
  end
  if not ok then
    if is(s, "ETIMEDOUT") then return end
    if is(s, "EPROTO") and s.partial then return partial_end(s) end
    assert(is(s, "EPROTO"), tostring(s))
    return
  end
  if s == nil then
    assert(off == #payload + 1, "read_until saw EOF before the end")
    eof = true
    return
  end
  at(s)
  assert(not s:find(sep, 1, true), "read_until passed a separator")
  assert(payload:sub(off + #s, off + #s + #sep - 1) == sep,
         "read_until returned without its separator")
  if max then assert(#s <= max, "read_until went over its max") end
  off = off + #s + #sep
end

local function do_read(n)
  local s = c:read(n)
  if s == nil then
    assert(off == #payload + 1, "read saw EOF before the end")
    eof = true
    return
  end
  assert(#s >= 1 and (not n or #s <= n), "read returned a wrong size")
  at(s)
  off = off + #s
end

local function do_exactly(n)
  local ok, s = pcall(c.read_exactly, c, n)
  if not ok then
    assert(is(s, "EPROTO"), tostring(s))
    return partial_end(s)
  end
  assert(#s == n, "read_exactly returned a wrong size")
  at(s)
  off = off + n
end

for i = 1, #ops do
  if eof then break end
  local b = ops:byte(i)
  local op, k = b % 8, b // 8
  if op == 0 then do_read(k + 1)
  elseif op == 1 then do_line()
  elseif op == 2 then do_until(SEPS[k % 6 + 1])
  elseif op == 3 then do_until(SEPS[k % 6 + 1], k + 1)
  elseif op == 4 then do_exactly(k % 16 + 1)
  elseif op == 5 then do_line((k % 2) * 0.001)
  elseif op == 6 then do_until(SEPS[k % 6 + 1], nil, (k % 2) * 0.001)
  else do_read()
  end
end
while not eof do do_read() end
assert(off == #payload + 1, "bytes were left unread")

c:close()
server:close()
server:wait()
for _ = 1, 100 do
  local s = tide._stats()
  if s.tasks == base.tasks and s.handles == base.handles then break end
  tide.sleep(0.001)
end
local s = tide._stats()
assert(s.tasks == base.tasks, "tasks left")
assert(s.timers == base.timers, "timers left")
assert(s.handles == base.handles, "handles left")
return true
