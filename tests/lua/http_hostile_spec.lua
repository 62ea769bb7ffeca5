-- tide.http's server on hostile input, over real sockets: truncated and
-- malformed requests, oversized heads and bodies, bad chunk sizes, request
-- smuggling attempts, slowloris and random garbage.  After each attack the
-- server must still answer a normal request, and no connection may be
-- left open.
package.path = helper.root .. "/tests/lua/?.lua;" .. package.path
local peer = require "support.http_peer"
local http = require "tide.http"

local function serve(limits)
  local seen = {}
  local srv = http.serve{port = 0, limits = limits, log = function() end,
    handler = function(req)
      local body = req:body()
      seen[#seen + 1] = req.method .. " " .. req.path .. " " .. body
      return "ok " .. req.path
    end}
  srv.seen = seen
  return srv
end

-- The server still works, then it closes with every connection gone.
local function healthy_then_stop(srv)
  local out = peer.raw(srv.port, {"GET /health HTTP/1.1\r\n" ..
                                  "Connection: close\r\n\r\n"})
  local r = peer.parse_responses(out)[1]
  assert.equal(200, r and r.status)
  assert.equal("ok /health", r.body)
  srv:close()
  tide.wait_for(function() srv:wait() end, 5)
  assert.equal(0, srv:connections())
end

local function status_of(out)
  return tonumber(out:match("^HTTP/1%.1 (%d%d%d)"))
end

describe("http server under hostile input", function()
  it("survives truncated requests", function()
    local srv = serve()
    local cuts = {
      "GET / HTT", "GET /path HTTP/1.1\r\nHost: x", "POST / HTTP/1.1\r\n" ..
      "Content-Length: 100\r\n\r\nonly a little", "POST / HTTP/1.1\r\n" ..
      "Transfer-Encoding: chunked\r\n\r\n10\r\nabc"}
    for _, cut in ipairs(cuts) do
      local out, ending = peer.raw(srv.port, {cut, {shut = true}})
      assert.equal("EOF", ending)
      if #out > 0 then assert.equal(400, status_of(out)) end
    end
    -- and abrupt closes without half-close
    for _, cut in ipairs(cuts) do
      peer.raw(srv.port, {cut, {timeout = 0.05}})
    end
    assert.same({}, srv.seen)
    healthy_then_stop(srv)
  end)

  it("answers oversized heads with 431 and closes", function()
    local srv = serve{header_bytes = 4096}
    local out, ending = peer.raw(srv.port, {
      "GET / HTTP/1.1\r\nX-Big: " .. ("a"):rep(10000) .. "\r\n\r\n"})
    assert.equal(431, status_of(out))
    assert.equal("EOF", ending)
    local out2 = peer.raw(srv.port, {"GET /" .. ("u"):rep(8000) ..
                                     " HTTP/1.1\r\n\r\n"})
    assert.equal(431, status_of(out2))
    -- many small headers add up too
    local many = {"GET / HTTP/1.1\r\n"}
    for i = 1, 500 do many[#many + 1] = ("H%d: v\r\n"):format(i) end
    many[#many + 1] = "\r\n"
    assert.equal(431, status_of(peer.raw(srv.port, {table.concat(many)})))
    healthy_then_stop(srv)
  end)

  it("answers oversized bodies with 413", function()
    local srv = serve{body_bytes = 1000}
    local out = peer.raw(srv.port, {"POST / HTTP/1.1\r\n" ..
                                    "Content-Length: 5000\r\n\r\n"})
    assert.equal(413, status_of(out))
    local out2 = peer.raw(srv.port, {"POST / HTTP/1.1\r\n" ..
      "Transfer-Encoding: chunked\r\n\r\n" ..
      ("100\r\n" .. ("z"):rep(256) .. "\r\n"):rep(8) .. "0\r\n\r\n"})
    assert.equal(413, status_of(out2))
    assert.same({}, srv.seen)
    healthy_then_stop(srv)
  end)

  it("closes after a bad body the handler did not read, without a second "
     .. "response", function()
    local srv = http.serve{port = 0, limits = {body_bytes = 1000},
                           log = function() end,
                           handler = function() return "ignored the body" end}
    for _, body in ipairs{("400\r\n" .. ("z"):rep(1024) .. "\r\n"):rep(2),
                          "5\r\nhello\r\nzz\r\n"} do
      local out, ending = peer.raw(srv.port, {"POST / HTTP/1.1\r\n" ..
        "Transfer-Encoding: chunked\r\n\r\n" .. body .. "0\r\n\r\n"})
      local rs = peer.parse_responses(out)
      assert.equal(1, #rs)
      assert.equal(200, rs[1].status)
      assert.equal("EOF", ending)
    end
    srv:close()
    tide.wait_for(function() srv:wait() end, 5)
    assert.equal(0, srv:connections())
  end)

  it("rejects bad chunk sizes", function()
    local srv = serve()
    for _, size in ipairs{"zz", "-1", "0x10", "ffffffffffffffffff", " 5"} do
      local out, ending = peer.raw(srv.port, {"POST / HTTP/1.1\r\n" ..
        "Transfer-Encoding: chunked\r\n\r\n" .. size .. "\r\nhello\r\n" ..
        "0\r\n\r\n"})
      assert.equal(400, status_of(out), size)
      assert.equal("EOF", ending)
    end
    assert.same({}, srv.seen)
    healthy_then_stop(srv)
  end)

  it("refuses request smuggling attempts", function()
    local srv = serve()
    local attacks = {
      -- CL.TE: both framing headers
      "POST / HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked" ..
      "\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
      -- TE.CL, the other order
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3" ..
      "\r\n\r\n8\r\nGET /smu\r\n0\r\n\r\n",
      -- duplicate, conflicting Content-Length
      "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\n" ..
      "GET /smuggled HTTP/1.1\r\n\r\n",
      -- duplicate, equal Content-Length
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      -- Transfer-Encoding that does not end in chunked
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" ..
      "0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
      -- obfuscated header name
      "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
      -- bare LF inside a header value
      "GET / HTTP/1.1\r\nX: a\rGET /smuggled HTTP/1.1\r\n\r\n",
    }
    for i, attack in ipairs(attacks) do
      local out, ending = peer.raw(srv.port, {attack})
      assert.equal(400, status_of(out), "attack " .. i)
      assert.equal(1, #peer.parse_responses(out), "attack " .. i)
      assert.equal("EOF", ending, "attack " .. i)
    end
    for _, s in ipairs(srv.seen) do
      assert.is_nil(s:find("smuggled", 1, true))
    end
    healthy_then_stop(srv)
  end)

  it("serves only the declared body in a pipelined chunked request",
     function()
    local srv = serve()
    local out = peer.raw(srv.port, {"POST /a HTTP/1.1\r\nTransfer-Encoding: " ..
      "chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\nGET /b HTTP/1.1\r\n" ..
      "Connection: close\r\n\r\n"})
    local rs = peer.parse_responses(out)
    assert.equal(2, #rs)
    assert.same({"POST /a GET /", "GET /b "}, srv.seen)
    healthy_then_stop(srv)
  end)

  it("cuts off slowloris clients with 408", function()
    local srv = serve{header_timeout = 0.3, idle_timeout = 5}
    local t0 = tide.now()
    local slow = {}
    for i = 1, 5 do
      slow[i] = peer.raw_spawn(srv.port, {"GET / HTTP/1.1\r\n",
        {sleep = 0.1}, "X-a: 1\r\n", {sleep = 0.1}, "X-b: 2\r\n",
        {sleep = 0.1}, "X-c: 3\r\n", {sleep = 0.1}, "X-d: 4\r\n",
        {sleep = 0.1}, "X-e: 5\r\n", {timeout = 5}})
    end
    -- others are served meanwhile
    tide.sleep(0.05)
    local out = peer.raw(srv.port, {"GET /fast HTTP/1.1\r\n" ..
                                    "Connection: close\r\n\r\n"})
    assert.equal(200, status_of(out))
    for i = 1, 5 do
      local o, ending = slow[i]:wait()
      assert.equal(408, status_of(o))
      assert.equal("EOF", ending)
    end
    -- 0.5 s of trickling against a 0.3 s deadline; generous for slow
    -- machines, far from the 5 s the peers would wait
    assert.is_true(tide.now() - t0 < 4.5)
    healthy_then_stop(srv)
  end)

  it("holds up under 500 concurrent keep-alive connections (wrk)",
     function()
    local srv = serve()
    local st, out = peer.run(("wrk -t1 -c500 -d1s http://127.0.0.1:%d/")
                             :format(srv.port), 30)
    assert.equal(0, st, out)
    local n = tonumber(out:match("(%d+) requests in"))
    assert.is_true(n and n > 500, out)
    assert.is_nil(out:find("Non-2xx", 1, true), out)
    -- wrk closed its connections: the server's go too
    local t0 = tide.now()
    while srv:connections() > 0 and tide.now() - t0 < 10 do
      tide.sleep(0.02)
    end
    assert.equal(0, srv:connections())
    healthy_then_stop(srv)
  end)

  it("does not let blank lines keep a connection open", function()
    local srv = serve{header_timeout = 0.3, idle_timeout = 5}
    local steps = {}
    for i = 1, 10 do
      steps[#steps + 1] = "\r\n"
      steps[#steps + 1] = {sleep = 0.1}
    end
    steps[#steps + 1] = {timeout = 5}
    local t0 = tide.now()
    local out, ending = peer.raw(srv.port, steps)
    assert.equal(408, status_of(out))
    assert.equal("EOF", ending)
    assert.is_true(tide.now() - t0 < 4.5)
    healthy_then_stop(srv)
  end)

  it("closes connections that never send a byte", function()
    local srv = serve{idle_timeout = 0.2}
    local out, ending = peer.raw(srv.port, {{timeout = 5}})
    assert.equal("", out)
    assert.equal("EOF", ending)
    healthy_then_stop(srv)
  end)

  it("answers garbage with 4xx and never crashes", function()
    local srv = serve()
    local st, out = peer.run(("python3 %s/fuzzhttp.py %d 200 7")
                             :format(peer.dir, srv.port), 60)
    assert.equal(0, st, out)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local code = tonumber(line)
      assert.is_true(line == "-" or code == 200 or
                     (code >= 400 and code < 600), line)
    end
    assert.equal(200, n)
    healthy_then_stop(srv)
  end)

  it("refuses NUL bytes and bad characters in heads", function()
    local srv = serve()
    for _, bad in ipairs{"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
                         "GET /a b HTTP/1.1\r\n\r\n",
                         "GET / HTTP/1.1\r\n: empty\r\n\r\n",
                         "\0\0\0\0\r\n\r\n"} do
      local out = peer.raw(srv.port, {bad})
      assert.equal(400, status_of(out))
    end
    healthy_then_stop(srv)
  end)
end)
