-- The REPL without a terminal: `tide -i` fed through a pipe reads
-- statements line by line, prints no prompt or escape code, and runs each
-- chunk as a task.
local bin = helper.bin

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text or "")
  f:close()
  return path
end

-- Feed `input` to `tide -i [args]` through a pipe; returns the exit
-- status, stdout (without the version banner) and stderr.
local function repl(input, args, how)
  local inp, out, err = tmpfile(input), os.tmpname(), os.tmpname()
  local run = ("TIDE_HISTORY= LUA_INIT= %s -i %s"):format(q(bin), args or "")
  local cmd
  if how == "file" then
    cmd = ("%s < %s > %s 2> %s"):format(run, q(inp), q(out), q(err))
  else
    cmd = ("cat %s | %s > %s 2> %s"):format(q(inp), run, q(out), q(err))
  end
  local ok, _, code = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(inp)
  os.remove(out)
  os.remove(err)
  o = o:gsub("^tide [^\n]*\n", "")
  return ok and 0 or code, o, e
end

-- Start the REPL in the background on `input`, wait until stdout shows
-- `marker`, send SIGINT, and return status, stdout, stderr.
local function interrupt(input, marker)
  local inp, out, err = tmpfile(input), os.tmpname(), os.tmpname()
  local script = ([[
cat %s | TIDE_HISTORY= %s -i > %s 2> %s &
pid=$!
i=0
until grep -q %s %s; do
  i=$((i + 1)); [ $i -gt 400 ] && break
  sleep 0.025
done
kill -INT $pid
wait $pid
]]):format(q(inp), q(bin), q(out), q(err), q(marker), q(out))
  local ok, _, code = os.execute(script)
  local o, e = slurp(out), slurp(err)
  os.remove(inp)
  os.remove(out)
  os.remove(err)
  return ok and 0 or code, o:gsub("^tide [^\n]*\n", ""), e
end

describe("the REPL through a pipe", function()
  it("prints expressions without return, and no prompt", function()
    local st, out, err = repl("1 + 1\n'a' .. 'b'\n1, nil, 'x'\n")
    assert.equal(0, st)
    assert.equal('2\n"ab"\n1\tnil\t"x"\n', out)
    assert.equal("", err)
  end)

  it("runs statements, which print nothing of their own", function()
    local st, out = repl("x = 5\nprint(x * 2)\nlocal y = 1\n")
    assert.equal(0, st)
    assert.equal("10\n", out)
  end)

  it("pretty-prints tables", function()
    local _, out = repl("{1, 2, {a = 'x'}, n = 3}\n" ..
                        "local t = {} t.self = t return t\n")
    assert.equal('{1, 2, {a = "x"}, n = 3}\n<1>{self = <cycle 1>}\n', out)
  end)

  it("reads a chunk over several lines until it is complete", function()
    local _, out, err = repl("for i = 1, 3 do\n  print(i)\nend\n" ..
                             "function f(a)\n  return a * 2\nend\nf(21)\n")
    assert.equal("1\n2\n3\n42\n", out)
    assert.equal("", err)
  end)

  it("reports a syntax error and goes on", function()
    local st, out, err = repl("x = = 1\nprint('next')\n")
    assert.equal(0, st)
    assert.equal("next\n", out)
    assert.truthy(err:find("stdin:1: unexpected symbol near '='", 1, true))
  end)

  it("reports a chunk the input ends in", function()
    local st, out, err = repl("print('a')\nfor i = 1, 2 do\n")
    assert.equal(0, st)
    assert.equal("a\n", out)
    assert.truthy(err:find("'end' expected", 1, true))
  end)

  it("reports runtime errors with a traceback and goes on", function()
    local st, out, err = repl("error('boom')\nlocal t = nil; t.x = 1\n" ..
                              "error(tide.error('ENOENT', 'gone'))\n" ..
                              "print('alive')\n")
    assert.equal(0, st)
    assert.equal("alive\n", out)
    assert.truthy(err:find("stdin:1: boom\nstack traceback:", 1, true))
    assert.truthy(err:find("attempt to index a nil value", 1, true))
    assert.truthy(err:find("ENOENT: gone", 1, true))
    -- the REPL's own frames are left out
    assert.falsy(err:find("repl.lua", 1, true))
  end)

  it("runs each chunk as its own task, where async calls work", function()
    local _, out = repl("tide.current().name\n" ..
                        "tide.sleep(0.01) return 'slept'\n" ..
                        "tide.current().id\n" ..
                        "tide.current().id\n")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal('"repl"', lines[1])
    assert.equal('"slept"', lines[2])
    -- a new task for every chunk
    assert.are_not.equal(lines[3], lines[4])
  end)

  it("keeps spawned tasks running between chunks", function()
    local _, out = repl(
      "n = 0\n" ..
      "t = tide.spawn(function() for i = 1, 3 do tide.sleep(0.01) " ..
      "n = n + 1 end return 'done' end)\n" ..
      "t.status\n" ..
      "t:await()\n" ..
      "n\n" ..
      "t\n")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal('"waiting"', lines[1])
    assert.equal('"done"', lines[2])
    assert.equal("3", lines[3])
    assert.truthy(lines[4]:find("^<Task %d+ %(task%-%d+%) done>$"))
  end)

  it("shows output of background tasks", function()
    local _, out = repl(
      "tide.spawn(function() tide.sleep(0.01) print('from the task') end)\n" ..
      "tide.sleep(0.05)\n")
    assert.truthy(out:find("from the task\n", 1, true))
  end)

  it("routes io.write and file writes to stdout and stderr", function()
    local _, out, err = repl("do io.write('a', 1, '\\n') end\n" ..
                             "do io.stdout:write('b\\n') end\n" ..
                             "do io.stderr:write('c\\n') end\n" ..
                             "io.write({})\n")
    assert.equal("a1\nb\n", out)
    assert.truthy(err:find("^c\n"))
    assert.truthy(err:find("bad argument #1 to 'write' (string expected, " ..
                           "got table)", 1, true))
  end)

  it("cancels the tasks still running at the end of input", function()
    local st, out, err = repl(
      "tide.spawn(function() local ok, e = pcall(tide.sleep, 100) " ..
      "print('cleanup', e.code) end)\n" ..
      "tide.spawn(function() tide.sleep(100) end)\n")
    assert.equal(0, st)
    assert.truthy(out:find("cleanup\tECANCELED", 1, true))
    assert.equal("", err)
  end)

  it("ends even when a task refuses to be cancelled", function()
    local st, out = repl(
      "tide.spawn(function() while true do pcall(tide.sleep, 100) end end)\n" ..
      "print('typed')\n")
    assert.equal(0, st)
    assert.truthy(out:find("\ntyped\n$"))
  end)

  it("runs a script first with -i script", function()
    local path = tmpfile("count = 0\n" ..
                         "tide.spawn(function() tide.sleep(0.01) " ..
                         "count = count + 1 end)\n")
    local _, out = repl("tide.sleep(0.05) return count\n", q(path))
    os.remove(path)
    assert.equal("1\n", out)
  end)

  it("reads a regular file as well as a pipe", function()
    local st, out = repl("1 + 1\nfor i = 1, 2 do\nprint(i)\nend\n", nil,
                         "file")
    assert.equal(0, st)
    assert.equal("2\n1\n2\n", out)
  end)

  it("offers the stdlib modules as globals, loaded on first use", function()
    local _, out = repl(
      "package.loaded['tide.queue'] == nil or queue ~= nil\n" ..
      -- a missing module leaves its global nil instead of breaking
      "local lazy = require('tide.repl').lazy lazy.nosuch = 'tide.nosuch' " ..
      "return nosuch\n" ..
      "package.preload['x.fake'] = function() return {v = 1} end " ..
      "require('tide.repl').lazy.fake = 'x.fake' return fake.v\n" ..
      "rawget(_G, 'fake') ~= nil\n")
    assert.equal("true\nnil\n1\ntrue\n", out)
    for _, name in ipairs({ "fs", "net", "http", "queue", "sync",
                            "process" }) do
      local _, o, e = repl(("type(%s)\n"):format(name))
      assert.truthy(o == '"table"\n' or o == '"nil"\n', name .. ": " .. o)
      assert.equal("", e)
    end
  end)

  it("leaves the globals of scripts alone", function()
    local st, out = helper.tide("print(rawget(_G, 'queue'), queue)")
    assert.equal(0, st)
    assert.equal("nil\tnil\n", out)
  end)

  describe("completion", function()
    local function complete(text, setup)
      local _, out, err = repl((setup or "") ..
        ("table.concat(require('tide.repl').complete(%q), ' ')\n")
          :format(text))
      assert.equal("", err)
      return (out:match('"(.*)"\n$'))
    end

    it("completes globals, keywords and the module globals", function()
      assert.equal("print(", complete("pri"))
      assert.equal("while", complete("whil"))
      local all = complete("s")
      assert.truthy(all:find("string", 1, true))
      assert.truthy(all:find("select(", 1, true))
      assert.truthy(all:find("sync", 1, true))
    end)

    it("completes fields after a dot, through nested tables", function()
      assert.equal("string.format(", complete("string.for"))
      assert.equal("tide.spawn(", complete("tide.sp"))
      local all = complete("tide.s")
      assert.truthy(all:find("tide.sleep( tide.spawn(", 1, true))
      assert.equal("a.b.cd", complete("a.b.c", "a = {b = {cd = 1}}\n"))
    end)

    it("loads a module global to complete its fields", function()
      assert.equal("fs.read_file(", complete("fs.read_f"))
      assert.equal("", complete("nosuch.x", "require('tide.repl').lazy" ..
                                ".nosuch = 'tide.nosuch'\n"))
    end)

    it("completes methods after a colon, through __index", function()
      local setup = "t = tide.spawn(function() end) s = 'x' " ..
        "obj = setmetatable({}, {__index = {go = function() end, " ..
        "field = 1}})\n"
      assert.equal("t:await(", complete("t:aw", setup))
      assert.equal("s:upper(", complete("s:up", setup))
      assert.equal("obj:go(", complete("obj:", setup))
      assert.equal("obj.field obj.go(", complete("obj.", setup))
    end)

    it("offers nothing for what is not there", function()
      assert.equal("", complete("nosuch.x"))
      assert.equal("", complete("a:b.c", "a = {b = {c = 1}}\n"))
      assert.equal("", complete("zzzz"))
    end)
  end)

  describe("Ctrl-C", function()
    it("cancels a statement waiting in tide.sleep", function()
      local st, out, err = interrupt(
        "print('started') tide.sleep(30)\nprint('after')\n", "started")
      assert.equal(0, st)
      assert.equal("started\nafter\n", out)
      assert.truthy(err:find("ECANCELED: task cancelled: interrupted", 1,
                             true))
    end)

    it("interrupts a CPU-bound statement", function()
      local st, out, err = interrupt(
        "print('started') io.stdout:flush() while true do end\n" ..
        "print('after')\n", "started")
      assert.equal(0, st)
      assert.equal("started\nafter\n", out)
      assert.truthy(err:find("interrupted", 1, true))
    end)

    it("interrupts a loop inside a coroutine the statement runs", function()
      local st, out, err = interrupt(
        "print('started') io.stdout:flush() " ..
        "coroutine.wrap(function() while true do end end)()\n" ..
        "print('after')\n", "started")
      assert.equal(0, st)
      assert.equal("started\nafter\n", out)
      assert.truthy(err:find("interrupted", 1, true))
    end)

    it("leaves Ctrl-C to a statement that waits for it", function()
      local st, out, err = interrupt(
        "f = tide.future() h = require('tide.signal').on('INT', " ..
        "function(s) f:set(s) end) print('started') io.stdout:flush() " ..
        "print('got', f:await()) h:close()\n" ..
        "print('after')\n", "started")
      assert.equal(0, st, err)
      assert.equal("started\ngot\tINT\nafter\n", out)
      assert.equal("", err)
    end)

    it("cancels a statement that waits on what nothing else ends",
       function()
      local st, out, err = interrupt(
        "print('started') io.stdout:flush() tide.future():await()\n" ..
        "print('after')\n", "started")
      assert.equal(0, st, err)
      assert.equal("started\nafter\n", out)
      assert.truthy(err:find("interrupted", 1, true))
    end)

    it("cancels only the statement, not the tasks it spawned", function()
      local st, out = interrupt(
        "bg = tide.spawn(function() tide.sleep(0.2) return 'bg done' end)\n" ..
        "print('started') tide.sleep(30)\n" ..
        "bg:await()\n", "started")
      assert.equal(0, st)
      assert.truthy(out:find('"bg done"', 1, true))
    end)

    it("interrupts a background task that keeps the loop busy", function()
      local st, out, err = interrupt(
        "tide.spawn(function() print('started') io.stdout:flush() " ..
        "while true do end end)\n" ..
        "print('after')\n", "started")
      assert.equal(0, st)
      assert.truthy(out:find("after", 1, true))
      assert.truthy(err:find("kept the loop busy", 1, true))
    end)
  end)
end)

describe("docs/repl.md", function()
  it("shows what its scripted session prints", function()
    local f = assert(io.open(helper.root .. "/docs/repl.md"))
    local doc = f:read("a")
    f:close()
    local cmd, expected = doc:match("\n%$ (printf [^\n]*| tide %-i)\n" ..
                                    "tide [^\n]*\n(.-)```")
    assert.truthy(cmd, "no scripted session in docs/repl.md")
    cmd = cmd:gsub("| tide %-i$", "| TIDE_HISTORY= " .. bin .. " -i")
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.equal(expected, (out:gsub("^tide [^\n]*\n", "")))
  end)
end)

describe("tide._repl, the terminal side", function()
  -- Run `code` as a script whose stdin is a pipe that stays empty until
  -- the script creates the file named by arg[1], then carries `input`.
  local function with_stdin(code, input)
    local script, marker = tmpfile(code), os.tmpname()
    os.remove(marker)
    local cmd = ([[
{ i=0; until [ -e %s ]; do i=$((i + 1)); [ $i -gt 1000 ] && break;
  sleep 0.01; done; printf %s; } | timeout 20 %s %s %s 2>&1
]]):format(q(marker), q(input), q(bin), q(script), q(marker))
    local p = io.popen(cmd)
    local out = p:read("a")
    local _, _, code = p:close()
    os.remove(script)
    os.remove(marker)
    return code, out
  end

  it("reads lines as a wait that can be cancelled", function()
    local status, out = with_stdin([[
local R = require "tide._repl"
local r = R.open({tty = false})
print(r:is_tty(), pcall(R.open, {tty = false}))
local stats = tide._stats
local idle = stats().handles
local t = tide.spawn(function() return r:readline() end)
tide.sleep(0.02)
print(t.status, pcall(r.readline, r))
local reading = stats().handles
t:cancel()
local ok, err = pcall(tide.await, t)
print(t.status, ok, err.code, reading - idle, stats().handles - idle)
io.open(arg[1], "w"):close()
print(r:readline(), r:readline("ignored"), r:readline())
r:close()
r:close()
print(pcall(r.readline, r))
local r2 = R.open({tty = false})
r2:close()
print(pcall(R.open, 5))
]], "hello\r\nlast line")
    assert.equal(0, status, out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("false\tfalse\ta REPL is already open", lines[1])
    assert.equal("waiting\tfalse\tthe REPL is already reading", lines[2])
    -- stdin is watched while a task reads, and no longer once cancelled
    assert.equal("cancelled\tfalse\tECANCELED\t1\t0", lines[3])
    assert.equal("hello\tlast line\tnil", lines[4])
    assert.equal("false\tthe REPL is closed", lines[5])
    assert.truthy(lines[6]:find("^false\tbad argument #1 to '[%w._]*open' " ..
                                "%(table expected, got number%)"), lines[6])
  end)

  it("wakes a reader with nil when the REPL is closed", function()
    local status, out = with_stdin([[
local r = require("tide._repl").open({tty = false})
local t = tide.spawn(function() return r:readline() end)
tide.sleep(0.01)
r:close()
print(pcall(tide.await, t))
io.open(arg[1], "w"):close()
]], "")
    assert.equal(0, status, out)
    assert.equal("true\tnil\n", out)
  end)
end)
