-- tide.http_client against real peers: nginx (plain, TLS, HTTP/2, gzip,
-- chunked, redirects, slow and large bodies), python3 -m http.server, and
-- a deliberately broken server for hostile input.
package.path = helper.root .. "/tests/lua/?.lua;" .. package.path
local nginx = require "support.nginx"
local pyhttp = require "support.pyhttp"
local http = require "tide.http_client"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Start a helper process that writes its port to a file; returns port, pid.
local function start_peer(cmd_fmt)
  local portfile = os.tmpname()
  os.remove(portfile)
  local pid = sh(("%s >/dev/null 2>&1 & echo $!"):format(
    cmd_fmt:format(portfile))):match("%d+")
  for _ = 1, 500 do
    local f = io.open(portfile)
    if f then
      local port = tonumber(f:read("a"))
      f:close()
      if port then
        os.remove(portfile)
        return port, pid, portfile
      end
    end
    tide.sleep(0.01)
  end
  error("peer did not start: " .. cmd_fmt)
end

local function stop_peer(pid)
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
end

-- Nothing the client holds is left over: no transfer in the multi, no task
-- counted as waiting, no watched socket beyond idle ones.
local function assert_clean()
  collectgarbage()
  collectgarbage()
  local st = http._stats()
  assert.equal(0, st.transfers)
  assert.equal(0, st.waiting)
  assert.equal(0, st.live)
end

local errcode = helper.errcode

describe("tide.http_client", function()
  local srv

  setup(function()
    srv = nginx.start{http2 = true, access_log = true}
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  describe("get", function()
    it("fetches a plain text body with its status and headers", function()
      local r = http.get(srv:url("/text"))
      assert.equal(200, r.status)
      assert.equal("hello, world\n", r.body)
      assert.equal("1.1", r.version)
      assert.equal(srv:url("/text"), r.url)
      assert.equal("text/plain", r.headers["content-type"])
      assert.equal("text/plain", r.headers["Content-Type"])
      assert.equal("text/plain", r.headers["CONTENT-TYPE"])
      assert.equal("13", r.headers["Content-Length"])
      assert.is_nil(r.headers["X-Absent"])
      assert_clean()
    end)

    it("returns non-2xx statuses as responses, not errors", function()
      for _, code in ipairs{204, 400, 404, 418, 500, 503} do
        local r = http.get(srv:url("/status/" .. code))
        assert.equal(code, r.status)
      end
    end)

    it("follows redirects by default and reports the final URL", function()
      local r = http.get(srv:url("/redirect/2"))
      assert.equal(200, r.status)
      assert.equal("hello, world\n", r.body)
      assert.equal(srv:url("/text"), r.url)
      r = http.get(srv:url("/redirect/abs"))
      assert.equal(200, r.status)
    end)

    it("returns the redirect itself with follow=false", function()
      local r = http.get(srv:url("/redirect"), {follow = false})
      assert.equal(302, r.status)
      assert.equal(srv:url("/text"), r.headers.location)
    end)

    it("gives up on a redirect loop with EREDIRECT", function()
      local code = errcode(http.get, srv:url("/loop"), {max_redirects = 5})
      assert.equal("EREDIRECT", code)
    end)

    it("decompresses gzip bodies", function()
      local r = http.get(srv:url("/gzip"))
      assert.equal(200, r.status)
      assert.equal("gzip", r.headers["content-encoding"])
      assert.equal(nginx.gzip_text, r.body)
    end)

    it("reads chunked bodies", function()
      local r = http.get(srv:url("/chunked"))
      assert.equal("chunked", r.headers["transfer-encoding"])
      assert.equal("a\nb\nc\n", r.body)
    end)

    it("reads large bodies intact", function()
      local r = http.get(srv:url("/large"))
      assert.equal(nginx.large_size, #r.body)
      assert.is_true(r.body == read_file(srv.dir .. "/large.bin"))
    end)

    it("reuses connections across requests", function()
      local first = http.get(srv:url("/conn")).body
      local second = http.get(srv:url("/conn")).body
      local c1, n1 = first:match("(%d+) (%d+)")
      local c2, n2 = second:match("(%d+) (%d+)")
      assert.equal(c1, c2)
      assert.is_true(tonumber(n2) > tonumber(n1))
    end)

    it("runs many requests concurrently", function()
      local list = {}
      for i = 1, 40 do
        list[i] = function() return http.get(srv:url("/text")).status end
      end
      local results = tide.gather(list)
      for i = 1, 40 do assert.equal(200, results[i]) end
      assert_clean()
    end)
  end)

  describe("post and request", function()
    it("posts a body, binary-safe", function()
      local body = "a\0b\r\n" .. string.rep("x", 100000)
      local r = http.post(srv:url("/echo"), body)
      assert.equal(200, r.status)
      assert.is_true(r.body == body)
      assert.equal("", http.post(srv:url("/echo"), "").body)
    end)

    it("sends the method and headers it is given", function()
      assert.equal("PUT", http.request{method = "put",
                                       url = srv:url("/method")}.body)
      assert.equal("DELETE", http.request{method = "DELETE",
                                          url = srv:url("/method")}.body)
      local r = http.request{url = srv:url("/header"),
                             headers = {["X-Test"] = "yo"}}
      assert.equal("yo", r.body)
      r = http.request{method = "HEAD", url = srv:url("/text")}
      assert.equal(200, r.status)
      assert.equal("", r.body)
      assert.equal("13", r.headers["content-length"])
    end)

    it("decodes JSON with json()", function()
      local v = http.get(srv:url("/json")):json()
      assert.is_true(v.ok)
      assert.equal(42, v.n)
      assert.same({1, 2, 3}, v.list)
      assert.equal("EPROTO", errcode(function()
        return http.get(srv:url("/text")):json()
      end))
    end)
  end)

  describe("failures", function()
    it("raises ECONNREFUSED when nothing listens", function()
      local code, err = errcode(http.get, "http://127.0.0.1:1/")
      assert.equal("ECONNREFUSED", code)
      assert.equal("http.request", err.op)
      assert.equal("http://127.0.0.1:1/", err.path)
      assert.matches("ECONNREFUSED", tostring(err))
    end)

    it("raises ENOTFOUND when the name does not resolve", function()
      -- a 70-character label is refused by the resolver without sending
      -- a query
      local host = string.rep("a", 70) .. ".invalid"
      assert.equal("ENOTFOUND", (errcode(http.get, "http://" .. host .. "/")))
    end)

    it("raises ETIMEDOUT when the timeout passes", function()
      local t0 = tide.now()
      local code = errcode(http.get, srv:url("/slow?s=5"), {timeout = 0.2})
      assert.equal("ETIMEDOUT", code)
      assert.is_true(tide.now() - t0 < 4)
      assert_clean()
    end)

    it("is interrupted by tide.timeout without leaving the transfer",
       function()
      local code = errcode(tide.timeout, 0.2, http.get, srv:url("/slow?s=5"))
      assert.equal("ETIMEDOUT", code)
      assert_clean()
      assert.equal(200, http.get(srv:url("/text")).status)
    end)

    it("raises EMSGSIZE for a body over max_size", function()
      local code, err = errcode(http.get, srv:url("/large"),
                                {max_size = 1000})
      assert.equal("EMSGSIZE", code)
      assert.matches("max_size %(1000 bytes%)", err.message)
      -- chunked: no Content-Length to refuse early, counted as it comes
      assert.equal("EMSGSIZE", (errcode(http.get, srv:url("/drip?s=0"),
                                        {max_size = 10})))
      assert.equal("hello, world\n", http.get(srv:url("/text"),
                                              {max_size = 13}).body)
      assert.equal("EMSGSIZE", (errcode(http.request, {
        url = srv:url("/large"), stream = true, max_size = 100000})))
      local r = http.request{url = srv:url("/drip?s=0.05"), stream = true,
                             max_size = 10}
      local ok, e = pcall(function() for _ in r:chunks() do end end)
      r:close()
      assert.is_false(ok)
      assert.equal("EMSGSIZE", e.code)
      assert_clean()
    end)

    it("rejects bad arguments, naming them", function()
      assert.has_error(function() http.get(42) end,
        "bad argument #1 to 'get' (string expected, got number)")
      assert.has_error(function() http.get(srv:url("/"), 5) end,
        "bad argument #2 to 'get' (table expected, got number)")
      assert.has_error(function() http.post(srv:url("/")) end,
        "bad argument #2 to 'post' (string expected, got nil)")
      assert.has_error(function() http.request("x") end,
        "bad argument #1 to 'request' (table expected, got string)")
      assert.has_error(function() http.request{} end,
        "bad argument #1 to 'request' (field 'url' must be a string, got nil)")
      assert.has_error(function() http.get("ftp://127.0.0.1/") end)
      assert.has_error(function() http.get("file:///etc/passwd") end)
      assert.has_error(function()
        http.request{url = srv:url("/"), method = "GE T"}
      end)
      assert.has_error(function()
        http.get(srv:url("/"), {timeout = "soon"})
      end, "bad option 'timeout' to 'request' (number expected, got string)")
      assert.has_error(function()
        http.get(srv:url("/"), {headers = {["X-A"] = "a\r\nX-B: b"}})
      end)
      assert.has_error(function()
        http.get(srv:url("/"), {headers = {["Bad Name"] = "v"}})
      end)
      assert_clean()
    end)

    it("cannot suspend where Lua cannot yield", function()
      local status, out = helper.tide([[
        local http = require "tide.http_client"
        print(pcall(table.sort, {1, 2, 3}, function(a, b)
          http.get("http://127.0.0.1:1/")
          return a < b
        end))
      ]])
      assert.equal(0, status)
      assert.matches("cannot suspend here", out)
    end)
  end)

  describe("cancellation", function()
    it("cancels a pending request and closes its connection", function()
      local t = tide.spawn(function()
        return http.get(srv:url("/slow?s=3&tag=cancel1"))
      end)
      tide.sleep(0.1)
      t:cancel("enough")
      local code, err = errcode(t.await, t)
      assert.equal("ECANCELED", code)
      assert.matches("enough", err.message)
      assert_clean()
      assert.equal(200, http.get(srv:url("/text")).status)
    end)

    it("cancels many pending requests at once", function()
      local tasks = {}
      for i = 1, 20 do
        tasks[i] = tide.spawn(http.get, srv:url("/slow?s=3"))
      end
      tide.sleep(0.1)
      for i = 1, 20 do tasks[i]:cancel() end
      for i = 1, 20 do assert.equal("ECANCELED", (errcode(tasks[i].await,
                                                           tasks[i]))) end
      assert_clean()
    end)

    it("cancels a request that has not started yet", function()
      local t = tide.spawn(http.get, srv:url("/text"))
      t:cancel()
      assert.equal("ECANCELED", (errcode(t.await, t)))
      assert_clean()
    end)
  end)

  describe("streaming", function()
    it("returns at the headers and reads the body as it comes", function()
      local t0 = tide.now()
      local r = http.request{url = srv:url("/drip?s=0.1"), stream = true}
      assert.equal(200, r.status)
      assert.is_nil(r.body)
      assert.equal("text/plain", r.headers["Content-Type"])
      assert.is_true(tide.now() - t0 < 0.35)
      local lines = {}
      for chunk in r:chunks() do lines[#lines + 1] = chunk end
      assert.equal("line 1\nline 2\nline 3\nline 4\nline 5\n",
                   table.concat(lines))
      assert.is_nil(r:read())
      r:close()
      assert_clean()
    end)

    it("reads at most n bytes with read(n)", function()
      local r = http.request{url = srv:url("/text"), stream = true}
      assert.equal("hello", r:read(5))
      assert.equal(", world\n", r:read(100))
      assert.is_nil(r:read(5))
      r:close()
    end)

    it("pauses the transfer while the reader lags (back-pressure)",
       function()
      local r <close> = http.request{url = srv:url("/large"), stream = true}
      tide.sleep(0.3)
      local s = rawget(r, "_stream")
      local buffered = s:_buffered()
      assert.is_true(buffered > 0)
      assert.is_true(buffered <= 512 * 1024,
                     "buffered " .. buffered .. " bytes")
      local parts, n = {}, 0
      for chunk in r:chunks() do
        n = n + 1
        parts[n] = chunk
        assert.is_true(s:_buffered() <= 512 * 1024)
      end
      assert.is_true(table.concat(parts) == read_file(srv.dir .. "/large.bin"))
    end)

    it("stops a stream closed early and frees it", function()
      do
        local r <close> = http.request{url = srv:url("/large"), stream = true}
        assert.is_truthy(r:read(1000))
      end
      assert_clean()
      assert.equal(200, http.get(srv:url("/text")).status)
    end)

    it("cancels a task blocked in read", function()
      local r = http.request{url = srv:url("/drip?s=1"), stream = true}
      local t = tide.spawn(function()
        local got = {}
        for chunk in r:chunks() do got[#got + 1] = chunk end
        return got
      end)
      tide.sleep(0.2)
      t:cancel()
      assert.equal("ECANCELED", (errcode(t.await, t)))
      assert.equal(0, http._stats().waiting)
      r:close()
      assert_clean()
    end)

    it("wakes a reader with ECLOSED when another task closes", function()
      local r = http.request{url = srv:url("/drip?s=1"), stream = true}
      local t = tide.spawn(function()
        while true do assert(r:read()) end
      end)
      tide.sleep(0.2)
      r:close()
      assert.equal("ECLOSED", (errcode(t.await, t)))
      assert_clean()
    end)

    it("cancels a stream request waiting for headers", function()
      local t = tide.spawn(http.request,
                           {url = srv:url("/slow?s=3"), stream = true})
      tide.sleep(0.1)
      t:cancel()
      assert.equal("ECANCELED", (errcode(t.await, t)))
      assert_clean()
    end)

    it("decodes JSON from a stream", function()
      local r = http.request{url = srv:url("/json"), stream = true}
      assert.equal(42, r:json().n)
      r:close()
    end)
  end)

  describe("HTTPS", function()
    it("verifies certificates by default (ECERT)", function()
      assert.equal("ECERT", (errcode(http.get, srv:url("/text", "https"))))
    end)

    it("accepts the server with cafile= or verify=false", function()
      local r = http.get(srv:url("/text", "https"), {cafile = srv.cert})
      assert.equal(200, r.status)
      assert.equal("hello, world\n", r.body)
      r = http.get(srv:url("/text", "https"), {verify = false})
      assert.equal(200, r.status)
    end)

    it("speaks HTTP/2 when the server offers it", function()
      local list = {}
      for i = 1, 10 do
        list[i] = function()
          return http.get(srv:url("/text", "https"), {cafile = srv.cert})
        end
      end
      for _, r in ipairs(tide.gather(list)) do
        assert.equal("2", r.version)
        assert.equal("hello, world\n", r.body)
      end
      assert.equal(nginx.large_size, #http.get(srv:url("/large", "https"),
                                               {cafile = srv.cert}).body)
    end)

    it("raises ETLS when the peer does not speak TLS", function()
      local url = ("https://127.0.0.1:%d/text"):format(srv.port)
      assert.equal("ETLS", (errcode(http.get, url, {verify = false})))
    end)

    it("raises ECERT for a CA file that does not exist", function()
      assert.equal("ECERT", (errcode(http.get, srv:url("/text", "https"),
                                     {cafile = "/nonexistent/ca.pem"})))
    end)
  end)

  describe("hostile peers", function()
    local port, pid, base

    setup(function()
      port, pid, base = start_peer("python3 " .. helper.root
                             .. "/tests/lua/support/badhttp.py %s")
    end)

    teardown(function() stop_peer(pid) end)

    local cases = {
      {"/garbage", "EPROTO"},
      {"/truncated", "EPROTO"},
      {"/badchunk", "EPROTO"},
      {"/badgzip", "EPROTO"},
      {"/hugeheader", "EPROTO"},
      {"/badstatus", "EPROTO"},
      {"/nothing", "ECONNRESET"},
    }
    for _, case in ipairs(cases) do
      it("maps " .. case[1] .. " to " .. case[2], function()
        local url = ("http://127.0.0.1:%d%s"):format(port, case[1])
        assert.equal(case[2], (errcode(http.get, url)))
        assert_clean()
      end)
    end

    it("closes the connection of a cancelled request", function()
      local t = tide.spawn(http.get, ("http://127.0.0.1:%d/hang"):format(port))
      tide.sleep(0.1)
      t:cancel()
      assert.equal("ECANCELED", (errcode(t.await, t)))
      assert_clean()
      local log
      for _ = 1, 200 do
        local f = io.open(base .. ".log")
        log = f and f:read("a")
        if f then f:close() end
        if log == "closed\n" then break end
        tide.sleep(0.01)
      end
      os.remove(base .. ".log")
      assert.equal("closed\n", log)
    end)

    it("still works with the same server afterwards", function()
      local r = http.get(("http://127.0.0.1:%d/ok"):format(port))
      assert.equal("ok", r.body)
    end)
  end)

  describe("python3 -m http.server", function()
    it("fetches a file from it", function()
      local py = pyhttp.start{["hello.txt"] = "hi from python\n"}
      local ok, r = pcall(http.get, py:url("/hello.txt"))
      py:stop()
      assert(ok, tostring(r))
      assert.equal(200, r.status)
      assert.equal("hi from python\n", r.body)
      assert.equal("text/plain", r.headers["content-type"])
    end)
  end)

  describe("the process", function()
    it("exits once requests are done, idle connections or not", function()
      local t0 = tide.now()
      local status, out = helper.tide(([[
        local http = require "tide.http_client"
        print(http.get(%q).status)
        local r = http.request{url = %q, stream = true}
        print(r.status)
      ]]):format(srv:url("/text"), srv:url("/large")))
      assert.equal(0, status)
      assert.equal("200\n200\n", out)
      assert.is_true(tide.now() - t0 < 10)
    end)

    it("runs the examples of docs/http_client.md", function()
      local doc = read_file(helper.root .. "/docs/http_client.md")
      local n = 0
      for code in doc:gmatch("```lua\n(.-)```") do
        n = n + 1
        local status, out = helper.tide(("local base = %q\n"):format(
          srv:url("")) .. code)
        assert.equal(0, status, "example " .. n .. " failed:\n" .. code
                     .. "\n" .. out)
      end
      assert.is_true(n >= 5)
    end)

    it("runs the benchmark client and the benchmark at tiny sizes",
       function()
      local bench = helper.root .. "/scripts/bench/http_client"
      local status, out = helper.sh(("%s %s/client.lua %s 50 4"):format(
        helper.bin, bench, srv:url("/text")))
      assert.equal(0, status, out)
      assert.is_true(tonumber(out:match("req_per_s=([%d.]+)")) > 0, out)
      assert.is_true(tonumber(out:match("cpu_us_per_req=([%d.]+)")) >= 0,
                     out)
      status, out = helper.sh(("N=40 C=4 BENCH_REPEAT=1 TIDE=%s bash "
                               .. "%s/run.sh"):format(helper.bin, bench))
      assert.equal(0, status, out)
      assert.matches("http_client: the client against nginx", out)
      assert.matches("40 requests, 4 in flight%s+req/s%s+%d", out)
    end)

    it("reports the libcurl version", function()
      assert.matches("^%d+%.%d+", http.curl_version())
    end)
  end)
end)
