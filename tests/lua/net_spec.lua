local net = require "tide.net"
local T = require "tests.lua.support.net"

local function errof(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("tide.net streams", function()
  local srv
  before_each(function() srv = T.echo_server{port = 0} end)
  after_each(function() srv:close() end)

  it("echoes with every read method", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:write("hello\r\nworld\n")
    assert.equal("hello", s:read_line())
    assert.equal("world", s:read_line())
    s:write("a;b;;")
    assert.equal("a", s:read_until(";"))
    assert.equal("b", s:read_until(";"))
    assert.equal("", s:read_until(";"))
    s:write("0123456789")
    assert.equal("0123", s:read_exactly(4))
    assert.equal("", s:read_exactly(0))
    assert.equal("456789", s:read_exactly(6))
    s:write("xyz")
    local got = ""
    while #got < 3 do got = got .. s:read(2) end
    assert.equal("xyz", got)
    assert.equal(s, s:write(""))
  end)

  it("iterates over chunks and lines until the end of stream", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:write("a\nbb\r\nccc")
    s:shutdown()
    local lines = {}
    for line in s:lines() do lines[#lines + 1] = line end
    assert.same({"a", "bb", "ccc"}, lines)
    local s2 <close> = net.connect("127.0.0.1", srv.port)
    s2:write(("k"):rep(10000))
    s2:shutdown()
    local n = 0
    for chunk in s2:chunks(1000) do
      assert.is_true(#chunk <= 1000)
      n = n + #chunk
    end
    assert.equal(10000, n)
    assert.matches("bad argument #1 to 'chunks'",
                   tostring(errof(function() return s2:chunks(0) end)))
  end)

  it("reports addresses and takes socket options", function()
    local s <close> = net.connect("localhost", srv.port)
    local host, port = s:peer()
    assert.equal(srv.port, port)
    assert.is_truthy(host == "127.0.0.1" or host == "::1")
    local lhost, lport = s:local_addr()
    assert.equal(host, lhost)
    assert.is_true(lport > 0 and lport ~= port)
    assert.equal(s, s:nodelay(true))
    assert.equal(s, s:keepalive(true, 30))
    assert.matches("tide.Stream %(tcp%)", tostring(s))
  end)

  it("returns nil at end of stream and delivers buffered data first", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:write("last line without newline")
    s:shutdown()
    assert.equal("last line without newline", s:read_line())
    assert.is_nil(s:read_line())
    assert.is_nil(s:read())
    assert.is_nil(s:read_until("x"))
    -- a closed stream raises ECLOSED
    s:close()
    assert.is_true(s:closed())
    assert.equal("ECLOSED", errof(s.read, s).code)
    assert.equal("ECLOSED", errof(s.write, s, "x").code)
    s:close() -- idempotent
  end)

  it("raises EPROTO with the partial data when the stream ends early", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:write("abc")
    s:shutdown()
    local err = errof(s.read_exactly, s, 10)
    assert.equal("EPROTO", err.code)
    assert.equal("abc", err.partial)
    local s2 <close> = net.connect("127.0.0.1", srv.port)
    s2:write("no separator")
    s2:shutdown()
    err = errof(s2.read_until, s2, "\0")
    assert.equal("EPROTO", err.code)
    assert.equal("no separator", err.partial)
  end)

  it("caps line length and data before a separator", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:limits{max_line = 16}
    s:write(("x"):rep(40) .. "\n")
    local err = errof(s.read_line, s)
    assert.equal("EPROTO", err.code)
    assert.matches("line longer than 16 bytes", err.message)
    -- the data stays; a bigger read still gets it
    assert.equal(("x"):rep(40) .. "\n", s:read_exactly(41))
    s:write("0123456789;")
    err = errof(s.read_until, s, ";", 5)
    assert.equal("EPROTO", err.code)
    assert.equal("0123456789", s:read_until(";", 10))
    -- a line exactly at the limit is fine
    s:write(("y"):rep(16) .. "\n")
    assert.equal(("y"):rep(16), s:read_line())
  end)

  it("transfers 10 MiB both ways with back-pressure", function()
    local data = T.blob(10 * 1024 * 1024 + 17)
    local s <close> = net.connect("127.0.0.1", srv.port)
    local writer = tide.spawn(function()
      for i = 1, #data, 256 * 1024 do s:write(data:sub(i, i + 256 * 1024 - 1)) end
      s:flush()
      s:shutdown()
    end)
    local parts = {}
    while true do
      local d = s:read(100000)
      if not d then break end
      assert.is_true(#d <= 100000)
      parts[#parts + 1] = d
    end
    writer:await()
    assert.equal(#data, #table.concat(parts))
    assert.is_true(table.concat(parts) == data)
  end)

  it("suspends a writer while the peer does not read", function()
    local psrv, streams, release = T.parking_server()
    local s <close> = net.connect("127.0.0.1", psrv.port)
    local chunk, sent = ("z"):rep(64 * 1024), 0
    local writer = tide.spawn(function()
      while sent < 64 * 1024 * 1024 do
        s:write(chunk)
        sent = sent + #chunk
      end
    end)
    -- the writer fills the kernel buffers and the queue, then waits
    T.until_true(function()
      local before = sent
      tide.sleep(0.02)
      return writer.status == "waiting" and sent == before
    end)
    assert.is_true(sent < 64 * 1024 * 1024)
    -- the peer drains: the writer goes on
    local peer = streams[1]
    local total = 0
    local reader = tide.spawn(function()
      while true do
        local d = peer:read()
        if not d then break end
        total = total + #d
      end
    end)
    writer:cancel()
    assert.equal("cancelled", pcall(writer.await, writer) and "" or writer.status)
    s:flush()
    s:close()
    reader:await()
    assert.equal(sent + #chunk, total) -- the cancelled write was queued
    release()
    psrv:close()
  end)

  it("delivers queued data when closed right after writing", function()
    local got = tide.future()
    local sink = net.listen{port = 0, handler = function(s)
      tide.sleep(0.05) -- let the writer queue up and close first
      local n = 0
      while true do
        local d = s:read()
        if not d then break end
        n = n + #d
      end
      got:set(n)
    end}
    local s = net.connect("127.0.0.1", sink.port)
    local big = ("q"):rep(4 * 1024 * 1024)
    s:limits{high_water = 64 * 1024 * 1024}
    s:write(big)
    s:close()
    assert.equal(#big, got:await())
    sink:close()
  end)

  it("gives up flushing to a peer that does not read after linger", function()
    local psrv, streams, release = T.parking_server()
    local s = net.connect("127.0.0.1", psrv.port)
    T.until_true(function() return #streams == 1 end)
    T.settle()
    local before = T.handles()
    s:limits{high_water = 64 * 1024 * 1024, linger = 0.05}
    s:write(("l"):rep(16 * 1024 * 1024))
    s:close()
    -- the socket and the linger timer are still open ...
    assert.equal(before + 1, T.handles())
    -- ... and gone once the linger time is over
    T.until_true(function() return T.handles() == before - 1 end)
    release()
    psrv:close()
  end)

  it("raises EPIPE or ECONNRESET when writing to a closed peer", function()
    local closer = net.listen{port = 0, handler = function(s) s:close() end}
    local s <close> = net.connect("127.0.0.1", closer.port)
    assert.is_nil(s:read())
    local err = errof(function()
      for _ = 1, 1000 do
        s:write(("w"):rep(65536))
        tide.sleep(0)
      end
    end)
    assert.is_truthy(err.code == "EPIPE" or err.code == "ECONNRESET", err.code)
    closer:close()
  end)

  it("refuses a second concurrent reader", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    local t = tide.spawn(function() return s:read() end)
    tide.sleep(0)
    local err = errof(s.read, s)
    assert.matches("another task is reading", tostring(err))
    s:write("x")
    assert.equal("x", t:await())
  end)

  it("wakes a blocked reader with ECLOSED when another task closes", function()
    local s = net.connect("127.0.0.1", srv.port)
    local t = tide.spawn(function() return s:read() end)
    tide.sleep(0)
    s:close()
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("ECLOSED", err.code)
  end)

  it("rejects bad arguments with the argument named", function()
    assert.matches("bad argument #1 to 'connect'", tostring(errof(net.connect, 1)))
    assert.matches("bad argument #2 to 'connect'",
                   tostring(errof(net.connect, "127.0.0.1", "x")))
    assert.matches("field 'timeout'",
                   tostring(errof(net.connect, "127.0.0.1", 1, {timeout = "1"})))
    assert.matches("bad argument #1 to 'listen'", tostring(errof(net.listen, 5)))
    assert.matches("field 'backlog'",
                   tostring(errof(net.listen, {port = 0, backlog = 1.5})))
    assert.matches("field 'handler'",
                   tostring(errof(net.listen, {port = 0, handler = 1})))
    local s <close> = net.connect("127.0.0.1", srv.port)
    assert.matches("bad argument #1 to 'read' %(number expected",
                   tostring(errof(function() return s:read("x") end)))
    assert.matches("bad argument #1 to 'read_until' %(empty separator",
                   tostring(errof(function() return s:read_until("") end)))
    assert.matches("bad argument #1 to 'write' %(string expected",
                   tostring(errof(function() return s:write({}) end)))
    assert.matches("tide.Stream expected", tostring(errof(s.read, {})))
  end)
end)

describe("tide.net connect", function()
  it("raises ECONNREFUSED", function()
    local err = errof(net.connect, "127.0.0.1", 1)
    assert.equal("ECONNREFUSED", err.code)
    assert.equal("net.connect", err.op)
    assert.equal("127.0.0.1:1", err.addr)
  end)

  it("raises a resolver error for an unknown name", function()
    local err = errof(net.connect, "no-such-host.invalid", 80)
    assert.matches("^EAI_", err.code)
    err = errof(net.resolve, "no-such-host.invalid")
    assert.matches("^EAI_", err.code)
    assert.equal("net.resolve", err.op)
  end)

  it("resolves names", function()
    local addrs = net.resolve("localhost")
    assert.is_true(#addrs >= 1)
    assert.equal("127.0.0.1", net.resolve("localhost", "inet")[1])
    assert.same({"127.0.0.1"}, net.resolve("127.0.0.1"))
  end)

  it("tries every address of a name", function()
    local srv = T.echo_server{host = "127.0.0.1", port = 0}
    -- localhost may resolve to ::1 first, where nothing listens
    local s <close> = net.connect{host = "localhost", port = srv.port}
    s:write("ok\n")
    assert.equal("ok", s:read_line())
    srv:close()
  end)

  it("times out, leaving nothing behind", function()
    -- A server that never accepts, with the kernel backlog full: further
    -- SYNs are dropped and connects hang.
    local C = require "tide._net"
    local full = C.listen_tcp("127.0.0.1", 0, 1)
    local port = full:port()
    local held, err = {}
    for _ = 1, 300 do
      local ok, s = pcall(net.connect, "127.0.0.1", port, {timeout = 0.05})
      if not ok then
        err = s
        break
      end
      held[#held + 1] = s
    end
    assert.is_table(err)
    assert.equal("ETIMEDOUT", err.code)
    assert.equal("net.connect", err.op)
    T.settle()
    local before = T.handles()
    err = errof(net.connect, "127.0.0.1", port, {timeout = 0.02})
    assert.equal("ETIMEDOUT", err.code)
    T.settle()
    assert.equal(before, T.handles())
    for _, s in ipairs(held) do s:close() end
    full:close()
  end)

  it("is cancelled while resolving or connecting", function()
    T.settle()
    local before = T.handles()
    local t = tide.spawn(net.connect, "localhost", 9)
    tide.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.equal("cancelled", t.status)
    -- while connecting, with an IP literal
    t = tide.spawn(net.connect, "127.0.0.1", 1)
    tide.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    T.settle()
    assert.equal(before, T.handles())
  end)

  it("works over IPv6 loopback", function()
    local ok, srv = pcall(T.echo_server, {host = "::1", port = 0})
    if not ok then return end -- no IPv6 on this machine
    local s <close> = net.connect("::1", srv.port)
    assert.equal("::1", (s:peer()))
    s:write("six\n")
    assert.equal("six", s:read_line())
    srv:close()
  end)

  it("connects to Unix sockets", function()
    local path = os.tmpname()
    os.remove(path)
    local srv = T.echo_server{path = path}
    assert.equal(path, srv.path)
    local s <close> = net.connect{path = path}
    assert.equal(path, s:peer())
    assert.matches("tide.Stream %(pipe%)", tostring(s))
    s:write("unix\n")
    assert.equal("unix", s:read_line())
    assert.equal("ENOENT", errof(net.connect, {path = path .. ".none"}).code)
    srv:close()
    os.remove(path)
  end)
end)

describe("tide.net timeouts and cancellation", function()
  local srv
  before_each(function() srv = T.echo_server{port = 0} end)
  after_each(function() srv:close() end)

  it("times out a read and the stream still works", function()
    local s <close> = net.connect("127.0.0.1", srv.port)
    local err = errof(tide.timeout, 0.02, s.read, s)
    assert.equal("ETIMEDOUT", err.code)
    s:write("after")
    assert.equal("after", s:read_exactly(5))
  end)

  for _, m in ipairs{"read", "read_line", "read_exactly", "read_until"} do
    it("cancels a pending " .. m .. " and keeps the bytes", function()
      local s <close> = net.connect("127.0.0.1", srv.port)
      local arg = ({read_exactly = 10, read_until = "!"})[m]
      local t = tide.spawn(s[m], s, arg)
      tide.sleep(0)
      assert.equal("waiting", t.status)
      if m ~= "read" then
        -- bytes that do not complete the read stay in the buffer
        s:write("part")
        tide.sleep(0.01)
        assert.equal("waiting", t.status)
      end
      t:cancel()
      assert.is_false(pcall(t.await, t))
      assert.equal("cancelled", t.status)
      s:write(m == "read" and "partial!" or "ial!")
      assert.equal("partial", s:read_until("!"))
    end)
  end

  it("cancels a pending accept and a pending flush", function()
    T.settle()
    local before = T.handles()
    local bare = net.listen{port = 0}
    local t = tide.spawn(bare.accept, bare)
    tide.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    -- the server still accepts afterwards
    local c = net.connect("127.0.0.1", bare.port)
    local s = bare:accept()
    assert.is_truthy(s)
    -- flush blocked on a peer that does not read
    c:limits{high_water = 1024 * 1024 * 1024}
    local f = tide.spawn(function()
      for _ = 1, 256 do c:write(("f"):rep(65536)) end
      c:flush()
    end)
    T.until_true(function() return f.status == "waiting" end)
    f:cancel()
    assert.is_false(pcall(f.await, f))
    s:close()
    c:close()
    bare:close()
    -- c still flushes in the background until the peer's reset ends it
    T.until_true(function() return T.handles() == before end)
  end)

  it("cancels a pending shutdown and refuses writes after it", function()
    local psrv, streams, release = T.parking_server()
    local c = net.connect("127.0.0.1", psrv.port)
    T.until_true(function() return #streams == 1 end)
    T.settle()
    local before = T.handles()
    -- the peer does not read: the shutdown waits behind the queued data
    c:limits{high_water = 64 * 1024 * 1024}
    c:write(("s"):rep(8 * 1024 * 1024))
    local t = tide.spawn(c.shutdown, c)
    tide.sleep(0.01)
    assert.equal("waiting", t.status)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    assert.equal("cancelled", t.status)
    local err = errof(c.write, c, "more")
    assert.equal("EPIPE", err.code)
    -- the peer drains: the shutdown completes and the peer sees the end
    local peer, n = streams[1], 0
    while true do
      local d = peer:read()
      if not d then break end
      n = n + #d
    end
    assert.equal(8 * 1024 * 1024, n)
    c:close()
    release()
    T.until_true(function() return T.handles() == before - 2 end)
    psrv:close()
  end)

  it("still delivers queued data when closed during a shutdown",
     function()
    local psrv, streams, release = T.parking_server()
    local c = net.connect("127.0.0.1", psrv.port)
    T.until_true(function() return #streams == 1 end)
    T.settle()
    local before = T.handles()
    c:limits{high_water = 64 * 1024 * 1024}
    c:write(("s"):rep(8 * 1024 * 1024))
    local err = errof(tide.timeout, 0.02, c.shutdown, c)
    assert.equal("ETIMEDOUT", err.code)
    c:close() -- the shutdown is still in flight behind the queued data
    local peer, n = streams[1], 0
    while true do
      local d = peer:read()
      if not d then break end
      n = n + #d
    end
    assert.equal(8 * 1024 * 1024, n)
    release()
    T.until_true(function() return T.handles() == before - 2 end)
    psrv:close()
  end)

  it("leaves nothing behind when cancelled at any await point", function()
    -- A client goes through every await point of a connection; for each
    -- point in turn, it is cancelled right after it suspends there (the
    -- canceller is spawned just before the call, so it runs when the
    -- client suspends), or a few loop turns later.
    T.settle()
    local before = T.handles()
    local points = {"connect", "read1", "read2", "read3", "flush",
                    "shutdown", "eof"}
    local reached = {}
    for _, target in ipairs(points) do
      for delay = 0, 3 do
        local t
        local function at(point)
          if point == target then
            reached[point] = true
            tide.spawn(function()
              for _ = 1, delay do tide.sleep(0.0001) end
              t:cancel()
            end)
          end
        end
        t = tide.spawn(function()
          at("connect")
          local s <close> = net.connect("127.0.0.1", srv.port)
          s:limits{high_water = 1}
          for i = 1, 3 do
            s:write(("x"):rep(i * 20000) .. "\n")
            at("read" .. i)
            assert(#s:read_line() == i * 20000)
          end
          s:write(("y"):rep(300000))
          at("flush")
          s:flush()
          at("shutdown")
          s:shutdown()
          assert(#s:read_exactly(300000) == 300000)
          at("eof")
          assert(s:read() == nil)
        end)
        pcall(t.await, t)
        assert.is_true(t.status == "cancelled" or t.status == "done",
                       t.status)
      end
    end
    for _, p in ipairs(points) do assert.is_true(reached[p], p) end
    -- every socket, request and task is gone, and the server still works
    T.until_true(function() return T.handles() == before end)
    local s <close> = net.connect("127.0.0.1", srv.port)
    s:write("still\n")
    assert.equal("still", s:read_line())
  end)

  it("ends a handler task when it is cancelled, without logging", function()
    local started = tide.future()
    local task
    local psrv = net.listen{port = 0, handler = function(s)
      task = tide.current()
      started:set()
      s:read()
    end}
    local c <close> = net.connect("127.0.0.1", psrv.port)
    started:await()
    task:cancel()
    assert.is_false(pcall(task.await, task))
    assert.is_nil(c:read()) -- the server side was closed
    psrv:close()
    psrv:wait()
  end)
end)

describe("tide.net servers", function()
  it("serves 1000 concurrent connections", function()
    local srv = T.echo_server{port = 0, backlog = 1024}
    local n, before = 1000, T.handles()
    local clients = {}
    for i = 1, n do
      clients[i] = function()
        local s <close> = net.connect("127.0.0.1", srv.port)
        s:write("client " .. i .. "\n")
        return s:read_line()
      end
    end
    local got = tide.gather(clients)
    for i = 1, n do assert.equal("client " .. i, got[i]) end
    srv:close()
    srv:wait()
    T.settle()
    assert.is_true(T.handles() <= before)
  end)

  it("logs a handler error and closes only that connection", function()
    local status, out = helper.tide([[
      local net = require "tide.net"
      local srv = net.listen{port = 0, handler = function(s)
        local line = s:read_line()
        if line == "boom" then error("handler exploded") end
        s:write("echo " .. line .. "\n")
      end}
      local bad = net.connect("127.0.0.1", srv.port)
      local good = net.connect("127.0.0.1", srv.port)
      bad:write("boom\n")
      print("bad read", bad:read())
      good:write("fine\n")
      print("good read", good:read_line())
      srv:close()
      srv:wait()
      print("served")
    ]])
    assert.equal(0, status, out)
    assert.matches("bad read\tnil", out)
    assert.matches("good read\techo fine", out)
    assert.matches("handler exploded", out)
    assert.matches("stack traceback", out)
    assert.matches("served", out)
  end)

  it("closes the stream of a connection task cancelled before it ran", function()
    -- Such a task never runs, so it cannot close its stream: the accept
    -- loop does, at its next accept and when it ends; wait() must not
    -- wait for it forever.
    local served = 0
    local srv = net.listen{port = 0, handler = function(s)
      served = served + 1
      s:write("hi\n")
    end}
    local before = T.handles()
    local c1, t = T.connect_cancelled(srv.port)
    -- the next accept releases the first connection
    local c2 = net.connect("127.0.0.1", srv.port)
    assert.equal("hi", c2:read_line())
    c2:close()
    assert.is_true(t:cancelled())
    assert.is_nil(tide.wait_for(function() return c1:read() end, 5))
    c1:close()
    assert.equal(1, served)
    -- and one cancelled at the end is released when the loop ends
    local c3 = T.connect_cancelled(srv.port)
    srv:close()
    tide.wait_for(function() srv:wait() end, 5)
    assert.is_nil(tide.wait_for(function() return c3:read() end, 5))
    c3:close()
    assert.equal(1, served)
    -- the listener is gone, and so is every stream
    T.until_true(function() return T.handles() == before - 1 end)
  end)

  it("releases such a connection when its accept loop is cancelled", function()
    local srv = net.listen{port = 0, handler = function(s) s:write("hi\n") end}
    local before = T.handles()
    local c = T.connect_cancelled(srv.port)
    T.settle() -- the cancelled task has ended; the loop waits in accept
    srv._task:cancel()
    assert.equal("ECANCELED", errof(tide.await, srv._task).code)
    assert.is_nil(tide.wait_for(function() return c:read() end, 5))
    c:close()
    srv:close()
    -- wait() passes the accept loop's cancel on, and does not hang
    local err = errof(tide.wait_for, function() srv:wait() end, 5)
    assert.equal("ECANCELED", err.code)
    T.until_true(function() return T.handles() == before - 1 end)
  end)

  it("raises EADDRINUSE for a busy port and stops accepting on close", function()
    local srv = T.echo_server{port = 0}
    local err = errof(net.listen, {port = srv.port, handler = function() end})
    assert.equal("EADDRINUSE", err.code)
    local s <close> = net.connect("127.0.0.1", srv.port)
    srv:close()
    assert.is_true(srv:closed())
    assert.equal("ECONNREFUSED", errof(net.connect, "127.0.0.1", srv.port).code)
    -- existing connections go on
    s:write("still\n")
    assert.equal("still", s:read_line())
    s:close()
    srv:wait()
  end)

  it("hands connections to accept() when there is no handler", function()
    local srv <close> = net.listen{port = 0}
    local c <close> = net.connect("127.0.0.1", srv.port)
    local s <close> = srv:accept()
    c:write("hi")
    assert.equal("hi", s:read(2))
    srv:close()
    assert.is_nil(srv:accept())
  end)
end)

describe("tide.net udp", function()
  it("sends and receives datagrams", function()
    local a <close> = net.udp{host = "127.0.0.1", port = 0}
    local b <close> = net.udp{host = "127.0.0.1", port = 0}
    local _, bport = b:local_addr()
    local ahost, aport = a:local_addr()
    assert.equal("127.0.0.1", ahost)
    a:send("ping", "127.0.0.1", bport)
    local data, host, port = b:recv()
    assert.equal("ping", data)
    assert.equal("127.0.0.1", host)
    assert.equal(aport, port)
    b:send("pong", host, port)
    assert.equal("pong", (a:recv()))
    a:send("by name", "localhost", bport)
    assert.equal("by name", (b:recv()))
  end)

  it("times out and cancels recv, leaving nothing behind", function()
    T.settle()
    local before = T.handles()
    local u = net.udp{host = "127.0.0.1", port = 0}
    assert.equal("ETIMEDOUT", errof(tide.timeout, 0.02, u.recv, u).code)
    local t = tide.spawn(u.recv, u)
    tide.sleep(0)
    t:cancel()
    assert.is_false(pcall(t.await, t))
    local _, port = u:local_addr()
    local v = net.udp()
    v:send("later", "127.0.0.1", port)
    assert.equal("later", (u:recv()))
    u:close()
    v:close()
    assert.equal("ECLOSED", errof(u.recv, u).code)
    T.settle()
    assert.equal(before, T.handles())
  end)
end)

describe("tide.net examples", function()
  it("run the echo client against its own server", function()
    local status, out = helper.sh(
      "ECHO_PORT=0 ECHO_DURATION=0.3 ECHO_CLIENTS=4 " .. helper.bin ..
      " scripts/examples/echo_client.lua")
    assert.equal(0, status, out)
    assert.matches("4 clients, %d+ round trips in [%d.]+ s: %d+ messages/s", out)
  end)

  it("run the echo server and the client against it", function()
    local path = os.tmpname()
    os.remove(path)
    local status, out = helper.sh(
      ("ECHO_PATH=%s ECHO_DURATION=1 %s scripts/examples/echo_server.lua & "
       .. "ECHO_PATH=%s ECHO_DURATION=0.3 ECHO_CLIENTS=3 %s "
       .. "scripts/examples/echo_client.lua; wait")
      :format(path, helper.bin, path, helper.bin))
    assert.equal(0, status, out)
    assert.matches("listening on " .. path:gsub("%p", "%%%0"), out)
    assert.matches("3 clients, %d+ round trips", out)
    assert.matches("served 3 connections", out)
  end)
end)

describe("docs/net.md", function()
  -- Every ```lua block of the module's documentation runs, and prints what
  -- its `--> value` comments say (comments with parentheses or <...> are
  -- explanations, not checked).
  local f = assert(io.open(helper.root .. "/docs/net.md"))
  local text = f:read("a")
  f:close()
  local n = 0
  for block in text:gmatch("```lua\n(.-)```") do
    n = n + 1
    it("runs example " .. n, function()
      local status, out = helper.tide(block)
      assert.equal(0, status, out)
      for expected in block:gmatch("%-%-> ([^\n]+)") do
        if not expected:find("[(<]") then
          local words = {}
          for w in expected:gmatch("%S+") do words[#words + 1] = w end
          assert.matches(table.concat(words, "%s+"):gsub("%%s%+", "\1")
                         :gsub("%p", "%%%0"):gsub("\1", "%%s+"), out)
        end
      end
    end)
  end
  it("has examples", function() assert.is_true(n >= 6) end)
end)

describe("echo benchmark scripts", function()
  -- Tiny runs: each runtime's server and client work and print figures.
  -- No timing is asserted.
  local progs = {
    tide = "TIDE=" .. helper.bin,
    node = "NODE=node",
    asyncio = "PYTHON=python3",
  }
  for _, rt in ipairs{"tide", "node", "asyncio"} do
    it("runs the " .. rt .. " pair", function()
      local tool = progs[rt]:match("=(.*)")
      if rt ~= "tide" and helper.sh("command -v " .. tool .. " >/dev/null") ~= 0 then
        return -- the peer is not installed
      end
      local status, out = helper.sh(progs[rt] .. " WARMUP=0.05 " ..
        "scripts/bench/echo/pair.sh " .. rt .. " 3 0.2 64")
      assert.equal(0, status, out)
      assert.is_true(tonumber(out:match("messages_per_s=(%d+)")) > 0, out)
      assert.is_true(tonumber(out:match("messages_total=(%d+)")) > 0, out)
      assert.is_true(tonumber(out:match("cpu_us_per_msg=([%d.]+)")) > 0, out)
    end)
  end
end)
