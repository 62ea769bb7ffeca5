-- Peers for the HTTP server specs: run curl, python3 and node as child
-- processes (tide.process) without blocking the test's tide loop, and a
-- raw TCP client (rawhttp.py) for hand-made and hostile requests.
local process = require "tide.process"

local peer = {}

local root = os.getenv("TIDE_ROOT") or "."
peer.dir = root .. "/tests/lua/support"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
peer.quote = q

-- Start `cmd` (a shell command line) as a task.  Returns a handle whose
-- :wait([timeout]) returns the exit status and the output (stdout and
-- stderr together).
function peer.spawn(cmd, timeout)
  local t = tide.spawn(function()
    return process.run("sh", {"-c", "exec 2>&1; " .. cmd},
                       {timeout = timeout or 30})
  end)
  local h = {}
  function h:wait()
    local r = t:await()
    return r.code or 128, r.stdout
  end
  return h
end

-- Run cmd in the background and wait for it.
function peer.run(cmd, timeout)
  return peer.spawn(cmd, timeout):wait()
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Raw exchange: steps is a list of strings to send, or {sleep=s},
-- {shut=true}, {timeout=s}.  Returns what the server sent and how the
-- connection ended ("EOF", "TIMEOUT", "RESET").
function peer.raw_spawn(port, steps)
  local args = {}
  for _, st in ipairs(steps) do
    if type(st) == "string" then
      args[#args + 1] = "send:" .. hex(st)
    elseif st.sleep then
      args[#args + 1] = "sleep:" .. st.sleep
    elseif st.shut then
      args[#args + 1] = "shut"
    elseif st.timeout then
      args[#args + 1] = "timeout:" .. st.timeout
    end
  end
  local h = peer.spawn(("python3 %s/rawhttp.py %d %s"):format(
    peer.dir, port, table.concat(args, " ")))
  local raw = {}
  function raw:wait()
    local st, out = h:wait()
    assert(st == 0, "rawhttp.py failed: " .. out)
    local body, ending = out:match("^(.*)\n<<(%u+)>>\n$")
    return body, ending
  end
  return raw
end

function peer.raw(port, steps)
  return peer.raw_spawn(port, steps):wait()
end

-- Split a byte string of consecutive responses into a list of
-- {status=, headers=, body=}.  Understands Content-Length and chunked
-- bodies, which is all tide's server sends.
function peer.parse_responses(s)
  local list, pos = {}, 1
  while pos <= #s do
    local head_end = s:find("\r\n\r\n", pos, true)
    if not head_end then break end
    local head = s:sub(pos, head_end - 1)
    local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
    local headers = {}
    for k, v in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do
      headers[k:lower()] = v
    end
    pos = head_end + 4
    local body = ""
    if status and status >= 200 and status ~= 204 and status ~= 304 then
      if headers["content-length"] then
        local n = tonumber(headers["content-length"])
        body = s:sub(pos, pos + n - 1)
        pos = pos + n
      elseif headers["transfer-encoding"] == "chunked" then
        local parts = {}
        while true do
          local line_end = s:find("\r\n", pos, true)
          if not line_end then break end
          local size = tonumber(s:sub(pos, line_end - 1), 16)
          pos = line_end + 2
          if not size or size == 0 then
            pos = pos + 2
            break
          end
          parts[#parts + 1] = s:sub(pos, pos + size - 1)
          pos = pos + size + 2
        end
        body = table.concat(parts)
      else
        body = s:sub(pos)
        pos = #s + 1
      end
    end
    list[#list + 1] = {status = status, headers = headers, body = body}
  end
  return list
end

return peer
