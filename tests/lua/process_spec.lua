local process = require "tide.process"
local fs = require "tide.fs"
local S = require "tests.lua.support.fsproc"

local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- A shell command that records its pid in `file`, then runs `rest`.
local function pid_sh(file, rest)
  return {"-c", "echo $$ > " .. file .. "; " .. rest}
end

local function read_pid(file)
  assert.is_true(S.eventually(function()
    return fs.exists(file) and fs.read_file(file):match("%d+") ~= nil
  end))
  return tonumber(fs.read_file(file):match("%d+"))
end

describe("tide.process", function()
  local dir

  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.cleanup(dir) end)

  describe("run", function()
    it("captures the exit code, stdout and stderr", function()
      local r = process.run("sh", {"-c", "echo out; echo err >&2; exit 3"})
      assert.equal(3, r.code)
      assert.is_nil(r.signal)
      assert.equal("out\n", r.stdout)
      assert.equal("err\n", r.stderr)
      r = process.run("true")
      assert.equal(0, r.code)
      assert.equal("", r.stdout)
    end)

    it("reports the signal that ended the child", function()
      local r = process.run("sh", {"-c", "kill -KILL $$"})
      assert.is_nil(r.code)
      assert.equal("KILL", r.signal)
    end)

    it("feeds input", function()
      local r = process.run("tr", {"a-z", "A-Z"}, {input = "hello"})
      assert.equal("HELLO", r.stdout)
      -- A child that never reads its input still finishes.
      r = process.run("true", nil, {input = ("x"):rep(1 << 20)})
      assert.equal(0, r.code)
    end)

    it("does not deadlock on large outputs on both pipes", function()
      local r = process.run("sh", {"-c", "head -c 3000000 /dev/zero; " ..
                                   "head -c 2000000 /dev/zero >&2; " ..
                                   "head -c 1000000 /dev/zero"})
      assert.equal(4000000, #r.stdout)
      assert.equal(2000000, #r.stderr)
      local big = ("0123456789abcdef\n"):rep(200000)
      r = process.run("cat", nil, {input = big})
      assert.equal(big, r.stdout)
    end)

    it("passes env (merged), clear_env and cwd", function()
      local r = process.run("sh", {"-c", "echo $FOO:$HOME:$(pwd)"},
                            {env = {FOO = "bar"}, cwd = dir})
      local home = os.getenv("HOME") or ""
      assert.equal("bar:" .. home .. ":" .. dir .. "\n", r.stdout)
      r = process.run("/usr/bin/env", nil,
                      {env = {ONLY = "1"}, clear_env = true})
      assert.equal("ONLY=1\n", r.stdout)
      r = process.run("sh", {"-c", "echo ${HOME-unset}"},
                      {env = {HOME = false}})
      assert.equal("unset\n", r.stdout)
    end)

    it("raises spawn errors with the command", function()
      local err = err_of(process.run, dir .. "/no-such-program")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/no-such-program", err.path)
      assert.equal("ENOENT", err_of(process.run, "true", nil,
                                    {cwd = dir .. "/none"}).code)
    end)

    it("checks its arguments", function()
      assert.has_error(function() process.run() end)
      assert.has_error(function() process.run("true", "x") end)
      assert.has_error(function() process.run("true", {1, {}}) end)
      assert.has_error(function() process.run("true", nil, {timeout = "x"}) end)
      assert.has_error(function() process.run("true", nil, {env = 5}) end)
    end)

    it("kills and reaps the child on timeout, then raises ETIMEDOUT",
       function()
      local f = dir .. "/pid"
      local err = err_of(process.run, "sh", pid_sh(f, "exec sleep 30"),
                         {timeout = 0.05})
      assert.equal("ETIMEDOUT", err.code)
      assert.is_false(S.alive(read_pid(f))) -- gone, not even a zombie
    end)

    it("escalates to SIGKILL after the grace period", function()
      local f = dir .. "/pid"
      local err = err_of(process.run, "sh",
                         pid_sh(f, "trap '' TERM; exec sleep 30"),
                         {timeout = 0.05, grace = 0.1})
      assert.equal("ETIMEDOUT", err.code)
      assert.is_false(S.alive(read_pid(f)))
    end)

    it("kills and reaps the child when the task is cancelled", function()
      local f = dir .. "/pid"
      local t = tide.spawn(process.run, "sh", pid_sh(f, "exec sleep 30"))
      local pid = read_pid(f)
      assert.is_true(S.alive(pid))
      t:cancel()
      assert.equal("ECANCELED", select(2, pcall(t.await, t)).code)
      assert.is_true(S.eventually(function() return not S.alive(pid) end))
    end)

    it("stops waiting for output a grandchild holds when cancelled",
       function()
      local f = dir .. "/pid"
      -- sh exits at once; its background sleep keeps stdout open.
      local t = tide.spawn(process.run, "sh",
                           {"-c", "sleep 30 & echo $! > " .. f})
      local pid = read_pid(f)
      tide.sleep(0.05)
      assert.equal("waiting", t.status)
      t:cancel()
      assert.equal("ECANCELED", select(2, pcall(t.await, t)).code)
      process.kill(pid, "KILL")
      assert.equal(0, process.run("true").code)
    end)

    it("kills the child when a tide.timeout deadline passes", function()
      local f = dir .. "/pid"
      local err = err_of(tide.timeout, 0.1, process.run, "sh",
                         pid_sh(f, "exec sleep 30"))
      assert.equal("ETIMEDOUT", err.code)
      local pid = read_pid(f)
      assert.is_true(S.eventually(function() return not S.alive(pid) end))
    end)

    it("runs many children concurrently", function()
      local fns = {}
      for i = 1, 20 do
        fns[i] = function()
          return process.run("sh", {"-c", "echo " .. i}).stdout
        end
      end
      local out = tide.gather(fns)
      for i = 1, 20 do assert.equal(i .. "\n", out[i]) end
    end)
  end)

  describe("spawn", function()
    it("talks to the child through streams", function()
      local p = process.spawn("cat")
      assert.is_number(p.pid)
      assert.matches("^Process %d+ %(cat%) running$", tostring(p))
      p.stdin:write("hello\nworld\n")
      assert.equal("hello", p.stdout:read_line())
      p.stdin:close()
      assert.equal("world", p.stdout:read_line())
      assert.is_nil(p.stdout:read_line())
      local code, sig = p:wait()
      assert.equal(0, code)
      assert.is_nil(sig)
      assert.equal(0, p.code)
      assert.equal(0, p:wait()) -- again, at once
    end)

    it("reads stderr and honours inherit and null", function()
      local p = process.spawn("sh", {"-c", "echo e >&2; echo o"},
                              {stdin = "null"})
      assert.is_nil(p.stdin)
      assert.equal("e", p.stderr:read_line())
      assert.equal("o", p.stdout:read_line())
      p:wait()
      local q = process.spawn("true", nil, {stdout = "inherit",
                                             stderr = "null"})
      assert.is_nil(q.stdout)
      assert.is_nil(q.stderr)
      assert.equal(0, q:wait())
      assert.has_error(function()
        process.spawn("true", nil, {stdout = "file"})
      end)
    end)

    it("kills with a signal", function()
      local p = process.spawn("sleep", {"30"})
      assert.is_true(p:kill("KILL"))
      local code, sig = p:wait()
      assert.is_nil(code)
      assert.equal("KILL", sig)
      assert.equal("ESRCH", err_of(p.kill, p).code)
      assert.has_error(function() p:kill("NOPE") end)
    end)

    it("kills and reaps the child when a waiting task is cancelled",
       function()
      local p = process.spawn("sleep", {"30"})
      local w = tide.spawn(p.wait, p)
      tide.sleep(0.02)
      w:cancel()
      assert.equal("ECANCELED", select(2, pcall(w.await, w)).code)
      assert.equal("TERM", select(2, p:wait()))
      assert.is_false(S.alive(p.pid))
    end)

    it("terminates the child on <close>", function()
      local pid
      do
        local p <close> = process.spawn("sleep", {"30"}, {grace = 0.1})
        pid = p.pid
      end
      assert.is_true(S.eventually(function() return not S.alive(pid) end))
    end)

    it("raises spawn errors", function()
      local err = err_of(process.spawn, dir .. "/none")
      assert.equal("ENOENT", err.code)
      assert.equal(dir .. "/none", err.path)
      -- Nothing was left half open: a later spawn works.
      assert.equal(0, process.spawn("true"):wait())
    end)

    it("times out a wait", function()
      local p = process.spawn("sleep", {"30"})
      assert.equal("ETIMEDOUT",
                   err_of(tide.timeout, 0.05, p.wait, p).code)
      assert.equal("TERM", select(2, p:wait()))
    end)
  end)

  it("closes the handles of running children when the runtime closes",
     function()
    -- The main task fails while a spawned child and a process.run run:
    -- the runtime closes their handles on the way out (under ASan a leak
    -- would change the exit status).
    local f = dir .. "/pid"
    local status, out = helper.tide(([[
      local process = require "tide.process"
      local p = process.spawn("sleep", {"30"})
      io.open(%q, "w"):write(p.pid):close()
      tide.spawn(process.run, "sleep", {"30"})
      tide.sleep(0.01)
      error("boom")
    ]]):format(f))
    assert.equal(1, status, out)
    assert.matches("boom", out)
    assert.not_matches("LeakSanitizer", out)
    process.kill(tonumber(fs.read_file(f)), "KILL")
  end)

  it("survives use of a Process from a later finalizer", function()
    -- Finalizers run in reverse order of creation: p's __gc runs first,
    -- then the holder's, which still reaches p (close must stay
    -- idempotent, and the rest raise instead of crashing).
    local status, out = helper.tide([[
      io.stdout:setvbuf("no")
      local process = require "tide.process"
      local p
      local holder = setmetatable({}, {__gc = function()
        p:close()
        print("kill", pcall(p.kill, p))
        print("wait", pcall(p.wait, p))
        print("pid", pcall(function() return p.pid end))
        print("tostring", pcall(tostring, p))
      end})
      p = process.spawn("true")
      print("exit", p:wait())
    ]])
    assert.equal(0, status, out)
    assert.matches("^exit\t0", out)
    assert.matches("kill\tfalse\t[^\n]*finalized Process", out)
    assert.matches("wait\tfalse\t[^\n]*finalized Process", out)
    assert.matches("\npid\tfalse\t[^\n]*finalized Process", out)
    assert.matches("tostring\ttrue\tProcess %(finalized%)", out)
  end)

  it("knows its own pid and kills others", function()
    assert.is_number(process.pid())
    local p = process.spawn("sleep", {"30"})
    assert.is_true(process.kill(p.pid, "TERM"))
    assert.equal("TERM", select(2, p:wait()))
    assert.equal("ESRCH", err_of(process.kill, p.pid, 0).code)
  end)

  it("runs the examples of docs/process.md", function()
    assert.is_true(S.check_doc("process.md") > 0)
  end)
end)
