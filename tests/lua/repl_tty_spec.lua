-- The REPL on a real terminal (tmux): line editing, history, completion,
-- Ctrl-C, Ctrl-D, and background output above the prompt.
local tmux = dofile(helper.root .. "/tests/lua/support/tmux.lua")

local bin = helper.bin

describe("the REPL on a terminal", function()
  local term, dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. tmux.quote(dir)))
  end)

  after_each(function()
    if term then term:kill() end
    term = nil
    os.execute("rm -rf " .. tmux.quote(dir))
  end)

  local function start(env)
    env = env or {}
    env.TIDE_HISTORY = env.TIDE_HISTORY or (dir .. "/history")
    term = tmux.start(tmux.quote(bin), env)
    term:wait_for("\n>$")
    return term
  end

  -- Leave with Ctrl-D on a cleared line: the REPL must exit with status 0
  -- (under ASan, that also says nothing leaked).
  local function finish()
    term:key("C-u", "C-d")
    term:wait_for("[exit 0]", 10, true)
  end

  -- Type a line and wait until the next prompt shows under it.
  local function enter(line)
    local function prompts(s) return select(2, s:gsub("\n>%f[ \n%z]", "")) end
    local before = prompts(term:screen())
    term:send(line)
    term:key("Enter")
    return term:wait_for(function(s)
      return prompts(s) > before and s:find("\n>$")
    end)
  end

  it("shows a prompt and prints expressions without return", function()
    start()
    local s = enter("1 + 2")
    assert.truthy(s:find("> 1 %+ 2\n3\n>$"))
    s = enter("{1, 2, {a = 'x'}}")
    assert.truthy(s:find('{1, 2, {a = "x"}}', 1, true))
    finish()
  end)

  it("fits results to the terminal's width, as it changes", function()
    start()
    enter("t = {alpha = ('a'):rep(10), beta = ('b'):rep(10), " ..
          "gamma = ('c'):rep(10)}")
    local s = enter("t")
    assert.truthy(s:find('\n{alpha = "aaaaaaaaaa", beta = "bbbbbbbbbb", ' ..
                         'gamma = "cccccccccc"}\n>$'))
    assert(term:tmux("resize-window -x 50 -y 40"))
    s = enter("t")
    assert.truthy(s:find('\n{\n  alpha = "aaaaaaaaaa",\n  beta = ' ..
                         '"bbbbbbbbbb",\n  gamma = "cccccccccc"\n}\n>$'))
    finish()
  end)

  it("edits the line", function()
    start()
    term:send("1+2")
    term:key("Left", "BSpace")
    term:send("*")
    term:key("End")
    term:send("0")
    term:wait_for("> 1%*20$")
    term:key("Enter")
    term:wait_for("\n20\n>$")
    finish()
  end)

  it("reads a chunk over several lines", function()
    start()
    term:send("for i = 1, 2 do")
    term:key("Enter")
    term:wait_for("\n>>$")
    term:send("print(i * 10)")
    term:key("Enter")
    term:wait_for("\n>>$")
    term:send("end")
    term:key("Enter")
    term:wait_for(">> end\n10\n20\n>$")
    finish()
  end)

  it("keeps history across sessions", function()
    start()
    enter("40 + 2")
    term:key("Up")
    term:wait_for("> 40 %+ 2$")
    term:key("Enter")
    term:wait_for("42\n> 40 %+ 2\n42\n>$")
    term:key("C-d")
    term:wait_for("[exit 0]", 10, true)
    term:kill()
    local f = assert(io.open(dir .. "/history"))
    local text = f:read("a")
    f:close()
    -- the same line twice in a row is kept once
    assert.equal("40 + 2\n", text)
    start()
    term:key("Up")
    term:wait_for("> 40 %+ 2$")
  end)

  it("completes globals, fields and methods", function()
    start()
    term:send("string.for")
    term:key("Tab")
    term:wait_for("> string%.format%($")
    term:send("'%d', 7)")
    term:key("Enter")
    term:wait_for('\n"7"\n>$')
    enter("t = tide.spawn(function() end)")
    term:send("t:aw")
    term:key("Tab")
    term:wait_for("> t:await%($")
    term:key("C-u")
    -- a module global, loaded by completing it
    term:send("fs.read_f")
    term:key("Tab")
    term:wait_for("> fs%.read_file%($")
    term:key("C-u")
    term:send("tide.s")
    term:key("Tab", "Tab")
    local s = term:wait_for("tide%.sleep%(%s+tide%.spawn%(")
    assert.truthy(s:find("\n> tide.s$"))
    finish()
  end)

  it("Ctrl-C cancels a statement waiting in tide.sleep", function()
    start()
    term:send("print('sleeping') tide.sleep(30) print('not reached')")
    term:key("Enter")
    term:wait_for("\nsleeping$")
    term:key("C-c")
    local s = term:wait_for("\n>$")
    assert.truthy(s:find("ECANCELED: task cancelled: interrupted", 1, true))
    assert.falsy(s:find("\nnot reached\n", 1, true))
    s = enter("1 + 1")
    assert.truthy(s:find("\n2\n>$"))
    finish()
  end)

  it("Ctrl-C interrupts a CPU-bound loop", function()
    start()
    term:send("print('spinning') while true do end")
    term:key("Enter")
    term:wait_for("\nspinning$")
    term:key("C-c")
    local s = term:wait_for("\n>$")
    assert.truthy(s:find("interrupted", 1, true))
    s = enter("2 + 2")
    assert.truthy(s:find("\n4\n>$"))
    finish()
  end)

  it("Ctrl-C at the prompt clears the line and a pending chunk", function()
    start()
    term:send("if true then")
    term:key("Enter")
    term:wait_for("\n>>$")
    term:send("garbage here")
    -- the terminal drops typed-ahead input on Ctrl-C: let it arrive first
    term:wait_for("\n>> garbage here$")
    term:key("C-c")
    term:wait_for("garbage here^C\n>$")
    local s = enter("3 + 3")
    assert.truthy(s:find("\n6\n>$"))
    finish()
  end)

  it("prints background output above the line being typed", function()
    start()
    enter("tide.spawn(function() for i = 1, 3 do tide.sleep(0.2) " ..
          "print('tick ' .. i) end end)")
    term:send("local typed = 1")
    local s = term:wait_for("tick 3\n> local typed = 1$")
    assert.truthy(s:find("tick 1\ntick 2\ntick 3\n> local typed = 1$"))
    -- the line is intact: finishing it runs it as typed
    term:send("23 print(typed)")
    term:key("Enter")
    term:wait_for("\n123\n>$")
    finish()
  end)

  it("Ctrl-D exits and cancels the tasks still running", function()
    start()
    enter("tide.spawn(function() local ok, e = pcall(tide.sleep, 100) " ..
          "io.stderr:write('cleanup ', e.code, '\\n') end)")
    term:key("C-d")
    local s = term:wait_for("[exit 0]", 10, true)
    assert.truthy(s:find("cleanup ECANCELED", 1, true))
  end)
end)
