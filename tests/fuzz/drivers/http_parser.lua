-- Fuzz driver for the HTTP server's request parser (tide.http_parser, the
-- core the server runs on every connection): request heads, bodies with
-- Content-Length or chunked, pipelined requests, limits.
--
-- Input: byte 1 picks the limits (small ones trip the 431/413 paths);
-- byte 2 the number of split points that follow (0..15), each a byte
-- giving the next chunk's length; the rest is the bytes a client sends.
--
-- Invariant: how the bytes are cut into reads must not change what comes
-- out.  The driver parses the bytes in one piece, in the chunks the input
-- chooses and (for short inputs) one byte at a time, and the three
-- sequences of events - each request head, each body, the error that
-- ends the input - must be the same.  Errors are EPROTO with a 4xx/5xx
-- `status`; nothing else may be raised.
--
--   build/tide tests/fuzz/drivers/http_parser.lua < input
local data = ... or io.read("a")
local P = require "tide.http_parser"

local b1, b2 = data:byte(1) or 0, data:byte(2) or 0
local nsplit = b2 % 16
local cuts = {data:byte(3, 2 + nsplit)}
local input = data:sub(3 + nsplit)
local limits
if b1 % 4 == 1 then
  limits = {header_bytes = 64 + b1, body_bytes = 16 + b1 // 4}
elseif b1 % 4 == 2 then
  limits = {header_bytes = 1024, body_bytes = 1}
end

local function describe_head(r)
  assert(type(r.method) == "string" and #r.method > 0, "a head without method")
  assert(type(r.path) == "string", "a head without path")
  assert(type(r.headers) == "table", "a head without headers")
  local names = {}
  for k, v in pairs(r.headers) do
    assert(type(k) == "string" and k == k:lower(),
           "a header name is not lower case")
    assert(type(v) == "string", "a header value is not a string")
    names[#names + 1] = k .. "=" .. v
  end
  table.sort(names)
  local q = {}
  for k, v in pairs(r.query or {}) do
    q[#q + 1] = tostring(k) .. "=" .. (type(v) == "table"
                                       and table.concat(v, ",") or tostring(v))
  end
  table.sort(q)
  return ("head %s %s %s ka=%s ec=%s {%s} ?%s"):format(r.method, r.path,
    tostring(r.version), tostring(r.keep_alive),
    tostring(r.expect_continue), table.concat(names, "\0"),
    table.concat(q, "&"))
end

-- Parse `chunks` (a list of strings) and return the list of events.
local function parse(chunks)
  local p = P.new(limits)
  local events, state, failed = {}, "head", false
  local function step()
    while not failed do
      local ok, r
      if state == "head" then
        ok, r = pcall(p.next, p)
      else
        ok, r = pcall(p.body, p)
      end
      if not ok then
        assert(tide.is_error(r, "EPROTO"), "the parser raised " .. tostring(r))
        assert(math.type(r.status) == "integer" and r.status >= 400
               and r.status < 600, "a protocol error without a 4xx/5xx")
        events[#events + 1] = "error " .. r.status
        failed = true
        return
      end
      if r == nil then return end -- needs more input
      if state == "head" then
        events[#events + 1] = describe_head(r)
        state = "body"
      else
        assert(type(r) == "string", "a body that is not a string")
        events[#events + 1] = "body " .. #r .. " " .. r
        state = "head"
      end
    end
  end
  for _, c in ipairs(chunks) do
    p:feed(c)
    step()
    assert(p:buffered() >= 0)
  end
  p:feed(nil)
  step()
  return table.concat(events, "\n")
end

local whole = parse({input})

-- The same events, except that when the head is over the size limit and
-- also malformed near the limit, which of the two errors is reported (431
-- or the other) depends on where the reads cut the bytes: the parser
-- counts the head between reads but finds other errors inside them.
local function same(a, b)
  if a == b then return true end
  local pa, sa = a:match("^(.-)error (%d+)$")
  local pb, sb = b:match("^(.-)error (%d+)$")
  return pa ~= nil and pa == pb and (sa == "431" or sb == "431")
end

local chunks, pos = {}, 1
for _, n in ipairs(cuts) do
  chunks[#chunks + 1] = input:sub(pos, pos + n - 1)
  pos = pos + n
end
chunks[#chunks + 1] = input:sub(pos)
local split = parse(chunks)
assert(same(split, whole), "the events depend on how the input was split:\n"
       .. whole .. "\n---\n" .. split)

-- All the input and its end known before the first request is taken.
local function parse_at_eof()
  local p = P.new(limits)
  p:feed(input)
  p:feed(nil)
  return p
end
do
  local p = parse_at_eof()
  local events, state = {}, "head"
  while true do
    local ok, r
    if state == "head" then
      ok, r = pcall(p.next, p)
    else
      ok, r = pcall(p.body, p)
    end
    if not ok then
      events[#events + 1] = "error " .. r.status
      break
    end
    if r == nil then break end
    if state == "head" then
      events[#events + 1] = describe_head(r)
      state = "body"
    else
      events[#events + 1] = "body " .. #r .. " " .. r
      state = "head"
    end
  end
  local at_eof = table.concat(events, "\n")
  assert(same(at_eof, whole), "the events differ when the end of the input is "
         .. "known from the start:\n" .. whole .. "\n---\n" .. at_eof)
end

if #input <= 512 then
  local bytes = {}
  for i = 1, #input do bytes[i] = input:sub(i, i) end
  local bybyte = parse(bytes)
  assert(same(bybyte, whole), "the events differ when fed byte by byte:\n"
         .. whole .. "\n---\n" .. bybyte)
end
return true
