-- Helpers for tests/lua/faults_spec.lua: run a Lua snippet in a child tide
-- process with extra environment variables and shell limits.
local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- Run `code` in a fresh tide process.  env: a table of environment
-- variables; opts.ulimit_n: the descriptor limit for the child;
-- opts.args: extra arguments.  Returns the exit status (128 + signal when
-- killed) and everything it printed.
function M.run(code, env, opts)
  opts = opts or {}
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local cmd = {}
  if opts.ulimit_n then cmd[#cmd + 1] = "ulimit -n " .. opts.ulimit_n .. ";" end
  cmd[#cmd + 1] = "exec env"
  for k, v in pairs(env or {}) do cmd[#cmd + 1] = k .. "=" .. quote(v) end
  cmd[#cmd + 1] = quote(helper.bin)
  cmd[#cmd + 1] = quote(path)
  cmd[#cmd + 1] = opts.args or ""
  local status, out = helper.sh("sh -c " .. quote(table.concat(cmd, " ")))
  os.remove(path)
  return status, out
end

return M
