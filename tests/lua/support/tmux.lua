-- Drive a program on a real terminal: a tmux server of its own (private
-- socket, so no other tmux session is touched), keys sent with send-keys,
-- the screen read back with capture-pane.  Waits poll the screen with a
-- bound instead of sleeping a fixed time.
local M = {}
M.__index = M

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

function M.available()
  return os.execute("command -v tmux >/dev/null 2>&1") == true
end

-- Start `cmd` (a shell command) in a 120x40 terminal.  env: extra
-- variables.  The session ends when the command does, unless `hold`, in
-- which case the pane shows what it printed until kill().
function M.start(cmd, env)
  local self = setmetatable({}, M)
  self.dir = os.tmpname()
  os.remove(self.dir)
  assert(os.execute("mkdir -p " .. q(self.dir)))
  self.sock = self.dir .. "/tmux.sock"
  local vars = { "INPUTRC=/dev/null", "LUA_INIT=", "LUA_INIT_5_4=" }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. v end
  local full = "env " .. table.concat(vars, " ") .. " " .. cmd ..
    "; echo \"[exit $?]\"; sleep 60"
  assert(os.execute(("tmux -S %s -f /dev/null new-session -d -x 120 -y 40 %s")
    :format(q(self.sock), q(full))))
  return self
end

function M:tmux(args)
  return os.execute(("tmux -S %s %s >/dev/null 2>&1"):format(q(self.sock),
                                                            args))
end

-- Send keys: literal text with send("text"), keys with key("Enter").
function M:send(text)
  assert(self:tmux("send-keys -l " .. q(text)))
end

function M:key(...)
  for _, k in ipairs({ ... }) do assert(self:tmux("send-keys " .. k)) end
end

-- The screen as text: each line without trailing blanks, and no blank
-- lines at the end (so a prompt line ends in ">").
function M:screen()
  local p = io.popen(("tmux -S %s capture-pane -p -J -S -200 2>/dev/null")
                       :format(q(self.sock)))
  local s = p:read("a")
  p:close()
  s = s:gsub("[ \t]+\n", "\n"):gsub("[ \t]+$", "")
  return (s:gsub("\n+$", ""))
end

-- Wait until the screen matches `pattern` (a Lua pattern, or a function
-- of the screen); returns the screen, or fails showing it.
function M:wait_for(pattern, timeout, plain)
  local deadline = tide.now() + (timeout or 10)
  local s
  repeat
    s = self:screen()
    local ok
    if type(pattern) == "function" then ok = pattern(s)
    else ok = s:find(pattern, 1, plain) end
    if ok then return s end
    tide.sleep(0.05)
  until tide.now() > deadline
  error(("screen never showed %q; it shows:\n%s"):format(
    tostring(pattern), s), 2)
end

-- The last line on the screen.
function M:last_line()
  local s = self:screen()
  return s:match("([^\n]*)$")
end

function M:kill()
  self:tmux("kill-server")
  os.execute("rm -rf " .. q(self.dir))
end

return M
