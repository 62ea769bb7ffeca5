-- tide.repl: the interactive prompt.  Each chunk entered runs as its own
-- task, which the prompt awaits, so async calls work at the prompt and
-- tasks spawned there keep running between prompts; Ctrl-C cancels that
-- task.  Expressions are printed without `return`, pretty-printed; a chunk
-- that ends in <eof> asks for more lines (lua.c's rule).  The terminal side
-- (readline, stdin, signals, output above the prompt) is tide._repl, in C.

local C = require "tide._repl"

local M = {}

-- Globals the REPL offers, loaded on first use: a module that is missing
-- or broken leaves its global nil instead of breaking the REPL.
M.lazy = {
  fs = "tide.fs", net = "tide.net", http = "tide.http",
  queue = "tide.queue", sync = "tide.sync", process = "tide.process",
  signal = "tide.signal",
}

local function incomplete(msg)
  return type(msg) == "string" and msg:sub(-5) == "<eof>"
end

-- Compile a chunk the way lua.c does: first as an expression to print,
-- then as statements.  Returns the function, or nil and the error, and
-- whether more lines could finish it.
function M.compile(src)
  local f = load("return " .. src .. ";", "=stdin", "t")
  if f then return f end
  local g, err = load(src, "=stdin", "t")
  if g then return g end
  return nil, err, incomplete(err)
end

-- The error message and traceback of a failed statement, without the
-- REPL's own frames.
local function handler(e)
  local msg
  if tide.is_error(e) then
    msg = tostring(e)
  elseif type(e) == "string" then
    msg = e
  else
    local mt = getmetatable(e)
    msg = mt and mt.__tostring and tostring(e)
      or ("(error object is a %s value)"):format(type(e))
  end
  local tb = debug.traceback(msg, 2)
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  if cut then tb = tb:sub(1, cut - 1) end
  return tb
end

-- Render results the way print separates values, each pretty-printed.
function M.format(r, first, last, width)
  local out, opts = {}, { width = width or 80 }
  for i = first, last do out[#out + 1] = tide.pretty(r[i], opts) end
  return table.concat(out, "\t")
end

-- How a chunk is kept in the history: one entry, on one line when that
-- cannot change its meaning (no comments or long brackets to cut short).
local function history_entry(lines)
  local src = table.concat(lines, "\n")
  if #lines > 1 and not src:find("%-%-") and not src:find("%[=*%[") then
    src = table.concat(lines, " ")
  end
  return src
end

-- print, io.write and writes to io.stdout/io.stderr go through the REPL
-- while it runs, so what background tasks print lands above the prompt.
local function route_output(repl)
  local saved = { print = print, write = io.write }
  local filemeta = getmetatable(io.stdout).__index
  local file_write = filemeta.write
  saved.file_write = file_write
  local stdout, stderr = io.stdout, io.stderr
  local tostring, select, concat = tostring, select, table.concat

  local function collect(fname, ...)
    local parts = {}
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      local tv = type(v)
      if tv ~= "string" and tv ~= "number" then
        error(("bad argument #%d to '%s' (string expected, got %s)")
              :format(i, fname, tv), 3)
      end
      parts[i] = tv == "number" and tostring(v) or v
    end
    return concat(parts)
  end

  _G.print = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    repl:write(1, concat(parts, "\t") .. "\n")
  end
  filemeta.write = function(f, ...)
    if f == stdout or f == stderr then
      repl:write(f == stdout and 1 or 2, collect("write", ...))
      return f
    end
    return file_write(f, ...)
  end
  io.write = function(...)
    return io.output():write(...)
  end
  return function()
    _G.print = saved.print
    io.write = saved.write
    filemeta.write = saved.file_write
  end
end

-- Lazily loaded module globals, through the globals' metatable (kept
-- after an __index the user may already have set).
local function install_lazy()
  local reg = debug.getregistry()
  reg["tide.repl.lazy"] = M.lazy
  local mt = getmetatable(_G)
  if mt == nil then
    mt = {}
    setmetatable(_G, mt)
  end
  local old = mt.__index
  mt.__index = function(t, k)
    local name = M.lazy[k]
    if name then
      local ok, mod = pcall(require, name)
      if ok then
        rawset(t, k, mod)
        return mod
      end
    end
    if type(old) == "function" then return old(t, k) end
    if type(old) == "table" then return old[k] end
    return nil
  end
  return function()
    mt.__index = old
    reg["tide.repl.lazy"] = nil
  end
end

-- Run one compiled chunk as its own task and show its outcome.
local function run_chunk(repl, f)
  local t = tide.spawn(function() return table.pack(xpcall(f, handler)) end)
  t.name = "repl"
  repl:set_target(t)
  local ok, r = pcall(tide.await, t)
  repl:set_target(nil)
  if not ok then
    -- the statement's task itself was cancelled before xpcall could run
    repl:write(2, handler(r) .. "\n")
  elseif not r[1] then
    repl:write(2, tostring(r[2]) .. "\n")
  elseif r.n > 1 then
    local shown, text = pcall(M.format, r, 2, r.n, repl:width() - 1)
    if shown then repl:write(1, text .. "\n")
    else repl:write(2, "cannot show the result: " .. tostring(text) .. "\n")
    end
  end
end

-- Cancel what is still running when the REPL ends, and let it clean up.
local function cancel_rest()
  local me, rest = tide.current(), {}
  for _, t in ipairs(tide.tasks()) do
    if t ~= me then
      t:cancel("the REPL exited")
      rest[#rest + 1] = t
    end
  end
  if #rest > 0 then pcall(tide.wait, rest, { timeout = 2 }) end
end

function M.run(opts)
  local repl <close> = C.open(opts)
  local restore_output = route_output(repl)
  local restore_lazy = install_lazy()
  local ok, err = pcall(function()
    local eof = false
    while not eof do
      local line = repl:readline("> ")
      if line == nil then break end
      if line ~= false then
        local lines = { line }
        local f, msg, more = M.compile(line)
        local dropped = false
        while not f and more do
          local nextline = repl:readline(">> ")
          if nextline == nil then
            eof = true -- the input ended inside the chunk: say so
            more = false
            break
          elseif nextline == false then
            dropped = true -- Ctrl-C: forget the unfinished chunk
            break
          end
          lines[#lines + 1] = nextline
          f, msg, more = M.compile(table.concat(lines, "\n"))
        end
        repl:add_history(history_entry(lines))
        if f then
          run_chunk(repl, f)
        elseif not dropped then
          repl:write(2, msg .. "\n")
        end
      end
    end
  end)
  restore_lazy()
  restore_output()
  repl:close()
  cancel_rest()
  if not ok then error(err, 0) end
end

M.complete = C.complete

return M
