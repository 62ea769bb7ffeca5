-- Loaded by busted before every spec: shared helpers for the tests.
local helper = {}

helper.root = os.getenv("TIDE_ROOT") or "."
helper.bin = os.getenv("TIDE_BIN") or "build/tide"

-- Run a shell command; returns its exit status and everything it printed
-- (stdout and stderr together unless `stderr_apart`).
function helper.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, how, code = p:close()
  return (how == "exit" and code or 128 + code), out
end

-- Run a Lua snippet in a fresh tide process.
function helper.tide(code, args)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local status, out = helper.sh(helper.bin .. " " .. path .. " " .. (args or ""))
  os.remove(path)
  return status, out
end

-- Call fn(...), which must raise a tide.Error; returns its code and the
-- error.
function helper.errcode(fn, ...)
  local assert = require "luassert"
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.is_true(tide.is_error(err), "not a tide.Error: " .. tostring(err))
  return err.code, err
end

_G.helper = helper
return helper
