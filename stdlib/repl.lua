-- tide.repl: the interactive prompt.  Each statement runs in the main
-- task, so async calls work at the prompt; expressions are printed
-- without `return`, and a chunk that ends in <eof> asks for more lines.

local M = {}

local function incomplete(msg)
  return type(msg) == "string" and msg:sub(-5) == "<eof>"
end

local function compile(line, more)
  local f = load("return " .. line .. ";", "=stdin", "t")
  if f then return f end
  local src = line
  while true do
    local g, err = load(src, "=stdin", "t")
    if g then return g end
    if not incomplete(err) then return nil, err end
    local nextline = more()
    if not nextline then return nil, err end
    src = src .. "\n" .. nextline
  end
end

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
  return debug.traceback(msg, 2)
end

function M.run()
  local tty = io.stdin:seek() == nil and os.getenv("TERM") ~= nil
  local function prompt(p)
    if tty then
      io.stdout:write(p)
      io.stdout:flush()
    end
    return io.stdin:read("l")
  end
  while true do
    local line = prompt("> ")
    if not line then break end
    local f, err = compile(line, function() return prompt(">> ") end)
    if not f then
      io.stderr:write(err, "\n")
    else
      local r = table.pack(xpcall(f, handler))
      if not r[1] then
        io.stderr:write(tostring(r[2]), "\n")
      elseif r.n > 1 then
        print(table.unpack(r, 2, r.n))
      end
    end
    io.stdout:flush()
    io.stderr:flush()
  end
  if tty then io.stdout:write("\n") end
end

return M
