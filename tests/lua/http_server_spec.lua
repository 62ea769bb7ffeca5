-- tide.http's server: the request parser on its own, then http.serve
-- against real clients (curl, Python's http.client, Node's http) and a raw
-- TCP peer for exact bytes.
package.path = helper.root .. "/tests/lua/?.lua;" .. package.path
local peer = require "support.http_peer"
local http = require "tide.http"
local Parser = require "tide.http_parser"

local function url(srv, path)
  return ("http://127.0.0.1:%d%s"):format(srv.port, path or "/")
end

-- A server whose log lines are collected instead of printed.
local function serve(handler, opts)
  opts = opts or {}
  local logged = {}
  opts.port = opts.port or 0
  opts.handler = handler
  opts.log = function(msg) logged[#logged + 1] = msg end
  local srv = http.serve(opts)
  srv.logged = logged
  return srv
end

local function stop(srv)
  srv:close()
  tide.wait_for(function() srv:wait() end, 5)
end

-- Open libuv handles on the loop, and a way to let closes finish.
local handles = require("tide._net")._handles
local function settle()
  for _ = 1, 5 do tide.sleep(0) end
  tide.sleep(0.02)
  for _ = 1, 5 do tide.sleep(0) end
end

local function curl(args)
  return peer.run("curl -sS --max-time 10 " .. args)
end

describe("tide.http_parser", function()
  it("parses a request head, path, query and lower-cased headers", function()
    local p = Parser.new()
    p:feed("GET /a/b?x=1&y=two%20words&z=a+b&flag HTTP/1.1\r\n" ..
           "Host: example\r\nX-Thing:  v  \r\nAccept: a\r\naccept: b\r\n\r\n")
    local req = p:next()
    assert.equal("GET", req.method)
    assert.equal("/a/b", req.path)
    assert.same({x = "1", y = "two words", z = "a b", flag = ""}, req.query)
    assert.equal("example", req.headers.host)
    assert.equal("v", req.headers["x-thing"])
    assert.equal("a, b", req.headers.accept)
    assert.equal("1.1", req.version)
    assert.is_true(req.keep_alive)
    assert.equal("", p:body())
    assert.is_nil(p:next())
  end)

  it("collects repeated query keys into a list", function()
    local p = Parser.new()
    p:feed("GET /?a=1&a=2&a=3&b=%zz HTTP/1.1\r\n\r\n")
    local req = p:next()
    assert.same({"1", "2", "3"}, req.query.a)
    assert.equal("%zz", req.query.b)
  end)

  it("takes the path of an absolute-form URL", function()
    local p = Parser.new()
    p:feed("GET http://h:8/p/q?k=v HTTP/1.1\r\nHost: h\r\n\r\n")
    local req = p:next()
    assert.equal("/p/q", req.path)
    assert.equal("v", req.query.k)
  end)

  it("waits for more bytes, fed one at a time", function()
    local p = Parser.new()
    local msg = "POST /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    local head_end = msg:find("\r\n\r\n", 1, true) + 3
    local req
    for i = 1, #msg do
      p:feed(msg:sub(i, i))
      if not req then
        req = p:next()
        assert.equal(i >= head_end, req ~= nil)
      elseif i < #msg then
        assert.is_nil(p:body())
      end
    end
    assert.equal("POST", req.method)
    assert.equal("hello", p:body())
  end)

  it("returns pipelined requests one at a time, skipping unread bodies",
     function()
    local p = Parser.new()
    p:feed("POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" ..
           "GET /2 HTTP/1.1\r\n\r\n" ..
           "POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
           "3\r\nxyz\r\n2\r\n12\r\n0\r\n\r\n")
    assert.equal("/1", p:next().path)          -- body left unread
    assert.equal("/2", p:next().path)
    assert.equal("/3", p:next().path)
    assert.equal("xyz12", p:body())
    assert.is_nil(p:next())
  end)

  it("knows HTTP/1.0 and Connection: close", function()
    local p = Parser.new()
    p:feed("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    local a = p:next()
    assert.equal("1.0", a.version)
    assert.is_false(a.keep_alive)
    assert.is_false(p:next().keep_alive)
  end)

  it("sees Expect: 100-continue", function()
    local p = Parser.new()
    p:feed("PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
    assert.is_true(p:next().expect_continue)
  end)

  local function proto_error(data, limits)
    local p = Parser.new(limits)
    p:feed(data)
    local ok, err = pcall(function()
      assert(p:next(), "head expected")
      p:body()
    end)
    assert.is_false(ok)
    assert.equal("EPROTO", err.code)
    return err.status, err
  end

  it("rejects malformed requests with 400", function()
    assert.equal(400, proto_error("BREW / HTTP/1.1\r\n\r\n"))
    assert.equal(400, proto_error("GET / HTTP/1.1\r\nBad Header\r\n\r\n"))
    assert.equal(505, proto_error("GET / HTTP/9.1\r\n\r\n"))
    assert.equal(400, proto_error("GET /\x01 HTTP/1.1\r\n\r\n"))
    assert.equal(400, proto_error(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
  end)

  it("rejects Content-Length with Transfer-Encoding and duplicate lengths",
     function()
    assert.equal(400, proto_error("POST / HTTP/1.1\r\nContent-Length: 4\r\n" ..
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
    assert.equal(400, proto_error("POST / HTTP/1.1\r\nContent-Length: 4\r\n" ..
      "Content-Length: 5\r\n\r\nabcde"))
    assert.equal(400, proto_error("POST / HTTP/1.1\r\n" ..
      "Transfer-Encoding: gzip\r\n\r\nabc"))
  end)

  it("enforces the header and body limits", function()
    local big = "GET / HTTP/1.1\r\nX: " .. ("a"):rep(2000) .. "\r\n\r\n"
    assert.equal(431, proto_error(big, {header_bytes = 1024}))
    assert.equal(413, proto_error(
      "POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", {body_bytes = 100}))
    assert.equal(413, proto_error("POST / HTTP/1.1\r\n" ..
      "Transfer-Encoding: chunked\r\n\r\n80\r\n" .. ("x"):rep(128) .. "\r\n",
      {body_bytes = 100}))
  end)

  it("reports a truncated request at end of input", function()
    local p = Parser.new()
    p:feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert.truthy(p:next())
    assert.is_nil(p:body())
    p:feed(nil)
    local ok, err = pcall(p.body, p)
    assert.is_false(ok)
    assert.equal("EPROTO", err.code)
  end)

  it("checks its arguments", function()
    assert.has_error(function() Parser.new(5) end)
    assert.has_error(function() Parser.new({body_bytes = "x"}) end)
    assert.has_error(function() Parser.new():feed({}) end)
  end)
end)

describe("http.serve", function()
  it("answers curl with a string handler result", function()
    local srv = serve(function(req) return "hello " .. req.path end)
    local st, out = curl("-i " .. url(srv, "/there"))
    stop(srv)
    assert.equal(0, st)
    local r = peer.parse_responses(out)[1]
    assert.equal(200, r.status)
    assert.equal("hello /there", r.body)
    assert.equal("text/plain", r.headers["content-type"])
    assert.equal("12", r.headers["content-length"])
    assert.truthy(r.headers.date:match("^%a%a%a, %d%d %a%a%a %d%d%d%d " ..
                                       "%d%d:%d%d:%d%d GMT$"))
  end)

  it("gives the handler method, path, query, headers and remote",
     function()
    local seen
    local srv = serve(function(req)
      seen = {method = req.method, path = req.path, query = req.query,
              agent = req.headers["user-agent"], x = req.headers["x-test"],
              remote = req.remote}
      return "ok"
    end)
    local st = curl("-H 'X-Test: yes' " ..
                    peer.quote(url(srv, "/p/q?a=1&b=%C3%A9t%C3%A9")))
    stop(srv)
    assert.equal(0, st)
    assert.equal("GET", seen.method)
    assert.equal("/p/q", seen.path)
    assert.same({a = "1", b = "été"}, seen.query)
    assert.truthy(seen.agent:match("^curl/"))
    assert.equal("yes", seen.x)
    assert.truthy(seen.remote:match("^127%.0%.0%.1:%d+$"))
  end)

  it("builds req.headers on first use, while the request is open",
     function()
    local stash
    local srv = serve(function(req)
      if req.path == "/stash" then
        stash = req
        return "stashed"
      end
      if req.path == "/stream" then
        local sent = false
        return {body = function()
          if sent then return nil end
          sent = true
          return req.headers["x-v"]
        end}
      end
      return req.headers["x-v"] or "none"
    end)
    local _, a = curl("-H 'X-V: one' " .. url(srv, "/"))
    local _, b = curl("-H 'X-V: two' " .. url(srv, "/stream"))
    local _, c = curl(url(srv, "/stash"))
    local ok, err = pcall(function() return stash.headers end)
    stop(srv)
    assert.equal("one", a)
    assert.equal("two", b)
    assert.equal("stashed", c)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("finished", 1, true))
  end)

  it("gives an empty query table when the URL has none", function()
    local q
    local srv = serve(function(req) q = req.query; return "" end)
    curl(url(srv, "/"))
    stop(srv)
    assert.same({}, q)
  end)

  it("sends status, headers and body from a table", function()
    local srv = serve(function()
      return {status = 201, body = "made",
              headers = {["X-One"] = "1", ["Set-Cookie"] = {"a=1", "b=2"},
                         ["Content-Type"] = "application/json"}}
    end)
    local st, out = curl("-i " .. url(srv))
    stop(srv)
    assert.equal(0, st)
    assert.truthy(out:match("^HTTP/1.1 201 Created\r\n"))
    assert.truthy(out:find("X-One: 1\r\n", 1, true))
    assert.truthy(out:find("Set-Cookie: a=1\r\n", 1, true))
    assert.truthy(out:find("Set-Cookie: b=2\r\n", 1, true))
    assert.truthy(out:find("Content-Type: application/json\r\n", 1, true))
    assert.is_nil(out:find("text/plain", 1, true))
    assert.truthy(out:match("\r\n\r\nmade$"))
  end)

  it("sends no body for 204 and 304", function()
    local srv = serve(function(req)
      return {status = tonumber(req.path:sub(2)), body = "ignored"}
    end)
    local _, out = curl("-i " .. url(srv, "/204"))
    local _, out2 = curl("-i " .. url(srv, "/304"))
    stop(srv)
    assert.truthy(out:match("^HTTP/1.1 204 No Content\r\n"))
    assert.is_nil(out:find("ignored", 1, true))
    assert.is_nil(out:find("Content-Length", 1, true))
    assert.truthy(out2:match("^HTTP/1.1 304 Not Modified\r\n"))
  end)

  it("reads request bodies lazily: Content-Length, chunked, 100-continue",
     function()
    local srv = serve(function(req)
      local b = req:body()
      assert(req:body() == b) -- a second call returns the same body
      return req.method .. " " .. #b .. " " .. b:sub(1, 10)
    end)
    local _, a = curl("-d 'name=tide' " .. url(srv))
    local _, b = curl("-H 'Transfer-Encoding: chunked' -d 'chunky-body' " ..
                      url(srv))
    local big = os.tmpname()
    local f = io.open(big, "wb")
    f:write(("0123456789"):rep(20000))
    f:close()
    local _, c = curl("-v -H 'Expect: 100-continue' --data-binary @" .. big ..
                      " " .. url(srv))
    os.remove(big)
    stop(srv)
    assert.equal("POST 9 name=tide", a)
    assert.equal("POST 11 chunky-bod", b)
    assert.truthy(c:find("HTTP/1.1 100 Continue", 1, true))
    assert.truthy(c:find("POST 200000 0123456789", 1, true))
  end)

  it("closes instead of skipping a body it never asked for with 100-continue",
     function()
    local srv = serve(function() return "no thanks" end)
    local out, ending = peer.raw(srv.port, {
      "PUT /big HTTP/1.1\r\nContent-Length: 100000\r\n" ..
      "Expect: 100-continue\r\n\r\n", {timeout = 5}})
    stop(srv)
    assert.equal("EOF", ending)
    assert.is_nil(out:find("100 Continue", 1, true))
    local r = peer.parse_responses(out)[1]
    assert.equal(200, r.status)
    assert.equal("close", r.headers.connection)
    assert.equal("no thanks", r.body)
  end)

  it("reads chunked bodies with extensions and trailers", function()
    local srv = serve(function(req) return req:body() end)
    local out = peer.raw(srv.port, {
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\n" ..
      "X-Checksum: abc\r\n\r\n" ..
      "GET /next HTTP/1.1\r\nConnection: close\r\n\r\n"})
    stop(srv)
    local rs = peer.parse_responses(out)
    assert.equal(2, #rs)
    assert.equal("Wikipedia", rs[1].body)
    assert.equal("", rs[2].body)
  end)

  it("streams an iterator body with chunked encoding", function()
    local srv = serve(function()
      local i = 0
      return {headers = {["content-type"] = "text/csv"}, body = function()
        i = i + 1
        if i > 5 then return nil end
        tide.sleep(0.001)
        return "row" .. i .. "\n"
      end}
    end)
    local _, out = curl("-i --raw " .. url(srv))
    stop(srv)
    assert.truthy(out:find("Transfer-Encoding: chunked\r\n", 1, true))
    assert.truthy(out:find("5\r\nrow1\n\r\n", 1, true))
    assert.truthy(out:match("0\r\n\r\n$"))
    local r = peer.parse_responses(out)[1]
    assert.equal("row1\nrow2\nrow3\nrow4\nrow5\n", r.body)
  end)

  it("cuts a streamed response short when its iterator fails", function()
    local srv = serve(function()
      local n = 0
      return {body = function()
        n = n + 1
        if n == 3 then error("iterator broke") end
        return "part" .. n .. "\n"
      end}
    end)
    local out, ending = peer.raw(srv.port, {"GET / HTTP/1.1\r\n\r\n"})
    stop(srv)
    assert.equal("EOF", ending)
    assert.truthy(out:find("part2", 1, true))
    assert.is_nil(out:find("0\r\n\r\n", 1, true)) -- no final chunk
    assert.truthy(srv.logged[1]:find("iterator broke", 1, true))
  end)

  it("streams to an HTTP/1.0 client without chunks, then closes", function()
    local srv = serve(function()
      local n = 0
      return {body = function()
        n = n + 1
        if n <= 2 then return "line" .. n .. "\n" end
      end}
    end)
    local out, ending = peer.raw(srv.port, {"GET / HTTP/1.0\r\n\r\n"})
    stop(srv)
    assert.equal("EOF", ending)
    assert.is_nil(out:find("chunked", 1, true))
    assert.truthy(out:find("Connection: close\r\n", 1, true))
    assert.truthy(out:match("\r\n\r\nline1\nline2\n$"))
  end)

  it("answers HEAD with headers only", function()
    local srv = serve(function() return "twelve bytes" end)
    local _, out = curl("-I " .. url(srv))
    stop(srv)
    assert.truthy(out:find("Content-Length: 12\r\n", 1, true))
    assert.is_nil(out:find("twelve", 1, true))
  end)

  it("keeps connections alive across requests", function()
    local remotes = {}
    local srv = serve(function(req)
      remotes[#remotes + 1] = req.remote
      return "r" .. #remotes
    end)
    local st, out = curl(url(srv, "/1") .. " " .. url(srv, "/2") .. " " ..
                         url(srv, "/3"))
    stop(srv)
    assert.equal(0, st)
    assert.equal("r1r2r3", out)
    assert.equal(remotes[1], remotes[2])
    assert.equal(remotes[1], remotes[3])
  end)

  it("serves pipelined requests in order", function()
    local srv = serve(function(req)
      if req.path == "/slow" then tide.sleep(0.02) end
      return req.path
    end)
    local out = peer.raw(srv.port, {
      "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n" ..
      "\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1" ..
      "\r\nConnection: close\r\n\r\n"})
    stop(srv)
    local rs = peer.parse_responses(out)
    assert.equal(4, #rs)
    assert.equal("/slow", rs[1].body)
    assert.equal("/a", rs[2].body)
    assert.equal("/b", rs[3].body)
    assert.equal("/c", rs[4].body)
    assert.equal("close", rs[4].headers.connection)
  end)

  it("speaks HTTP/1.0: close by default, keep-alive on request", function()
    local srv = serve(function() return "ten" end)
    local out, ending = peer.raw(srv.port, {"GET / HTTP/1.0\r\n\r\n"})
    local out2 = peer.raw(srv.port, {
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" ..
      "GET / HTTP/1.0\r\n\r\n"})
    stop(srv)
    assert.equal("EOF", ending)
    assert.truthy(out:find("Connection: close\r\n", 1, true))
    local rs = peer.parse_responses(out2)
    assert.equal(2, #rs)
    assert.equal("keep-alive", rs[1].headers.connection)
    assert.equal("close", rs[2].headers.connection)
  end)

  it("turns a handler error into a logged 500", function()
    local srv = serve(function(req)
      if req.path == "/boom" then error("kaboom") end
      if req.path == "/bad" then return 42 end
      return "fine"
    end)
    local _, a = curl("-i " .. url(srv, "/boom"))
    local _, b = curl("-i " .. url(srv, "/bad"))
    local _, c = curl(url(srv, "/ok"))
    stop(srv)
    assert.truthy(a:match("^HTTP/1.1 500 Internal Server Error\r\n"))
    assert.truthy(b:match("^HTTP/1.1 500 "))
    assert.equal("fine", c)
    assert.truthy(srv.logged[1]:find("kaboom", 1, true))
    assert.truthy(srv.logged[1]:find("stack traceback", 1, true))
    assert.truthy(srv.logged[2]:find("bad response", 1, true))
  end)

  it("refuses response headers that would split the response", function()
    local srv = serve(function()
      return {headers = {["X-Evil"] = "a\r\nSet-Cookie: stolen"}, body = "x"}
    end)
    local _, out = curl("-i " .. url(srv))
    stop(srv)
    assert.truthy(out:match("^HTTP/1.1 500 "))
    assert.is_nil(out:find("stolen", 1, true))
  end)

  it("works with Python's http.client, keep-alive included", function()
    local srv = serve(function(req)
      return {headers = {["X-Method"] = req.method},
              body = req.method == "POST" and req:body():upper() or "get"}
    end)
    local st, out = peer.run(("python3 -c %s %d"):format(peer.quote([[
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(3):
    c.request("GET", "/g%d" % i)
    r = c.getresponse()
    print(r.status, r.read().decode(), r.getheader("X-Method"))
c.request("POST", "/p", body=b"shout", headers={"Content-Type": "x/y"})
r = c.getresponse()
print(r.status, r.read().decode())
print("same socket", c.sock is not None)
]]), srv.port))
    stop(srv)
    assert.equal(0, st, out)
    assert.equal("200 get GET\n200 get GET\n200 get GET\n200 SHOUT\n" ..
                 "same socket True\n", out)
  end)

  it("works with Node's http client and a keep-alive agent", function()
    local seen = {}
    local srv = serve(function(req)
      seen[req.remote] = true
      if req.method == "POST" then return "got " .. req:body() end
      return {status = 202, body = "node " .. req.path}
    end)
    local st, out = peer.run(("node -e %s %d"):format(peer.quote([[
const http = require("http");
const port = +process.argv[1];
const agent = new http.Agent({keepAlive: true, maxSockets: 1});
function req(method, path, body) {
  return new Promise((ok, fail) => {
    const r = http.request({port, host: "127.0.0.1", method, path, agent},
      res => { let d = ""; res.on("data", c => d += c);
               res.on("end", () => ok(res.statusCode + " " + d)); });
    r.on("error", fail);
    if (body) r.write(body);
    r.end();
  });
}
(async () => {
  console.log(await req("GET", "/a"));
  console.log(await req("POST", "/b", "payload"));
  console.log(await req("GET", "/c"));
  agent.destroy();
})();
]]), srv.port))
    stop(srv)
    assert.equal(0, st, out)
    assert.equal("202 node /a\n200 got payload\n202 node /c\n", out)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(1, n)
  end)

  it("closes gracefully: in-flight requests finish, new ones are refused",
     function()
    local started = tide.future()
    local srv = serve(function()
      started:set()
      tide.sleep(0.2)
      return "finished"
    end)
    local port = srv.port
    local slow = peer.spawn("curl -sS --max-time 10 " .. url(srv))
    started:await()
    srv:close()
    local st2, out2 = curl(("http://127.0.0.1:%d/"):format(port))
    local st, out = slow:wait()
    srv:wait()
    assert.equal(0, st)
    assert.equal("finished", out)
    assert.are_not.equal(0, st2)
    assert.truthy(out2:find("refused", 1, true) or out2:find("onnect", 1, true))
    assert.equal(0, srv:connections())
  end)

  it("closes idle keep-alive connections on close()", function()
    local srv = serve(function() return "x" end)
    local raw = peer.raw_spawn(srv.port, {"GET / HTTP/1.1\r\n\r\n",
                                          {timeout = 5}})
    while srv:connections() == 0 do tide.sleep(0.01) end
    tide.sleep(0.05)
    local t0 = tide.now()
    stop(srv)
    local out, ending = raw:wait()
    assert.equal("EOF", ending)
    assert.equal(1, #peer.parse_responses(out))
    assert.is_true(tide.now() - t0 < 4)
  end)

  it("waits at the connection limit and goes on when one closes", function()
    local srv = serve(function(req)
      if req.path == "/hold" then tide.sleep(0.3) end
      return req.path
    end, {limits = {connections = 1}})
    local hold = peer.spawn("curl -sS --max-time 10 " .. url(srv, "/hold"))
    while srv:connections() == 0 do tide.sleep(0.01) end
    local t0 = tide.now()
    local st, out = curl(url(srv, "/next"))
    local waited = tide.now() - t0
    local _, out1 = hold:wait()
    stop(srv)
    assert.equal(0, st)
    assert.equal("/next", out)
    assert.equal("/hold", out1)
    assert.is_true(waited > 0.1)
  end)

  it("closes a keep-alive connection left idle too long", function()
    local srv = serve(function() return "x" end,
                      {limits = {idle_timeout = 0.2}})
    local t0 = tide.now()
    local out, ending = peer.raw(srv.port, {"GET / HTTP/1.1\r\n\r\n",
                                            {timeout = 5}})
    local took = tide.now() - t0
    stop(srv)
    assert.equal("EOF", ending)
    assert.equal(200, peer.parse_responses(out)[1].status)
    assert.is_true(took < 4)
  end)

  it("lets a handler time out reading a body that never comes", function()
    local srv = serve(function(req)
      if req.method == "GET" then return "after" end
      local ok, err = pcall(tide.timeout, 0.1, req.body, req)
      assert(not ok)
      return {status = 408, body = err.code,
              headers = {connection = "close"}}
    end)
    local out = peer.raw(srv.port, {
      "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", {timeout = 5}})
    local st, after = curl(url(srv, "/"))
    stop(srv)
    local r = peer.parse_responses(out)[1]
    assert.equal(408, r.status)
    assert.equal("ETIMEDOUT", r.body)
    assert.equal(0, st)
    assert.equal("after", after)
  end)

  it("cleans up when a connection's task is cancelled mid-request",
     function()
    settle()
    local before = handles()
    local srv = serve(function(req)
      if req.path == "/cancel" then
        tide.current():cancel("test")
        tide.sleep(1)
      end
      return "alive"
    end)
    local out, ending = peer.raw(srv.port, {"GET /cancel HTTP/1.1\r\n\r\n"})
    assert.equal("", out)
    assert.equal("EOF", ending)
    local st, ok = curl(url(srv, "/"))
    assert.equal(0, st)
    assert.equal("alive", ok)
    stop(srv)
    assert.equal(0, srv:connections())
    settle()
    assert.equal(before, handles())
  end)

  it("cleans up when a connection's task is cancelled between requests",
     function()
    settle()
    local before = handles()
    local srv = serve(function() return "once" end)
    local raw = peer.raw_spawn(srv.port, {"GET / HTTP/1.1\r\n\r\n",
                                          {timeout = 5}})
    local conn_task
    local deadline = tide.now() + 10
    while not conn_task and tide.now() < deadline do
      for _, t in ipairs(tide.tasks()) do
        if t.name == "http.conn" and tide.dump():find("on http.recv") then
          conn_task = t
        end
      end
      tide.sleep(0.01)
    end
    assert.truthy(conn_task, "no connection task waiting in http.recv")
    tide.sleep(0.05) -- the response is out; the task waits for the next
    local t0 = tide.now()
    conn_task:cancel()
    local out, ending = raw:wait()
    assert.equal("EOF", ending)
    assert.equal("once", peer.parse_responses(out)[1].body)
    assert.is_true(tide.now() - t0 < 4)
    assert.equal(0, srv:connections())
    stop(srv)
    settle()
    assert.equal(before, handles())
  end)

  it("closes the connection of a task cancelled before it ran", function()
    -- Such a task never runs: the accept loop closes its connection at the
    -- next accept and when the server stops, which must not wait for it.
    local NT = require "support.net"
    settle()
    local before = handles()
    local srv = serve(function() return "ok" end)
    local c1, t = NT.connect_cancelled(srv.port)
    local st, body = curl(url(srv, "/"))
    assert.equal(0, st)
    assert.equal("ok", body)
    assert.is_true(t:cancelled())
    assert.is_nil(tide.wait_for(function() return c1:read() end, 5))
    c1:close()
    local c2 = NT.connect_cancelled(srv.port)
    stop(srv)
    assert.equal(0, srv:connections())
    assert.is_nil(tide.wait_for(function() return c2:read() end, 5))
    c2:close()
    settle()
    assert.equal(before, handles())
  end)

  it("cleans up when a task is cancelled while reading a body", function()
    settle()
    local before = handles()
    local waiting = tide.future()
    local srv = serve(function(req)
      if req.path == "/" then return "alive" end
      local me = tide.current()
      tide.spawn(function()
        waiting:await()
        me:cancel()
      end)
      tide.spawn(function() tide.sleep(0.05) waiting:set() end)
      return req:body()
    end)
    local out, ending = peer.raw(srv.port, {
      "POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part",
      {timeout = 5}})
    assert.equal("", out)
    assert.equal("EOF", ending)
    local st, ok = curl(url(srv, "/"))
    stop(srv)
    assert.equal(0, st)
    assert.equal("alive", ok)
    settle()
    assert.equal(before, handles())
  end)

  it("gives up on a client that stops reading a streamed response",
     function()
    settle()
    local before = handles()
    local chunks = 0
    local srv = serve(function()
      local piece = ("x"):rep(65536)
      return {body = function()
        chunks = chunks + 1
        if chunks > 1000 then return nil end
        return piece
      end}
    end, {limits = {idle_timeout = 0.3}})
    -- the peer sends its request, then sleeps without reading
    local raw = peer.raw_spawn(srv.port, {"GET / HTTP/1.1\r\n\r\n",
                                          {sleep = 6}, {timeout = 5}})
    local t0 = tide.now()
    while srv:connections() == 0 do tide.sleep(0.01) end
    while srv:connections() > 0 and tide.now() - t0 < 10 do
      tide.sleep(0.02)
    end
    local gave_up = tide.now() - t0
    raw:wait()
    stop(srv)
    assert.is_true(gave_up < 5, "took " .. gave_up)
    assert.is_true(chunks < 1000)
    assert.same({}, srv.logged)
    settle()
    assert.equal(before, handles())
  end)

  it("frees the port when the accepting task is cancelled", function()
    local srv = serve(function() return "x" end)
    local port = srv.port
    tide.sleep(0)
    srv._task:cancel()
    pcall(tide.await, srv._task)
    local again = serve(function() return "again" end, {port = port})
    local st, out = curl(url(again))
    stop(again)
    assert.equal(0, st)
    assert.equal("again", out)
  end)

  it("raises EADDRINUSE for a taken port, unless reuseport is set",
     function()
    local a = serve(function() return "a" end, {reuseport = true})
    local ok, err = pcall(http.serve, {port = a.port,
                                       handler = function() end})
    assert.is_false(ok)
    assert.equal("EADDRINUSE", err.code)
    local b = serve(function() return "b" end, {port = a.port,
                                                reuseport = true})
    assert.equal(a.port, b.port)
    local st, out = curl(url(b))
    stop(a)
    stop(b)
    assert.equal(0, st)
    assert.truthy(out == "a" or out == "b")
  end)

  it("shares a port with another process through reuseport", function()
    local process = require "tide.process"
    local a = serve(function() return "here" end, {reuseport = true})
    local other <close> = process.spawn(helper.bin, {"-e", ([[
      local http = require "tide.http"
      local srv = http.serve{port = %d, reuseport = true,
                             handler = function() return "there" end}
      print("listening")
      io.stdout:flush()
      tide.sleep(60)  -- until the spec stops it
    ]]):format(a.port)}, {stderr = "inherit"})
    assert.equal("listening", other.stdout:read_line())
    local seen = {}
    for _ = 1, 40 do
      local st, out = curl(url(a))
      assert.equal(0, st)
      seen[out] = true
      if seen.here and seen.there then break end
    end
    other:kill("TERM")
    local _, signal = other:wait()
    stop(a)
    assert.equal("TERM", signal)
    assert.is_true(seen.here)
    assert.is_true(seen.there)
  end)

  it("checks its arguments", function()
    assert.has_error(function() http.serve() end,
      "bad argument #1 to 'serve' (table expected, got nil)")
    assert.has_error(function() http.serve{port = 0} end,
      "bad argument #1 to 'serve' (handler must be a function, got nil)")
    assert.has_error(function()
      http.serve{port = "x", handler = print}
    end)
    assert.has_error(function()
      http.serve{port = 0, handler = print, limits = {body_bytes = -1}}
    end)
    assert.has_error(function()
      http.serve{host = "not a host", port = 0, handler = print}
    end)
  end)

  it("listens on IPv6 loopback", function()
    local srv = serve(function(req) return req.remote end, {host = "::1"})
    local st, out = curl(("http://[::1]:%d/"):format(srv.port))
    stop(srv)
    assert.equal(0, st)
    assert.truthy(out:match("^%[::1%]:%d+$"))
  end)
end)

describe("scripts/examples/http_server.lua", function()
  it("serves its routes and stops after HTTP_DURATION", function()
    local process = require "tide.process"
    local p <close> = process.spawn(helper.bin,
      {"scripts/examples/http_server.lua"},
      {env = {HTTP_PORT = "0", HTTP_DURATION = "1.5"}, stderr = "inherit"})
    local base = p.stdout:read_line():match("listening on (%S+)")
    assert.truthy(base)
    local _, hello = curl(peer.quote(base .. "/hello?name=spec"))
    local _, echo = curl("-d 'echo me' " .. base .. "/echo")
    local _, status = curl(base .. "/status")
    local _, countdown = curl(base .. "/countdown")
    local _, missing = curl("-o /dev/null -w '%{http_code}' " .. base .. "/x")
    local code = p:wait()
    local rest = p.stdout:read(4096)
    assert.equal(0, code)
    assert.equal("Hello, spec!\n", hello)
    assert.equal("echo me", echo)
    assert.truthy(status:match('"served": %d+'))
    assert.equal("3...\n2...\n1...\nliftoff\n", countdown)
    assert.equal("404", missing)
    assert.truthy(rest:match("served 5 requests"))
  end)
end)

describe("scripts/examples/http_fetch.lua", function()
  it("fetches its local pages with two workers", function()
    local status, out = peer.run("FETCH_UNIT=0.05 " .. helper.bin ..
                                 " scripts/examples/http_fetch.lua")
    assert.equal(0, status, out)
    local n = 0
    for line in out:gmatch("worker%-%d  200 [^\n]+") do n = n + 1 end
    assert.equal(5, n, out)
    assert.truthy(out:find("worker-1", 1, true))
    assert.truthy(out:find("worker-2", 1, true))
    -- the delays add up to 9 units; two workers overlap them
    local took = tonumber(out:match("fetched 5 of 5 URLs in ([%d.]+) s"))
    assert.truthy(took, out)
    assert.is_true(took < 9 * 0.05 + 0.4, out)
  end)
end)

describe("docs/http_server.md", function()
  -- Every ```lua block runs, and prints what its `--> value` comments say.
  local f = assert(io.open(helper.root .. "/docs/http_server.md"))
  local text = f:read("a")
  f:close()
  local n = 0
  for block in text:gmatch("```lua\n(.-)```") do
    n = n + 1
    it("runs example " .. n, function()
      local status, out = peer.run(helper.bin .. " -e " .. peer.quote(block))
      assert.equal(0, status, out)
      for expected in block:gmatch("%-%-> ([^\n]+)") do
        local words = {}
        for w in expected:gmatch("%S+") do
          words[#words + 1] = w:gsub("%p", "%%%0")
        end
        assert.matches(table.concat(words, "%s+"), out)
      end
    end)
  end
  it("has examples", function() assert.is_true(n >= 6) end)
end)

describe("scripts/bench/http_server", function()
  -- Each server of the benchmark answers wrk (one short run each), so the
  -- benchmark cannot rot between full runs.
  for _, id in ipairs{"tide", "nginx", "node", "asyncio"} do
    it("runs the " .. id .. " server under wrk", function()
      local status, out = peer.run(("TIDE=%s DURATION=1 CONNECTIONS=4 " ..
        "PYTHON=python3 NODE=node NGINX=nginx " ..
        "scripts/bench/http_server/one.sh %s"):format(helper.bin, id), 60)
      assert.equal(0, status, out)
      local rps = tonumber(out:match("\nrps=([%d.]+)"))
      assert.is_true(rps and rps > 0, out)
      assert.truthy(out:match("\np99_ms=[%d.]+"), out)
      assert.truthy(out:match("\nserver_cpu=%d+"), out)
    end)
  end
end)
