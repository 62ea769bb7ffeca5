local fs = require "tide.fs"
local S = require "tests.lua.support.fsproc"

-- Raise-or-return helper: the error object of a failing call.
local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("tide.fs", function()
  local dir

  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.cleanup(dir) end)

  describe("read_file / write_file", function()
    it("writes and reads back", function()
      local p = dir .. "/a.txt"
      assert.is_true(fs.write_file(p, "hello"))
      assert.equal("hello", fs.read_file(p))
      fs.write_file(p, "")
      assert.equal("", fs.read_file(p))
    end)

    it("reads large and binary files whole", function()
      local parts = {}
      for i = 0, 255 do parts[#parts + 1] = string.char(i) end
      local data = table.concat(parts):rep(20000) -- 5 MB
      fs.write_file(dir .. "/big", data)
      assert.equal(data, fs.read_file(dir .. "/big"))
    end)

    it("appends", function()
      local p = dir .. "/log"
      fs.write_file(p, "a\n", {append = true})
      fs.write_file(p, "b\n", {append = true})
      assert.equal("a\nb\n", fs.read_file(p))
    end)

    it("writes atomically, keeping the mode and leaving no temp file",
       function()
      local p = dir .. "/cfg"
      fs.write_file(p, "old")
      assert(os.execute("chmod 640 " .. p))
      fs.write_file(p, "new", {atomic = true})
      assert.equal("new", fs.read_file(p))
      assert.equal(tonumber("640", 8), fs.stat(p).mode)
      assert.same({"cfg"}, fs.list(dir))
      fs.write_file(dir .. "/fresh", "x", {atomic = true})
      assert.equal("x", fs.read_file(dir .. "/fresh"))
    end)

    it("raises ENOENT with the path", function()
      local err = err_of(fs.read_file, dir .. "/missing")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/missing", err.path)
      assert.equal("fs.read_file", err.op)
      assert.matches("ENOENT", tostring(err))
      err = err_of(fs.write_file, dir .. "/no/such/dir", "x")
      assert.equal("ENOENT", err.code)
      err = err_of(fs.write_file, dir .. "/no/such", "x", {atomic = true})
      assert.equal("ENOENT", err.code)
    end)

    it("raises EISDIR for a directory", function()
      assert.equal("EISDIR", err_of(fs.read_file, dir).code)
    end)

    it("checks its arguments", function()
      assert.has_error(function() fs.read_file(nil) end,
                       "bad argument #1 to 'read_file' (string expected, got nil)")
      assert.has_error(function() fs.write_file(dir .. "/x", {}) end)
      assert.has_error(function()
        fs.write_file(dir .. "/x", "y", {append = true, atomic = true})
      end)
    end)

    it("runs many files concurrently", function()
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = function()
          local p = dir .. "/f" .. i
          fs.write_file(p, ("%d"):format(i):rep(100))
          return fs.read_file(p)
        end
      end
      local res = tide.gather(tasks)
      for i = 1, 200 do assert.equal(("%d"):format(i):rep(100), res[i]) end
    end)
  end)

  describe("cancellation", function()
    -- A read of a FIFO blocks its worker in open() until a writer comes.
    local function blocked_reader(path)
      return tide.spawn(fs.read_file, path)
    end

    local function release(path, data)
      local w = assert(io.open(path, "w"))
      if data then w:write(data) end
      w:close()
    end

    it("cancels a read that is already running in the pool", function()
      local fifo = S.mkfifo(dir .. "/fifo")
      local fds = S.nfds()
      local t = blocked_reader(fifo)
      tide.sleep(0.02)
      t:cancel()
      local ok, err = pcall(t.await, t)
      assert.is_false(ok)
      assert.equal("ECANCELED", err.code)
      -- The worker still sits in open(); let it finish: the detached job
      -- frees itself and closes its descriptor.
      release(fifo, "late")
      assert.is_true(S.eventually(function() return S.nfds() == fds end))
      fs.write_file(dir .. "/after", "ok")
      assert.equal("ok", fs.read_file(dir .. "/after"))
    end)

    it("cancels a read still queued behind a busy pool", function()
      local fifos, blockers = {}, {}
      for i = 1, S.pool_size() do
        fifos[i] = S.mkfifo(dir .. "/fifo" .. i)
        blockers[i] = blocked_reader(fifos[i])
      end
      fs.write_file(dir .. "/plain", "data") -- before the pool is full
      tide.sleep(0.02)
      local t = tide.spawn(fs.read_file, dir .. "/plain")
      tide.sleep(0.02)
      assert.equal("waiting", t.status)
      t:cancel()
      assert.equal("ECANCELED", select(2, pcall(t.await, t)).code)
      for i = 1, #fifos do release(fifos[i], "x" .. i) end
      for i = 1, #fifos do assert.equal("x" .. i, blockers[i]:await()) end
      assert.equal("data", fs.read_file(dir .. "/plain"))
    end)

    it("times out a blocked read", function()
      local fifo = S.mkfifo(dir .. "/fifo")
      local ok, err = pcall(tide.timeout, 0.05, fs.read_file, fifo)
      assert.is_false(ok)
      assert.equal("ETIMEDOUT", err.code)
      release(fifo)
    end)

    it("cancels a File read and hands the descriptor to the job",
       function()
      local fifo = S.mkfifo(dir .. "/fifo")
      local fds = S.nfds()
      local opener = tide.spawn(fs.open, fifo, "r")
      tide.sleep(0.02)
      local w = assert(io.open(fifo, "w"))
      local f = opener:await()
      local reader = tide.spawn(f.read, f, "l")
      tide.sleep(0.02)
      reader:cancel()
      assert.equal("ECANCELED", select(2, pcall(reader.await, reader)).code)
      f:close() -- the running job now owns the descriptor
      w:write("unblock\n")
      w:close()
      assert.is_true(S.eventually(function() return S.nfds() == fds end))
    end)

    it("fails a read with ECLOSED when another task closes the File",
       function()
      local fifo = S.mkfifo(dir .. "/fifo")
      local fds = S.nfds()
      local opener = tide.spawn(fs.open, fifo, "r")
      tide.sleep(0.02)
      local w = assert(io.open(fifo, "w"))
      local f = opener:await()
      local reader = tide.spawn(f.read, f, "a")
      tide.sleep(0.02)
      f:close()
      w:write("data")
      w:close()
      local ok, err = pcall(reader.await, reader)
      assert.is_false(ok)
      assert.equal("ECLOSED", err.code)
      assert.equal(fds, S.nfds())
    end)

    it("frees the File at once when a queued read is cancelled",
       function()
      local p = dir .. "/plain"
      fs.write_file(p, "line1\nline2\n")
      local f <close> = fs.open(p)
      local fifos, blockers = {}, {}
      for i = 1, S.pool_size() do
        fifos[i] = S.mkfifo(dir .. "/fifo" .. i)
        blockers[i] = blocked_reader(fifos[i])
      end
      tide.sleep(0.02)
      -- The read never leaves the pool's queue: its job is taken off it.
      local err = err_of(tide.timeout, 0.02, f.read, f, "l")
      local ok, pos = pcall(f.seek, f, "cur")
      -- Unblock the pool before asserting, so a failure cannot hang.
      for i = 1, #fifos do release(fifos[i], "x") end
      for i = 1, #fifos do blockers[i]:await() end
      assert.equal("ETIMEDOUT", err.code)
      assert.is_true(ok, pos)
      assert.equal(0, pos)
      assert.equal("line1", f:read("l"))
    end)
  end)

  describe("File", function()
    it("reads every io format", function()
      local p = dir .. "/f"
      fs.write_file(p, "line1\nline2\n  42 -3.5e1 0x1F nan\nrest\nlast")
      local f <close> = fs.open(p)
      assert.equal("line1", f:read())
      assert.equal("line2\n", f:read("L"))
      local a, b, c = f:read("n", "n", "n")
      assert.equal(42, a)
      assert.equal(-35.0, b)
      assert.equal(31, c)
      assert.is_nil(f:read("n")) -- "nan" is not a numeral: only the blank before it is used
      assert.equal("nan", f:read("l"))
      assert.equal("re", f:read(2))
      assert.equal("", f:read(0))
      assert.equal("st\nlast", f:read("a"))
      assert.equal("", f:read("a"))
      assert.is_nil(f:read("l"))
      assert.is_nil(f:read(1))
      assert.is_nil(f:read(0))
    end)

    it("stops at the first format that fails, like io", function()
      local p = dir .. "/f"
      fs.write_file(p, "x")
      local f <close> = fs.open(p)
      local r = table.pack(f:read("l", "l", "l"))
      assert.equal(2, r.n)
      assert.equal("x", r[1])
      assert.is_nil(r[2])
    end)

    it("reads long lines and large files through the buffer", function()
      local long = ("y"):rep(300000)
      local lines = {}
      for i = 1, 5000 do lines[i] = "line " .. i end
      fs.write_file(dir .. "/f", long .. "\n" .. table.concat(lines, "\n"))
      local f <close> = fs.open(dir .. "/f")
      assert.equal(long, f:read("l"))
      local n = 0
      for l in f:lines() do
        n = n + 1
        assert.equal("line " .. n, l)
      end
      assert.equal(5000, n)
    end)

    it("iterates lines with formats and fs.lines closes the file",
       function()
      fs.write_file(dir .. "/f", "1 2\n3 4\n")
      local f <close> = fs.open(dir .. "/f")
      local sum = 0
      for x in f:lines("n") do sum = sum + x end
      assert.equal(10, sum)
      local fds = S.nfds()
      local got = {}
      for l in fs.lines(dir .. "/f") do got[#got + 1] = l end
      assert.same({"1 2", "3 4"}, got)
      for _ in fs.lines(dir .. "/f") do break end -- <close> on break
      assert.equal(fds, S.nfds())
    end)

    it("writes, seeks and syncs", function()
      local p = dir .. "/w"
      local f = fs.open(p, "w+")
      assert.equal(f, f:write("abc", 12, "def\n"))
      f:write("tail")
      assert.is_true(f:sync())
      assert.equal(0, f:seek("set"))
      assert.equal("abc12def", f:read("l"))
      assert.equal(9, f:seek())
      assert.equal(13, f:seek("end"))
      assert.equal(11, f:seek("end", -2))
      assert.equal("il", f:read("a"))
      assert.equal(2, f:seek("set", 2))
      f:write("X") -- overwrites at the logical position
      f:seek("set", 0)
      assert.equal("abX12def", f:read("l"))
      f:close()
      assert.equal("abX12def\ntail", fs.read_file(p))
    end)

    it("writes after a partial read at the reader's position", function()
      local p = dir .. "/rw"
      fs.write_file(p, "0123456789")
      local f <close> = fs.open(p, "r+")
      assert.equal("012", f:read(3))
      f:write("abc")
      f:seek("set")
      assert.equal("012abc6789", f:read("a"))
    end)

    it("appends in mode a", function()
      local p = dir .. "/ap"
      fs.write_file(p, "one\n")
      local f = fs.open(p, "a")
      f:write("two\n")
      f:close()
      assert.equal("one\ntwo\n", fs.read_file(p))
    end)

    it("closes once, with close, <close> or collection", function()
      local fds = S.nfds()
      do
        local f <close> = fs.open(dir .. "/c", "w")
        f:write("x")
      end
      assert.equal(fds, S.nfds())
      local f = fs.open(dir .. "/c")
      assert.is_true(f:close())
      assert.is_true(f:close())
      assert.equal("File (closed)", tostring(f))
      assert.has_error(function() f:read() end, "attempt to use a closed file")
      fs.open(dir .. "/c")
      collectgarbage()
      collectgarbage()
      assert.equal(fds, S.nfds())
    end)

    it("raises on open and I/O failures", function()
      local err = err_of(fs.open, dir .. "/missing")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/missing", err.path)
      fs.write_file(dir .. "/ex", "")
      assert.equal("EEXIST", err_of(fs.open, dir .. "/ex", "wx").code)
      assert.equal("EISDIR", err_of(fs.open, dir, "w").code)
      local f <close> = fs.open(dir .. "/wo", "w")
      assert.equal("EBADF", err_of(f.read, f).code)
      local r <close> = fs.open(dir .. "/wo", "r")
      assert.equal("EBADF", err_of(r.write, r, "x").code)
      local d <close> = fs.open(dir)
      assert.equal("EISDIR", err_of(d.read, d, "a").code)
      assert.has_error(function() fs.open(dir .. "/x", "rw") end)
      assert.has_error(function() r:read("z") end)
    end)
  end)

  describe("paths", function()
    it("stats files, directories and links", function()
      fs.write_file(dir .. "/f", "12345")
      local st = fs.stat(dir .. "/f")
      assert.equal(5, st.size)
      assert.equal("file", st.type)
      assert.is_number(st.mtime)
      assert.is_true(math.abs(st.mtime - os.time()) < 3600)
      assert.equal("directory", fs.stat(dir).type)
      assert(os.execute("ln -s f " .. dir .. "/l"))
      assert.equal("link", fs.lstat(dir .. "/l").type)
      assert.equal("file", fs.stat(dir .. "/l").type)
      assert.equal("ENOENT", err_of(fs.stat, dir .. "/none").code)
    end)

    it("tells whether a path exists without raising", function()
      assert.is_true(fs.exists(dir))
      assert.is_false(fs.exists(dir .. "/none"))
      assert.is_false(fs.exists(dir .. "/none/deeper"))
    end)

    it("lists sorted names", function()
      for _, n in ipairs {"b", "a", "c"} do fs.write_file(dir .. "/" .. n, "") end
      fs.mkdir(dir .. "/d")
      assert.same({"a", "b", "c", "d"}, fs.list(dir))
      assert.same({}, fs.list(dir .. "/d"))
      assert.equal("ENOENT", err_of(fs.list, dir .. "/none").code)
      assert.equal("ENOTDIR", err_of(fs.list, dir .. "/a").code)
    end)

    it("makes directories, with parents", function()
      fs.mkdir(dir .. "/x")
      assert.equal("directory", fs.stat(dir .. "/x").type)
      assert.equal("EEXIST", err_of(fs.mkdir, dir .. "/x").code)
      assert.equal("ENOENT", err_of(fs.mkdir, dir .. "/p/q").code)
      fs.mkdir(dir .. "/p/q/r", {parents = true})
      fs.mkdir(dir .. "/p/q/r", {parents = true}) -- existing is fine
      fs.mkdir(dir .. "//p2///q/", {parents = true})
      assert.equal("directory", fs.stat(dir .. "/p/q/r").type)
      assert.equal("directory", fs.stat(dir .. "/p2/q").type)
      fs.mkdir(dir .. "/private", {mode = tonumber("700", 8)})
      assert.equal(tonumber("700", 8), fs.stat(dir .. "/private").mode)
      assert.has_error(function() fs.mkdir(dir .. "/m", {mode = "x"}) end,
                       "bad argument #2 to 'mkdir' ('mode' must be an integer)")
      assert.has_error(function() fs.mkdir(dir .. "/m", 5) end)
      fs.write_file(dir .. "/file", "")
      assert.equal("EEXIST", err_of(fs.mkdir, dir .. "/file",
                                    {parents = true}).code)
      assert.equal("ENOTDIR", err_of(fs.mkdir, dir .. "/file/sub",
                                     {parents = true}).code)
    end)

    it("removes files and trees without following links out", function()
      local outside = S.tmpdir()
      fs.write_file(outside .. "/keep", "precious")
      fs.mkdir(dir .. "/t/a/b", {parents = true})
      fs.write_file(dir .. "/t/a/b/f", "x")
      fs.write_file(dir .. "/t/g", "y")
      assert(os.execute("ln -s " .. outside .. " " .. dir .. "/t/a/link"))
      assert(os.execute("ln -s " .. outside .. "/keep " .. dir .. "/t/flink"))
      assert.equal("ENOTEMPTY", err_of(fs.remove, dir .. "/t").code)
      fs.remove(dir .. "/t", {recursive = true})
      assert.is_false(fs.exists(dir .. "/t"))
      assert.equal("precious", fs.read_file(outside .. "/keep"))
      fs.write_file(dir .. "/single", "")
      fs.remove(dir .. "/single")
      assert.is_false(fs.exists(dir .. "/single"))
      assert.equal("ENOENT", err_of(fs.remove, dir .. "/single").code)
      -- A link to a directory is removed as a link.
      assert(os.execute("ln -s " .. outside .. " " .. dir .. "/dl"))
      fs.remove(dir .. "/dl", {recursive = true})
      assert.is_true(fs.exists(outside .. "/keep"))
      S.cleanup(outside)
    end)

    it("renames and copies", function()
      fs.write_file(dir .. "/a", "content")
      assert(os.execute("chmod 750 " .. dir .. "/a"))
      fs.copy(dir .. "/a", dir .. "/b")
      assert.equal("content", fs.read_file(dir .. "/b"))
      assert.equal(tonumber("750", 8), fs.stat(dir .. "/b").mode)
      fs.rename(dir .. "/b", dir .. "/c")
      assert.same({"a", "c"}, fs.list(dir))
      local big = ("z"):rep(3 * 1024 * 1024)
      fs.write_file(dir .. "/big", big)
      fs.copy(dir .. "/big", dir .. "/big2")
      assert.equal(big, fs.read_file(dir .. "/big2"))
      assert.equal("ENOENT", err_of(fs.rename, dir .. "/none", dir .. "/x").code)
      local err = err_of(fs.copy, dir .. "/none", dir .. "/x")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/none", err.path)
      err = err_of(fs.copy, dir .. "/a", dir .. "/no/dir")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/no/dir", err.path)
    end)

    it("makes unique temporary directories", function()
      local a = fs.mkdtemp(dir .. "/t-")
      local b = fs.mkdtemp(dir .. "/t-")
      assert.are_not.equal(a, b)
      assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/t%-", a)
      assert.equal("directory", fs.stat(a).type)
      assert.equal("ENOENT", err_of(fs.mkdtemp, dir .. "/none/t-").code)
      local d = fs.mkdtemp()
      assert.is_true(fs.exists(d))
      fs.remove(d)
    end)
  end)

  describe("watch", function()
    it("yields change events and closes when the loop is left",
       function()
      local got
      tide.spawn(function()
        tide.sleep(0.02)
        fs.write_file(dir .. "/new", "x")
      end)
      for ev in fs.watch(dir) do
        if ev.name == "new" then
          got = ev
          break
        end
      end
      assert.equal("new", got.name)
      assert.is_true(got.event == "rename" or got.event == "change")
      assert.equal(dir, got.path)
    end)

    it("can be cancelled while waiting, then closed", function()
      local w = fs.watch(dir)
      local t = tide.spawn(w.next, w)
      tide.sleep(0.01)
      t:cancel()
      assert.equal("ECANCELED", select(2, pcall(t.await, t)).code)
      fs.write_file(dir .. "/f", "")
      local ev = w:next() -- the event was kept for the next reader
      assert.equal("f", ev.name)
      w:close()
      assert.is_nil(w:next())
    end)

    it("wakes a waiting reader with nil on close", function()
      local w = fs.watch(dir)
      local t = tide.spawn(w.next, w)
      tide.sleep(0.01)
      w:close()
      assert.is_nil(t:await())
    end)

    it("times out and raises for a missing path", function()
      local w <close> = fs.watch(dir)
      assert.equal("ETIMEDOUT",
                   select(2, pcall(tide.timeout, 0.02, w.next, w)).code)
      local err = err_of(fs.watch, dir .. "/none")
      assert.equal("ENOENT", err.code)
    end)
  end)

  describe("the fs benchmark's workloads", function()
    local bench = helper.root .. "/scripts/bench/fs/"
    local function check(cmd)
      local status, out = helper.sh(cmd .. " 20 1 " .. dir)
      assert.equal(0, status, out)
      assert.matches("files_per_s=%d", out)
      assert.matches("round_ms=%d", out)
      assert.same({}, fs.list(dir)) -- each cleans up after itself
    end

    it("run under tide and its peers", function()
      check(helper.bin .. " " .. bench .. "tide.lua")
      local peers = {
        {"lua5.4", "blocking.lua"}, {"node", "node.js"},
        {"python3", "asyncio.py"},
      }
      for _, p in ipairs(peers) do
        if helper.sh("command -v " .. p[1]) == 0 then
          check(p[1] .. " " .. bench .. p[2])
        end
      end
    end)
  end)

  describe("the files example", function()
    it("runs", function()
      local status, out = helper.sh(helper.bin .. " " .. helper.root
                                    .. "/scripts/examples/files.lua")
      assert.equal(0, status, out)
      assert.matches("read back 3 lines", out)
    end)
  end)

  it("runs the examples of docs/fs.md", function()
    assert.is_true(S.check_doc("fs.md") > 0)
  end)
end)
