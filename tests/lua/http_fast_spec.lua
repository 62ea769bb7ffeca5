-- tide.http_client's plain-HTTP path (stdlib/http_fast.c and the pool in
-- stdlib/http_client.lua) against real peers: small raw tide.net servers
-- for edge and hostile responses, nginx for redirects and gzip, python's
-- http.server for HTTP/1.0, and a subprocess for what the environment
-- changes (a proxy variable) and for the process exiting with idle
-- connections.
package.path = helper.root .. "/tests/lua/?.lua;" .. package.path
local nginx = require "support.nginx"
local pyhttp = require "support.pyhttp"
local net = require "tide.net"
local http = require "tide.http_client"
local handles = require("tide._net")._handles

local errcode = helper.errcode

-- Let garbage and closing handles go before counting anything.
local function settle()
  collectgarbage()
  collectgarbage()
  tide.sleep(0.01)
end

-- Nothing is left behind: no busy connection, no waiting task.
local function assert_clean()
  settle()
  local st = http._stats()
  assert.equal(0, st.live, "busy connections left")
  assert.equal(0, st.waiting, "tasks counted as waiting")
  assert.equal(0, st.transfers)
end

-- A raw HTTP server: route(path, conn_no, req_no, head, s) returns the
-- bytes to send (a string), or nil to hang up without a reply; `close`
-- as a second result closes the connection after the reply.  Each
-- connection is numbered; `srv.conns` counts them.
local function raw_server(route)
  local state = {conns = 0, heads = {}, open = {}}
  local srv = net.listen{port = 0, handler = function(s)
    state.open[s] = true
    state.conns = state.conns + 1
    local conn_no, req_no = state.conns, 0
    while true do
      -- stop() closes the stream under a waiting read: not an error
      local ok, head = pcall(s.read_until, s, "\r\n\r\n", 1024 * 1024)
      if not ok or not head then return end
      req_no = req_no + 1
      state.heads[#state.heads + 1] = head
      local len = tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: *(%d+)"))
      local body = len and len > 0 and s:read_exactly(len) or ""
      local path = head:match("^%u+ (%S+)")
      local reply, close = route(path, conn_no, req_no, head, s, body)
      if reply == nil then return end
      s:write(reply)
      if close then return end
    end
  end}
  state.srv = srv
  state.url = function(path)
    return ("http://127.0.0.1:%d%s"):format(srv.port, path)
  end
  -- Closing the server's side of each connection too lets the process
  -- exit: a connection task waits for the next request for as long as
  -- the client keeps the connection in its pool.
  state.stop = function()
    srv:close()
    for s in pairs(state.open) do s:close() end
  end
  return state
end

local function ok_reply(body, extra)
  return ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s")
         :format(#body, extra or "", body)
end

-- Compressed bytes made by python's zlib (tide has no Lua zlib binding).
local function py_bytes(expr)
  local p = assert(io.popen(("python3 -c 'import sys, zlib, gzip; "
                             .. "sys.stdout.buffer.write(%s)'"):format(expr)))
  local s = p:read("a")
  p:close()
  return s
end

describe("http_client plain-HTTP path", function()
  local srv

  setup(function()
    srv = nginx.start{}
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  describe("connections", function()
    it("reuses one connection for sequential requests", function()
      local peer = raw_server(function() return ok_reply("x") end)
      for _ = 1, 5 do assert.equal("x", http.get(peer.url("/")).body) end
      assert.equal(1, peer.conns)
      peer.stop()
      settle()
    end)

    it("retries once, on a new connection, a pooled one the server dropped",
       function()
      local before = http._stats().fast_requests
      -- The first connection answers once, then closes on the next
      -- request without replying: what a server's idle timeout looks like
      -- when it races the client's next request.
      local peer = raw_server(function(_, conn_no, req_no)
        if conn_no == 1 and req_no == 2 then return nil end
        return ok_reply("conn " .. conn_no)
      end)
      assert.equal("conn 1", http.get(peer.url("/")).body)
      assert.equal("conn 2", http.post(peer.url("/"), "data").body)
      assert.equal(2, peer.conns)
      assert.equal(before + 3, http._stats().fast_requests)
      peer.stop()
      assert_clean()
    end)

    it("does not retry on a new connection: ECONNRESET", function()
      local peer = raw_server(function() return nil end)
      local code, err = errcode(http.get, peer.url("/x"))
      assert.equal("ECONNRESET", code)
      assert.equal("http.request", err.op)
      assert.equal(peer.url("/x"), err.path)
      assert.equal(1, peer.conns)
      peer.stop()
      assert_clean()
    end)

    it("skips a pooled connection the server closed while it was idle",
       function()
      local peer = raw_server(function(_, conn_no)
        return ok_reply("conn " .. conn_no, "Keep-Alive: timeout=0\r\n"), true
      end)
      assert.equal("conn 1", http.get(peer.url("/")).body)
      tide.sleep(0.05) -- the EOF reaches the idle connection
      assert.equal("conn 2", http.get(peer.url("/")).body)
      assert.equal(2, peer.conns)
      peer.stop()
      assert_clean()
    end)

    it("does not reuse a connection after Connection: close", function()
      local peer = raw_server(function(_, conn_no)
        return ok_reply("c" .. conn_no, "Connection: close\r\n"), true
      end)
      local idle = http._stats().fast_idle
      assert.equal("c1", http.get(peer.url("/")).body)
      assert.equal(idle, http._stats().fast_idle)
      assert.equal("c2", http.get(peer.url("/")).body)
      assert.equal(2, peer.conns)
      peer.stop()
      assert_clean()
    end)

    it("reads an HTTP/1.0 response and does not reuse its connection",
       function()
      local peer = raw_server(function(_, conn_no)
        return ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nc%d")
               :format(conn_no)
      end)
      local r = http.get(peer.url("/"))
      assert.equal("1.0", r.version)
      assert.equal("c1", r.body)
      assert.equal("c2", http.get(peer.url("/")).body)
      assert.equal(2, peer.conns)
      peer.stop()
      assert_clean()
    end)

    it("talks to python's http.server (HTTP/1.0)", function()
      local py = pyhttp.start{["a.txt"] = "from python\n"}
      local ok, r1 = pcall(http.get, py:url("/a.txt"))
      local ok2, r2 = pcall(http.get, py:url("/missing"))
      py:stop()
      assert(ok, tostring(r1))
      assert(ok2, tostring(r2))
      assert.equal("from python\n", r1.body)
      assert.equal("1.0", r1.version)
      assert.equal(404, r2.status)
      assert_clean()
    end)

    it("sends the default headers, and the caller's in their place",
       function()
      local peer = raw_server(function() return ok_reply("") end)
      http.post(peer.url("/p?q=1"), "abc", {headers = {
        ["X-One"] = "1", ["X-Many"] = {"a", "b"}, Accept = "text/plain"}})
      local head = peer.heads[1]
      assert.matches("^POST /p%?q=1 HTTP/1%.1\r\n", head)
      assert.matches("\r\nHost: 127%.0%.0%.1:%d+\r\n", head)
      assert.matches("\r\nUser%-Agent: tide/%d+%.%d+%.%d+\r\n", head)
      assert.matches("\r\nAccept%-Encoding: gzip, deflate\r\n", head)
      assert.matches("\r\nContent%-Length: 3\r\n", head)
      assert.matches("\r\nContent%-Type: application/x%-www%-form%-urlencoded",
                     head)
      assert.matches("\r\nX%-One: 1\r\n", head)
      assert.matches("\r\nX%-Many: a\r\n", head)
      assert.matches("\r\nX%-Many: b\r\n", head)
      assert.matches("\r\nAccept: text/plain\r\n", head)
      assert.is_nil(head:find("*/*", 1, true))
      peer.stop()
      settle()
    end)

    it("sends headers far longer than a Lua buffer starts with", function()
      local peer = raw_server(function() return ok_reply("") end)
      local big, many = ("b"):rep(6000), {}
      for i = 1, 50 do many[i] = ("v%d-"):format(i) .. ("x"):rep(100) end
      http.get(peer.url("/big"), {headers = {["X-Big"] = big,
                                             ["X-Many"] = many}})
      -- the peer's read_until leaves out the blank line's CRLF CRLF
      local head = peer.heads[1] .. "\r\n"
      assert.matches("^GET /big HTTP/1%.1\r\n", head)
      assert.truthy(head:find("\r\nX-Big: " .. big .. "\r\n", 1, true))
      for i = 1, 50 do
        assert.truthy(head:find("\r\nX-Many: " .. many[i] .. "\r\n", 1,
                                true), i)
      end
      peer.stop()
      settle()
    end)
  end)

  describe("framing", function()
    local peer
    local routes = {
      ["/close"] = "HTTP/1.1 200 OK\r\n\r\nread to the end",
      ["/chunked"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        .. "Trailer: X-T\r\n\r\n"
        .. "5;name=value\r\nhello\r\n7;x\r\n, world\r\n0\r\nX-T: t\r\n\r\n",
      ["/badchunk"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "5\r\nhello\r\nQQ\r\nxx\r\n0\r\n\r\n",
      ["/short"] = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this",
      ["/bigheader"] = "HTTP/1.1 200 OK\r\nX-Big: "
        .. string.rep("b", 101 * 1024) .. "\r\nContent-Length: 0\r\n\r\n",
      ["/fitheader"] = "HTTP/1.1 200 OK\r\nX-Big: "
        .. string.rep("b", 90 * 1024) .. "\r\nContent-Length: 2\r\n\r\nok",
      ["/interim"] = "HTTP/1.1 100 Continue\r\n\r\n"
        .. "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        .. "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
      ["/204"] = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
      ["/304"] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
      ["/headonly"] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
      ["/v2"] = "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    }

    setup(function()
      peer = raw_server(function(path, _, _, head)
        local reply = routes[path]
        if head:match("^HEAD ") then
          return "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"
        end
        if not reply then return ok_reply("fine") end
        return reply, path == "/close" or path == "/short"
          or path == "/badchunk"
      end)
    end)

    teardown(function() peer.stop() end)

    it("reads a body delimited by the end of the connection", function()
      local r = http.get(peer.url("/close"))
      assert.equal("read to the end", r.body)
      assert_clean()
    end)

    it("reads chunks with extensions, ignoring trailers", function()
      local r = http.get(peer.url("/chunked"))
      assert.equal("hello, world", r.body)
      assert.is_nil(r.headers["x-t"])
      -- and the connection is still usable
      assert.equal("fine", http.get(peer.url("/next")).body)
      assert_clean()
    end)

    it("raises EPROTO for a bad chunk size", function()
      local code, err = errcode(http.get, peer.url("/badchunk"))
      assert.equal("EPROTO", code)
      assert.equal(peer.url("/badchunk"), err.path)
      assert_clean()
    end)

    it("raises EPROTO for a body shorter than its Content-Length",
       function()
      assert.equal("EPROTO", (errcode(http.get, peer.url("/short"))))
      assert_clean()
    end)

    it("raises EPROTO for a header block over 100 KiB, not under",
       function()
      assert.equal("EPROTO", (errcode(http.get, peer.url("/bigheader"))))
      assert.equal("ok", http.get(peer.url("/fitheader")).body)
      assert_clean()
    end)

    it("raises EPROTO for an HTTP version other than 1.x", function()
      assert.equal("EPROTO", (errcode(http.get, peer.url("/v2"))))
      assert_clean()
    end)

    it("skips 1xx responses", function()
      local r = http.get(peer.url("/interim"))
      assert.equal(200, r.status)
      assert.equal("final", r.body)
      assert.is_nil(r.headers.link)
      assert_clean()
    end)

    it("reads no body for 204, 304 and HEAD, and reuses the connection",
       function()
      local conns = peer.conns
      local r = http.get(peer.url("/204"))
      assert.equal(204, r.status)
      assert.equal("", r.body)
      r = http.get(peer.url("/304"))
      assert.equal(304, r.status)
      assert.equal("", r.body)
      r = http.request{method = "HEAD", url = peer.url("/headonly")}
      assert.equal(200, r.status)
      assert.equal("", r.body)
      assert.equal("13", r.headers["content-length"])
      assert.equal("fine", http.get(peer.url("/after")).body)
      assert.is_true(peer.conns - conns <= 1)
      assert_clean()
    end)
  end)

  describe("content encodings", function()
    local peer, text

    setup(function()
      text = string.rep("tide decodes this. ", 500)
      local gz = py_bytes(("gzip.compress(b%q)"):format(text))
      local zl = py_bytes(("zlib.compress(b%q)"):format(text))
      local routes = {
        ["/gzip"] = ok_reply(gz, "Content-Encoding: gzip\r\n"),
        ["/deflate"] = ok_reply(zl, "Content-Encoding: deflate\r\n"),
        ["/corrupt"] = ok_reply(gz:sub(1, 20) .. string.rep("\0", 40)
                                .. gz:sub(61),
                                "Content-Encoding: gzip\r\n"),
        ["/cut"] = ok_reply(gz:sub(1, #gz // 2),
                            "Content-Encoding: gzip\r\n"),
        ["/br"] = ok_reply("raw", "Content-Encoding: br\r\n"),
      }
      peer = raw_server(function(path) return routes[path] end)
    end)

    teardown(function() peer.stop() end)

    it("decodes gzip and deflate", function()
      local r = http.get(peer.url("/gzip"))
      assert.equal("gzip", r.headers["content-encoding"])
      assert.is_true(r.body == text)
      assert.is_true(http.get(peer.url("/deflate")).body == text)
      r = http.request{url = peer.url("/gzip"), stream = true}
      local parts = {}
      for piece in r:chunks() do parts[#parts + 1] = piece end
      assert.is_true(table.concat(parts) == text)
      assert_clean()
    end)

    it("raises EPROTO for a corrupt or cut gzip body", function()
      assert.equal("EPROTO", (errcode(http.get, peer.url("/corrupt"))))
      assert.equal("EPROTO", (errcode(http.get, peer.url("/cut"))))
      assert_clean()
    end)

    it("applies max_size to the decoded body", function()
      assert.equal("EMSGSIZE", (errcode(http.get, peer.url("/gzip"),
                                        {max_size = 1000})))
      assert_clean()
    end)

    it("passes other encodings through", function()
      assert.equal("raw", http.get(peer.url("/br")).body)
    end)

    it("decodes nginx's gzip", function()
      assert.equal(nginx.gzip_text, http.get(srv:url("/gzip")).body)
    end)
  end)

  describe("redirects", function()
    it("follows a chain and reports the final URL", function()
      local r = http.get(srv:url("/redirect/2"))
      assert.equal("hello, world\n", r.body)
      assert.equal(srv:url("/text"), r.url)
      r = http.request{url = srv:url("/redirect/2"), stream = true}
      assert.equal("hello, world\n", r:read())
      r:close()
      assert_clean()
    end)

    it("stops a loop with EREDIRECT", function()
      local code, err = errcode(http.get, srv:url("/loop"),
                                {max_redirects = 3})
      assert.equal("EREDIRECT", code)
      assert.equal(srv:url("/loop"), err.path)
      assert_clean()
    end)

    it("turns POST into GET for 301/302/303, keeps it for 307/308",
       function()
      local peer = raw_server(function(path, _, _, head, _, body)
        local code = path:match("^/to/(%d+)")
        if code then
          return ("HTTP/1.1 %s Moved\r\nLocation: ../echo\r\n"
                  .. "Content-Length: 3\r\n\r\nbye"):format(code)
        end
        return ok_reply(head:match("^(%u+)") .. " " .. body)
      end)
      for code, want in pairs{[301] = "GET ", [302] = "GET ",
                              [303] = "GET ", [307] = "POST data",
                              [308] = "POST data"} do
        local r = http.post(peer.url("/to/" .. code .. "/x"), "data")
        assert.equal(want, r.body, "status " .. code)
        assert.equal(peer.url("/to/echo"), r.url)
      end
      assert.equal(1, peer.conns)
      peer.stop()
      assert_clean()
    end)

    it("fails a redirect to another scheme with EPROTO", function()
      -- "ent-Length: 0" parses as a URL of scheme "ent-length"
      for _, loc in ipairs{"ftp://127.0.0.1/x", "ent-Length: 0"} do
        local peer = raw_server(function()
          return ("HTTP/1.1 302 Found\r\nLocation: %s\r\n"
                  .. "Content-Length: 0\r\n\r\n"):format(loc)
        end)
        local code, err = errcode(http.get, peer.url("/"))
        assert.equal("EPROTO", code, loc)
        assert.equal(peer.url("/"), err.path)
        peer.stop()
      end
      assert_clean()
    end)

    it("hands a redirect to https:// over to curl", function()
      local tls = srv:url("/text", "https")
      local peer = raw_server(function()
        return ("HTTP/1.1 302 Found\r\nLocation: %s\r\n"
                .. "Content-Length: 0\r\n\r\n"):format(tls)
      end)
      local before = http._stats().curl_requests
      -- nginx's certificate is self-signed: curl's verification fails
      assert.equal("ECERT", (errcode(http.get, peer.url("/"))))
      assert.equal(before + 1, http._stats().curl_requests)
      peer.stop()
      assert_clean()
    end)
  end)

  describe("cancellation", function()
    -- The peer runs in another process, so the handles counted here are
    -- the client's own.
    local port, pid

    local function url(path)
      return ("http://127.0.0.1:%d%s"):format(port, path)
    end

    setup(function()
      local portfile = os.tmpname()
      os.remove(portfile)
      local p = io.popen(("python3 %s/tests/lua/support/badhttp.py %s "
                          .. ">/dev/null 2>&1 & echo $!")
                         :format(helper.root, portfile))
      pid = p:read("a"):match("%d+")
      p:close()
      for _ = 1, 500 do
        local f = io.open(portfile)
        port = f and tonumber(f:read("a"))
        if f then f:close() end
        if port then break end
        tide.sleep(0.01)
      end
      os.remove(portfile)
      os.remove(portfile .. ".log")
    end)

    teardown(function() os.execute("kill " .. pid) end)

    -- Idle pooled connections aside, the handles are those of before.
    local function own_handles()
      return handles() - http._stats().fast_idle
    end

    local function cancelled(fn, delay)
      settle()
      local before = own_handles()
      local t = tide.spawn(fn)
      if delay then tide.sleep(delay) end
      t:cancel("stop")
      local code, err = errcode(t.await, t)
      assert.equal("ECANCELED", code)
      assert.matches("stop", err.message)
      assert_clean()
      local st = http._stats()
      assert.equal(st.fast_idle, st.fast_open, "a connection is left open")
      assert.equal(before, own_handles(), "handles left open")
      -- the peer is still fine to talk to
      assert.equal("ok", http.get(url("/ok")).body)
    end

    it("before the request starts", function()
      cancelled(function() return http.get(url("/ok")) end)
    end)

    it("while resolving the host name", function()
      -- the task's first run ends in the resolver's thread-pool job
      cancelled(function()
        return http.get(("http://localhost:%d/ok"):format(port))
      end, 0)
    end)

    it("while connecting (the first await point)", function()
      cancelled(function() return http.get(url("/ok")) end, 0)
    end)

    it("while waiting for the response head", function()
      cancelled(function() return http.get(url("/hang")) end, 0.05)
    end)

    it("while reading the body", function()
      cancelled(function() return http.get(url("/halfbody")) end, 0.05)
    end)

    it("while a stream request waits for its head", function()
      cancelled(function()
        return http.request{url = url("/hang"), stream = true}
      end, 0.05)
    end)

    it("while reading a streamed body, leaving the response open",
       function()
      local r = http.request{url = url("/halfbody"), stream = true}
      assert.equal("some", r:read())
      local t = tide.spawn(function() return r:read() end)
      tide.sleep(0.05)
      t:cancel()
      assert.equal("ECANCELED", (errcode(t.await, t)))
      assert.equal(0, http._stats().waiting)
      assert.equal(1, http._stats().live)
      r:close()
      assert_clean()
    end)

    it("by the timeout option, at the head or in the body", function()
      local code, err = errcode(http.get, url("/hang"), {timeout = 0.05})
      assert.equal("ETIMEDOUT", code)
      assert.equal("http.request", err.op)
      assert.equal("ETIMEDOUT", (errcode(http.get, url("/halfbody"),
                                         {timeout = 0.05})))
      local r = http.request{url = url("/halfbody"), stream = true,
                             timeout = 0.1}
      assert.equal("ETIMEDOUT", (errcode(function()
        for _ in r:chunks() do end
      end)))
      r:close()
      assert_clean()
    end)
  end)

  describe("the process", function()
    local function run(env, code)
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write(code)
      f:close()
      local p = io.popen(("env -u http_proxy -u HTTP_PROXY -u all_proxy "
                          .. "-u ALL_PROXY %s %s %s 2>&1; echo \"rc=$?\"")
                         :format(env, helper.bin, path))
      local out = p:read("a")
      p:close()
      os.remove(path)
      return out
    end

    it("exits with idle pooled connections and an unread stream",
       function()
      local out = run("", ([[
        local http = require "tide.http_client"
        for _ = 1, 3 do assert(http.get(%q).status == 200) end
        local r = http.request{url = %q, stream = true}
        local st = http._stats()
        print(r.status, st.fast_open, st.fast_idle, st.curl_requests)
      ]]):format(srv:url("/text"), srv:url("/large")))
      -- the stream took the pooled connection over
      assert.equal("200\t1\t0\t0\nrc=0\n", out)
    end)

    it("sends every request through curl when a proxy is set", function()
      -- nginx answers an absolute-form request like any other
      local out = run("http_proxy=" .. srv:url(""), ([[
        local http = require "tide.http_client"
        local r = http.get(%q)
        local st = http._stats()
        print(r.status, r.body, st.curl_requests, st.fast_requests)
      ]]):format(srv:url("/text")))
      assert.equal("200\thello, world\n\t1\t0\nrc=0\n", out)
    end)
  end)
end)
