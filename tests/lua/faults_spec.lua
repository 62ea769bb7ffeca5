-- Limits and faults: running out of memory (a Lua allocator limit set with
-- TIDE_MEMORY_LIMIT), out of file descriptors (a low `ulimit -n`), a full
-- disk (a small tmpfs) and peers that reset connections mid-request.  Each
-- must give an error in the task that hit it, never a crash of the
-- runtime, and the runtime must keep working afterwards.  The scenarios run
-- in child tide processes, so a crash shows up as a signal in the exit
-- status instead of taking the test runner down.
local F = require "tests.lua.support.faults"
local PEER = helper.root .. "/tests/lua/support/peer.py"

describe("out of memory (TIDE_MEMORY_LIMIT)", function()
  it("fails the task that allocates, and the runtime carries on", function()
    local status, out = F.run([[
      local hog = tide.spawn(function()
        local t = {}
        for i = 1, 1e8 do t[i] = ("x"):rep(64) .. i end
      end)
      local ok, err = pcall(tide.await, hog)
      print("hog", ok, err, hog.status)
      -- The memory came back; ordinary work goes on.
      local list = {}
      for i = 1, 200 do
        list[i] = tide.spawn(function() tide.sleep(0.001) return i end)
      end
      local sum = 0
      for i = 1, 200 do sum = sum + list[i]:await() end
      print("sum", sum)
      local s = tide._stats()
      print("left", s.tasks, s.timers, s.handles)
    ]], {TIDE_MEMORY_LIMIT = "16M"})
    assert.equal(0, status, out)
    assert.matches("hog\tfalse\tnot enough memory\tfailed", out, 1, true)
    assert.matches("sum\t20100", out, 1, true)
    assert.matches("left\t1\t0\t0", out, 1, true)
  end)

  it("reports an uncaught out-of-memory error in the main task", function()
    local status, out = F.run([[
      local s = ("y"):rep(1024)
      while true do s = s .. s end
    ]], {TIDE_MEMORY_LIMIT = "8M"})
    assert.equal(1, status, out)
    assert.matches("not enough memory", out, 1, true)
  end)

  it("survives running out of memory while spawning tasks", function()
    local status, out = F.run([[
      local tasks = {}
      local ok, err = pcall(function()
        while true do
          tasks[#tasks + 1] = tide.spawn(tide.sleep, 0.01)
        end
      end)
      print("spawn", ok, err, #tasks > 1000)
      -- Those tasks never ran; cancelled now, they never will.
      for _, t in ipairs(tasks) do t:cancel() end
      tasks = nil
      tide.sleep(0)
      collectgarbage()
      local t = tide.spawn(function() return "still here" end)
      print(t:await())
      print("left", tide._stats().tasks, tide._stats().timers)
    ]], {TIDE_MEMORY_LIMIT = "8M"})
    assert.equal(0, status, out)
    assert.matches("spawn\tfalse\tnot enough memory\ttrue", out, 1, true)
    assert.matches("still here", out, 1, true)
    assert.matches("left\t1\t0", out, 1, true)
  end)

  it("fails only the tasks that hit the limit when many allocate", function()
    -- Ten tasks each want to hold 4 MiB at once under a 24 MiB limit: the
    -- first ones get their memory, the later ones fail, and the runtime
    -- comes out of it with nothing left behind.
    local status, out = F.run([[
      local list = {}
      for i = 1, 10 do
        list[i] = tide.spawn(function()
          local big = ("z"):rep(4 * 1024 * 1024)
          tide.sleep(0.01)
          return #big
        end)
      end
      local ok_n, oom_n = 0, 0
      for i = 1, 10 do
        local ok, r = pcall(tide.await, list[i])
        if ok then ok_n = ok_n + 1
        elseif r == "not enough memory" then oom_n = oom_n + 1
        else error(r) end
      end
      print("ok", ok_n, "oom", oom_n)
      local s = tide._stats()
      print("left", s.tasks, s.timers)
    ]], {TIDE_MEMORY_LIMIT = "24M"})
    assert.equal(0, status, out)
    local ok_n, oom_n = out:match("ok\t(%d+)\toom\t(%d+)")
    assert.is_truthy(ok_n, out)
    assert.is_true(tonumber(ok_n) > 0 and tonumber(oom_n) > 0, out)
    assert.matches("left\t1\t0", out, 1, true)
  end)
end)

describe("out of file descriptors (ulimit -n)", function()
  it("fails the opens that hit the limit; closing makes room", function()
    local status, out = F.run([[
      local fs = require "tide.fs"
      local files = {}
      local ok, err = pcall(function()
        for i = 1, 200 do files[i] = fs.open("/dev/null", "r") end
      end)
      print("fs", ok, err and err.code, #files > 10)
      for _, f in ipairs(files) do f:close() end
      local f <close> = fs.open("/dev/null", "r")
      print("reopened", f:read("a") == "")
    ]], nil, {ulimit_n = 64})
    assert.equal(0, status, out)
    assert.matches("fs\tfalse\tEMFILE\ttrue", out, 1, true)
    assert.matches("reopened\ttrue", out, 1, true)
  end)

  it("fails connects and accepts, and the server accepts again", function()
    local status, out = F.run([[
      local net = require "tide.net"
      local served = 0
      local srv = net.listen{host = "127.0.0.1", port = 0,
        handler = function(c)
          local line = c:read_line()
          if line then c:write(line .. "\n") end
          served = served + 1
        end}
      -- Each connection costs two descriptors here (both ends are in this
      -- process), so the connects run out first or the accepts do.
      local conns = {}
      local ok, err = pcall(function()
        for i = 1, 200 do conns[i] = net.connect("127.0.0.1", srv.port) end
      end)
      print("connect", ok, err and err.code)
      tide.sleep(0.1)
      for _, c in ipairs(conns) do c:close() end
      conns = nil
      -- Room again: the same server serves a new connection.
      tide.sleep(0.1)
      local c <close> = net.connect("127.0.0.1", srv.port)
      c:write("again\n")
      print("echo", tide.timeout(5, c.read_line, c))
      c:close()
      srv:close()
      srv:wait()
      local s = tide._stats()
      print("left", s.tasks, s.handles)
    ]], nil, {ulimit_n = 64})
    assert.equal(0, status, out)
    assert.matches("connect\tfalse\tEMFILE", out, 1, true)
    assert.matches("echo\tagain", out, 1, true)
    assert.matches("left\t1\t0", out, 1, true)
  end)

  it("lets a server out of descriptors accept again later", function()
    -- A connection that arrives while the server has no descriptor left
    -- cannot be accepted: libuv accepts it on a spare descriptor and closes
    -- it at once, so the client learns the server is overloaded instead
    -- of hanging in the backlog.  Once descriptors are free again, the
    -- same server serves the next client.
    local status, out = F.run([[
      local fs = require "tide.fs"
      local net = require "tide.net"
      local process = require "tide.process"
      local srv = net.listen{host = "127.0.0.1", port = 0,
        handler = function(c)
          local line = c:read_line()
          if line then c:write(line .. "\n") end
        end}
      local function client()
        return process.spawn("python3", {"]] .. PEER .. [[", "ping",
          tostring(srv.port)}, {stdout = "pipe"})
      end
      -- The client starts first: its pipes need descriptors too.
      local p1 <close> = client()
      local files = {}
      pcall(function()
        for i = 1, 200 do files[i] = fs.open("/dev/null", "r") end
      end)
      print("first", tide.timeout(10, p1.stdout.read_line, p1.stdout))
      tide.sleep(0.2) -- the server tries to accept with no descriptor
      for _, f in ipairs(files) do f:close() end
      print("first", tide.timeout(10, p1.stdout.read_line, p1.stdout))
      p1:wait()
      local p2 <close> = client()
      print("second", tide.timeout(10, p2.stdout.read_line, p2.stdout))
      print("second", tide.timeout(10, p2.stdout.read_line, p2.stdout))
      p2:wait()
      srv:close()
      srv:wait()
    ]], nil, {ulimit_n = 64})
    assert.equal(0, status, out)
    assert.matches("first\tconnected", out, 1, true)
    assert.is_truthy(out:find("first\tdropped", 1, true)
                     or out:find("first\tping", 1, true), out)
    assert.matches("second\tping", out, 1, true)
  end)

  it("fails a process spawn that cannot get its pipes", function()
    local status, out = F.run([[
      local fs = require "tide.fs"
      local process = require "tide.process"
      local files = {}
      pcall(function()
        for i = 1, 200 do files[i] = fs.open("/dev/null", "r") end
      end)
      local ok, err = pcall(process.run, "true")
      print("spawn", ok, err and err.code)
      for _, f in ipairs(files) do f:close() end
      print("after", process.run("sh", {"-c", "exit 7"}).code)
    ]], nil, {ulimit_n = 64})
    assert.equal(0, status, out)
    assert.matches("spawn\tfalse\tEMFILE", out, 1, true)
    assert.matches("after\t7", out, 1, true)
  end)
end)

describe("a full disk", function()
  local fs = require "tide.fs"

  it("gives ENOSPC from fs.write_file (/dev/full)", function()
    local ok, err = pcall(fs.write_file, "/dev/full", ("x"):rep(65536))
    assert.is_false(ok)
    assert.equal("ENOSPC", err.code)
    -- And from a File's write.
    local f <close> = fs.open("/dev/full", "w")
    ok, err = pcall(function()
      f:write(("y"):rep(65536))
      f:sync()
    end)
    assert.is_false(ok)
    assert.equal("ENOSPC", err.code)
  end)

  describe("on a 1 MiB tmpfs", function()
    local dir
    local mounted = false

    setup(function()
      dir = fs.mkdtemp()
      mounted = os.execute("mount -t tmpfs -o size=1m tide-faults " .. dir
                           .. " 2>/dev/null")
    end)

    teardown(function()
      if mounted then os.execute("umount " .. dir) end
      fs.remove(dir, {recursive = true})
    end)

    local function need_mount()
      if not mounted then
        pending("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        return false
      end
      return true
    end

    it("gives ENOSPC when the data does not fit", function()
      if not need_mount() then return end
      local ok, err = pcall(fs.write_file, dir .. "/big", ("z"):rep(2 << 20))
      assert.is_false(ok)
      assert.equal("ENOSPC", err.code)
      fs.remove(dir .. "/big")
    end)

    it("leaves the old file intact when an atomic write fails", function()
      if not need_mount() then return end
      local old = ("old\n"):rep(1000)
      fs.write_file(dir .. "/keep", old)
      local ok, err = pcall(fs.write_file, dir .. "/keep",
                            ("new\n"):rep(300000), {atomic = true})
      assert.is_false(ok)
      assert.equal("ENOSPC", err.code)
      assert.equal(old, fs.read_file(dir .. "/keep"))
      -- No temporary file stays behind to eat the space...
      assert.same({"keep"}, fs.list(dir))
      -- ...so a write that fits still works.
      fs.write_file(dir .. "/keep", "fits", {atomic = true})
      assert.equal("fits", fs.read_file(dir .. "/keep"))
    end)
  end)
end)

describe("a peer resetting connections mid-request", function()
  local net = require "tide.net"
  local process = require "tide.process"
  local reset = PEER

  it("gives the server's handler ECONNRESET; the server goes on", function()
    local errors, lines = {}, {}
    local srv = net.listen{host = "127.0.0.1", port = 0, handler = function(c)
      local ok, err = pcall(function()
        while true do
          local line = c:read_line()
          if not line then return end
          lines[#lines + 1] = line
          c:write(line .. "\n")
        end
      end)
      if not ok then errors[#errors + 1] = err.code end
    end}
    -- The peer sends half a request, then resets (SO_LINGER 0).
    local res = process.run("python3", {reset, "client", tostring(srv.port)},
                            {timeout = 10})
    assert.equal(0, res.code, res.stderr)
    for _ = 1, 100 do
      if #errors > 0 then break end
      tide.sleep(0.01)
    end
    assert.same({"ECONNRESET"}, errors)
    -- A well-behaved client is still served.
    local c <close> = net.connect("127.0.0.1", srv.port)
    c:write("hello\n")
    assert.equal("hello", tide.timeout(5, c.read_line, c))
    c:close()
    srv:close()
    srv:wait()
    assert.equal(0, tide._stats().handles)
  end)

  it("gives a client ECONNRESET when the server resets", function()
    local p <close> = process.spawn("python3", {reset, "server"},
                                    {stdout = "pipe"})
    local port = tonumber(tide.timeout(10, p.stdout.read_line, p.stdout))
    local c <close> = net.connect("127.0.0.1", port)
    c:write("GET / HTTP/1.1\r\n")
    local ok, err = pcall(function()
      tide.timeout(10, function()
        while c:read() do end
        error("the reset arrived as a clean end of stream")
      end)
    end)
    assert.is_false(ok)
    assert.equal("ECONNRESET", err.code)
    p:wait()
    c:close()
    assert.equal(0, tide._stats().handles)
  end)
end)
