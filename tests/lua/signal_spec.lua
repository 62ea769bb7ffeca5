local signal = require "tide.signal"
local process = require "tide.process"
local fs = require "tide.fs"
local S = require "tests.lua.support.fsproc"

local me = process.pid()

local function send_soon(sig, delay)
  return tide.spawn(function()
    tide.sleep(delay or 0.01)
    signal.kill(me, sig)
  end)
end

-- Run `code` in a tide child process, wait until it prints "ready", send
-- it the signals, and return its exit code and everything it printed.
local function interrupt(code, signals)
  local dir = S.tmpdir()
  local script = dir .. "/script.lua"
  fs.write_file(script, code)
  local p <close> = process.spawn(helper.bin, {script}, {stdin = "null"})
  local out = {}
  local line = p.stdout:read_line()
  assert.equal("ready", line)
  for _, sig in ipairs(signals) do
    p:kill(sig)
    local l = p.stdout:read_line()
    if l then out[#out + 1] = l end
  end
  while true do
    local l = p.stdout:read_line()
    if not l then break end
    out[#out + 1] = l
  end
  local status = p:wait()
  S.cleanup(dir)
  return status, table.concat(out, "\n")
end

describe("tide.signal", function()
  it("waits for a signal", function()
    send_soon("USR1")
    assert.equal("USR1", signal.wait("USR1"))
    send_soon(10) -- by number
    assert.equal("USR1", signal.wait("SIGUSR1"))
  end)

  it("can be cancelled while waiting and leaves nothing behind", function()
    local t = tide.spawn(signal.wait, "USR2")
    tide.sleep(0.01)
    t:cancel()
    assert.equal("ECANCELED", select(2, pcall(t.await, t)).code)
    send_soon("USR2")
    assert.equal("USR2", signal.wait("USR2"))
  end)

  it("times out", function()
    local ok, err = pcall(tide.timeout, 0.02, signal.wait, "HUP")
    assert.is_false(ok)
    assert.equal("ETIMEDOUT", err.code)
  end)

  it("runs a handler in a new task for each delivery", function()
    local seen, tasks = 0, {}
    local h = signal.on("USR1", function(name)
      seen = seen + 1
      tasks[tide.current()] = name
    end)
    assert.matches("SignalHandler %(USR1%)", tostring(h))
    signal.kill(me, "USR1")
    assert.is_true(S.eventually(function() return seen == 1 end))
    signal.kill(me, "USR1")
    assert.is_true(S.eventually(function() return seen == 2 end))
    local n = 0
    for _, name in pairs(tasks) do
      n = n + 1
      assert.equal("USR1", name)
    end
    assert.equal(2, n)
    h:close()
    h:close()
    -- With the handler gone, a wait gets the next one.
    send_soon("USR1")
    assert.equal("USR1", signal.wait("USR1"))
    assert.equal(2, seen)
  end)

  it("checks its arguments", function()
    assert.has_error(function() signal.wait("NOPE") end,
                     "bad argument #1 to 'wait' (unknown signal 'NOPE')")
    assert.has_error(function() signal.on("USR1") end)
    assert.has_error(function() signal.on("BAD", print) end)
    assert.has_error(function() signal.wait("KILL") end)
    assert.equal(15, signal.number("TERM"))
    assert.equal("TERM", signal.name(15))
    local ok, err = pcall(signal.kill, 999999999, 0)
    assert.is_false(ok)
    assert.equal("ESRCH", err.code)
  end)

  describe("Ctrl-C", function()
    it("cancels the main task so <close> and pcall cleanup run", function()
      local code, out = interrupt([[
        local c <close> = setmetatable({}, {__close = function(_, e)
          print("closed: " .. tostring(e.code))
        end})
        print("ready") io.stdout:flush()
        local ok, err = pcall(tide.sleep, 30)
        print("pcall: " .. err.code) io.stdout:flush()
        error(err)
      ]], {"INT"})
      assert.equal(130, code)
      assert.matches("pcall: ECANCELED", out)
      assert.matches("closed: ECANCELED", out)
    end)

    it("exits at once on a second Ctrl-C during cleanup", function()
      local code, out = interrupt([[
        print("ready") io.stdout:flush()
        local ok, err = pcall(tide.sleep, 30)
        -- a slow cleanup that awaits
        print("cleaning " .. err.code) io.stdout:flush()
        tide.sleep(30)
        print("cleaned")
      ]], {"INT", "INT"})
      assert.equal(130, code)
      assert.matches("cleaning ECANCELED", out)
      assert.not_matches("cleaned", out)
    end)

    it("is delivered to signal.wait instead while one waits", function()
      local code, out = interrupt([[
        local signal = require "tide.signal"
        local t = tide.spawn(signal.wait, "INT")
        tide.sleep(0)
        print("ready") io.stdout:flush()
        print("got " .. t:await()) io.stdout:flush()
        tide.sleep(0.01)
        print("still running")
      ]], {"INT"})
      assert.equal(0, code)
      assert.matches("got INT", out)
      assert.matches("still running", out)
    end)

    it("is delivered to signal.on handlers while they exist", function()
      local code, out = interrupt([[
        local signal = require "tide.signal"
        local got = tide.future()
        local h = signal.on("INT", function(s) got:set(s) end)
        -- signal.on does not keep the process alive; this "server" does.
        local server = tide.spawn(tide.sleep, 30)
        print("ready") io.stdout:flush()
        print("handler " .. got:await()) io.stdout:flush()
        h:close()
        server:cancel()
        print("done")
      ]], {"INT"})
      assert.equal(0, code)
      assert.matches("handler INT", out)
      assert.matches("done", out)
    end)
  end)

  it("runs the examples of docs/signal.md", function()
    assert.is_true(S.check_doc("signal.md") > 0)
  end)
end)
