-- tide.http_client: an HTTP client on libcurl's multi interface, driven by
-- the tide loop (the C half is tide._http_client).  get/post/request return
-- a Response: status, headers (case-insensitive), body, json(), and for
-- stream=true read(n)/chunks()/close().  A non-2xx status is a response;
-- connection, TLS and timeout failures raise tide.Error values.

local C = require "tide._http_client"

local request = C.request
local type, error, setmetatable, rawget, rawset, tostring =
  type, error, setmetatable, rawget, rawset, tostring
local lower, find, sub, gsub =
  string.lower, string.find, string.sub, string.gsub

local M = {}

-- Headers: names are stored in lower case; any spelling finds them.
local Headers = {}
Headers.__index = function(t, k)
  if type(k) == "string" then return rawget(t, lower(k)) end
end
Headers.__newindex = function(t, k, v)
  if type(k) == "string" then k = lower(k) end
  rawset(t, k, v)
end

-- Parse a raw header block ("HTTP/1.1 200 OK\r\nName: value\r\n...").
-- Repeated fields are joined with ", " (RFC 9110, 5.3).
local function parse_headers(head)
  local h = setmetatable({}, Headers)
  local pos = find(head, "\n", 1, true)
  if not pos then return h end
  for name, value in head:gmatch("([^:\r\n]+):[ \t]*([^\r\n]*)", pos + 1) do
    name = lower(name)
    value = gsub(value, "[ \t]+$", "")
    local old = rawget(h, name)
    rawset(h, name, old and (old .. ", " .. value) or value)
  end
  return h
end

local Response = {}

local Response_mt = {
  __name = "tide.Response",
  __index = function(self, k)
    if k == "headers" then
      local h = parse_headers(rawget(self, "_head") or "")
      rawset(self, "headers", h)
      return h
    end
    return Response[k]
  end,
  __close = function(self) self:close() end,
  __tostring = function(self)
    return ("Response %d (%s)"):format(self.status, self.url)
  end,
}

-- response:read([n]) -> up to n bytes of the body (all there is without
-- n), nil at the end.  Streamed responses wait for data from the network.
function Response:read(n)
  local s = rawget(self, "_stream")
  if s then return s:read(n) end
  local body, pos = self.body, rawget(self, "_pos") or 1
  if pos > #body then return nil end
  local stop = n and (pos + n - 1) or #body
  rawset(self, "_pos", stop + 1)
  return sub(body, pos, stop)
end

-- for chunk in response:chunks() do ... end
function Response:chunks()
  return function() return self:read() end
end

-- Stop a streamed transfer early (closes its connection); idempotent and
-- harmless on a complete response.
function Response:close()
  local s = rawget(self, "_stream")
  if s then s:close() end
end

local cjson
-- response:json() -> the body decoded with lua-cjson (reads the rest of a
-- streamed body first).
function Response:json()
  if not cjson then
    local ok, mod = pcall(require, "cjson")
    if not ok then
      error("response:json() needs lua-cjson (Debian package lua-cjson): "
            .. tostring(mod), 2)
    end
    cjson = mod
  end
  local body = rawget(self, "body")
  if not body then
    local parts = {}
    for chunk in self:chunks() do parts[#parts + 1] = chunk end
    body = table.concat(parts)
    rawset(self, "body", body)
  end
  local ok, v = pcall(cjson.decode, body)
  if not ok then
    error(tide.error("EPROTO", "invalid JSON: " .. tostring(v),
                     {op = "response:json", path = self.url}), 2)
  end
  return v
end

local function wrap(status, body, head, version, url, stream)
  return setmetatable({status = status, body = body, _head = head,
                       version = version, url = url, _stream = stream},
                      Response_mt)
end

local function check_url(url, fname)
  if type(url) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)")
          :format(fname, type(url)), 3)
  end
end

local function check_opts(opts, i, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)")
          :format(i, fname, type(opts)), 3)
  end
end

-- get(url [, opts]) -> Response
function M.get(url, opts)
  check_url(url, "get")
  check_opts(opts, 2, "get")
  return wrap(request(url, "GET", nil, opts))
end

-- post(url, body [, opts]) -> Response
function M.post(url, body, opts)
  check_url(url, "post")
  if type(body) ~= "string" then
    error(("bad argument #2 to 'post' (string expected, got %s)")
          :format(type(body)), 2)
  end
  check_opts(opts, 3, "post")
  return wrap(request(url, "POST", body, opts))
end

-- request{method=, url=, headers=, body=, timeout=, follow=, verify=,
-- cafile=, max_redirects=, stream=} -> Response
function M.request(opts)
  if type(opts) ~= "table" then
    error(("bad argument #1 to 'request' (table expected, got %s)")
          :format(type(opts)), 2)
  end
  local url, method, body = opts.url, opts.method, opts.body
  if type(url) ~= "string" then
    error(("bad argument #1 to 'request' (field 'url' must be a string, "
           .. "got %s)"):format(type(url)), 2)
  end
  if method ~= nil and type(method) ~= "string" then
    error(("bad argument #1 to 'request' (field 'method' must be a "
           .. "string, got %s)"):format(type(method)), 2)
  end
  if body ~= nil and type(body) ~= "string" then
    error(("bad argument #1 to 'request' (field 'body' must be a string, "
           .. "got %s)"):format(type(body)), 2)
  end
  return wrap(request(url, method and method:upper() or "GET", body, opts))
end

M.Response = Response
M.Headers = Headers
M.parse_headers = parse_headers
M.curl_version = C.curl_version
M._stats = C._stats

return M
