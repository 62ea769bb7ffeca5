-- The tide command: lua's options, the arg table, exit status, error
-- reports, the exit rules, and tide from a stock lua5.4 host.

local bin = helper.bin

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function run(args, env)
  return helper.sh((env or "") .. " " .. bin .. " " .. args)
end

describe("the tide command", function()
  it("runs a script with arguments in the arg table", function()
    local path = tmpfile("print(arg[0] == ..., select('#', ...), arg[1], arg[2], arg[-1] ~= nil)\n")
    local status, out = run(path .. " a b")
    os.remove(path)
    assert.equal(0, status)
    assert.equal("false\t2\ta\tb\ttrue\n", out)
  end)

  it("passes script arguments as ...", function()
    local path = tmpfile("local a, b = ... print(a, b)\n")
    local _, out = run(path .. " x y")
    os.remove(path)
    assert.equal("x\ty\n", out)
  end)

  it("runs its stdlib the same from bytecode and from source", function()
    -- The stdlib is embedded as bytecode and as source; TIDE_NO_BYTECODE=1
    -- forces the source, as a liblua other than the build's does.  Both
    -- must load every module and keep the real file names and lines.
    local path = tmpfile([[
      for _, m in ipairs{"tide.fs", "tide.net", "tide.http", "tide.sync",
                         "tide.signal"} do
        assert(type(require(m)) == "table", m)
      end
      local info = debug.getinfo(tide.gather, "S")
      print(info.source, info.linedefined, info.lastlinedefined)
      local ok, err = pcall(tide.timeout, 0.01, function() tide.sleep(1) end)
      print(ok, err)
      local _, tb = xpcall(tide.gather, debug.traceback,
                           function() error("boom") end)
      for where in tb:gmatch("stdlib/[%w_]+%.lua:%d+") do print(where) end
    ]])
    local st1, out1 = run(path)
    local st2, out2 = run(path, "TIDE_NO_BYTECODE=1")
    os.remove(path)
    assert.equal(0, st1, out1)
    assert.equal(0, st2, out2)
    assert.matches("^@stdlib/tide%.lua\t%d+\t%d+\n", out1)
    assert.matches("ETIMEDOUT", out1)
    assert.matches("\nstdlib/tide%.lua:%d+\n", out1)
    assert.equal(out1, out2)
  end)

  it("skips a #! first line", function()
    local path = tmpfile("#!/usr/bin/env tide\nprint('ran')\n")
    local status, out = run(path)
    os.remove(path)
    assert.equal(0, status)
    assert.equal("ran\n", out)
  end)

  it("runs -e statements in order, with async calls", function()
    local status, out = run("-e 'tide.sleep(0.01) x = 1' -e 'print(x + 1)'")
    assert.equal(0, status)
    assert.equal("2\n", out)
  end)

  it("loads a library with -l, also as g=mod", function()
    local _, out = run("-l string -e 'print(type(string))'")
    assert.equal("table\n", out)
    local _, out2 = run("-l q=tide -e 'print(q == tide)'")
    assert.equal("true\n", out2)
  end)

  it("prints the version with -v and help with -h", function()
    local status, out = run("-v")
    assert.equal(0, status)
    assert.matches("^tide %d+%.%d+%.%d+ %(Lua 5%.4", out)
    local s2, help = run("-h")
    assert.equal(0, s2)
    assert.matches("usage: ", help)
    assert.matches("%-e stat", help)
    local s3, help2 = run("--help")
    assert.equal(0, s3)
    assert.matches("usage: ", help2)
  end)

  it("rejects unknown options with status 1", function()
    local status, out = run("-z")
    assert.equal(1, status)
    assert.matches("unrecognized option '%-z'", out)
    local s2, out2 = run("-e")
    assert.equal(1, s2)
    assert.matches("'%-e' needs argument", out2)
  end)

  it("reads the script from stdin with -", function()
    local status, out = helper.sh("echo 'tide.sleep(0) print(\"stdin\", ...)' | " .. bin .. " - q")
    assert.equal(0, status)
    assert.equal("stdin\tq\n", out)
  end)

  it("stops handling options after --", function()
    local path = tmpfile("print(...)\n")
    local _, out = run("-- " .. path .. " -e")
    os.remove(path)
    assert.equal("-e\n", out)
  end)

  it("honours LUA_INIT and ignores it with -E", function()
    local _, out = run("-e 'print(INIT)'", "LUA_INIT='INIT=42'")
    assert.equal("42\n", out)
    local _, out2 = run("-E -e 'print(INIT)'", "LUA_INIT='INIT=42'")
    assert.equal("nil\n", out2)
    local path = tmpfile("INIT = 'file'\n")
    local _, out3 = run("-e 'print(INIT)'", "LUA_INIT_5_4=@" .. path)
    os.remove(path)
    assert.equal("file\n", out3)
  end)

  it("turns warnings on with -W", function()
    local _, out = run("-W -e 'warn(\"careful\")'")
    assert.matches("Lua warning: careful", out)
  end)

  it("exits 1 with a traceback on an uncaught error", function()
    local path = tmpfile("local function f() error('boom') end\nf()\n")
    local status, out = run(path)
    os.remove(path)
    assert.equal(1, status)
    assert.matches(": boom", out)
    assert.matches("stack traceback:", out)
    assert.matches("in local 'f'", out)
  end)

  it("prints error objects with their code and traceback", function()
    local status, out = run("-e 'tide.timeout(0.01, tide.sleep, 1)'")
    assert.equal(1, status)
    assert.matches("ETIMEDOUT", out)
    assert.matches("stack traceback:", out)
  end)

  it("reports a failed task nobody awaited and exits 1", function()
    local status, out = run("-e 'tide.spawn(function() error(\"lost\") end) tide.sleep(0.01)'")
    assert.equal(1, status)
    assert.matches("error in task%-%d+ .- was never retrieved", out)
    assert.matches("lost", out)
    assert.matches("stack traceback:", out)
  end)

  it("does not report errors that were retrieved or cancellations", function()
    local status, out = run("-e 'local t = tide.spawn(error, \"x\") pcall(t.await, t)" ..
                            " local c = tide.spawn(tide.sleep, 5) tide.sleep(0) c:cancel()'")
    assert.equal(0, status)
    assert.equal("", out)
  end)

  it("waits for running tasks after the main chunk returns", function()
    local status, out = run("-e 'tide.spawn(function() tide.sleep(0.05) print(\"late\") end)" ..
                            " print(\"main done\")'")
    assert.equal(0, status)
    assert.equal("main done\nlate\n", out)
  end)

  it("fails when the main task waits on nothing that can wake it", function()
    local status, out = run("-e 'tide.future():await()'")
    assert.equal(1, status)
    assert.matches("waiting and nothing is left", out)
  end)

  it("cancels the other tasks when the main task fails", function()
    local status, out = run("-e 'tide.spawn(function() local ok, e = pcall(tide.sleep, 5)" ..
                            " print(\"child\", e.code) end) tide.sleep(0) error(\"main\")'")
    assert.equal(1, status)
    assert.matches("child\tECANCELED", out)
    assert.matches("main", out)
  end)

  it("tide.exit flushes and exits with the code", function()
    local status, out = run("-e 'io.write(\"partial\") tide.exit(3)'")
    assert.equal(3, status)
    assert.equal("partial", out)
    assert.equal(0, (run("-e 'tide.exit(true)'")))
    assert.equal(1, (run("-e 'tide.exit(false)'")))
  end)

  it("runs busted with --lua (this very suite does)", function()
    assert.truthy(arg[0]:match("busted"))
  end)
end)

describe("tide from a stock lua5.4", function()
  local build = os.getenv("TIDE_BUILD") or "build"
  local preload = os.getenv("TIDE_PRELOAD") or ""
  local lua = (preload ~= "" and ("ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=" .. preload .. " ") or "") ..
    "lua5.4 -e 'package.cpath=\"" .. build .. "/?.so;\"..package.cpath' "

  it("require 'tide' and tide.run drive a loop", function()
    local status, out = helper.sh(lua .. "-e 'local tide = require \"tide\"" ..
      " print(tide.run(function(x) local t = tide.spawn(function() tide.sleep(0.01) return 2 end)" ..
      " return x + t:await() end, 40))'")
    assert.equal(0, status)
    assert.equal("42\n", out)
  end)

  it("tide.run raises the task's error and cancels what is left", function()
    local status, out = helper.sh(lua .. "-e 'local tide = require \"tide\"" ..
      " local bg; print(pcall(tide.run, function() bg = tide.spawn(tide.sleep, 10) tide.sleep(0.01) error(\"oops\") end))" ..
      " print(bg.status)'")
    assert.equal(0, status)
    assert.matches("false\t.-oops", out)
    assert.matches("cancelled", out)
  end)

  it("tide.run can be called again", function()
    local status, out = helper.sh(lua .. "-e 'local tide = require \"tide\"" ..
      " print(tide.run(function() tide.sleep(0.001) return 1 end), tide.run(function() return 2 end))'")
    assert.equal(0, status)
    assert.equal("1\t2\n", out)
  end)

  it("async calls outside tide.run raise a clear error", function()
    local status, out = helper.sh(lua .. "-e 'local tide = require \"tide\" tide.sleep(1)'")
    assert.equal(1, status)
    assert.matches("not inside a task", out)
  end)
end)
