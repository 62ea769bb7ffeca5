-- tide.http_client: an HTTP client.  Plain http:// HTTP/1.1 requests go
-- over tide's own TCP streams (the C half is tide.http_fast: request heads,
-- response parsing, gzip); everything else (https://, HTTP/2, a proxy from
-- the environment) goes through libcurl's multi interface, driven by the
-- tide loop (tide._http_client).  This file owns the plain path's
-- connection pool, connecting, redirects, timeouts and retries.
-- get/post/request return a Response: status, headers (case-insensitive),
-- body, json(), and for stream=true read(n)/chunks()/close().  A non-2xx
-- status is a response; connection, TLS and timeout failures raise
-- tide.Error values.

local C = require "tide._http_client"
local F = require "tide.http_fast"
local connect_tcp = require("tide._net").connect_tcp

local request, check_opts = C.request, C._opts
local fast_head, fast_conn, exchange, fast_read, fast_idle, fast_close,
      fast_unhold =
  F.head, F.conn, F.exchange, F.read, F.idle, F.close, F.unhold
local XF_HEAD, XF_STREAM = F.HEAD, F.STREAM
local type, error, setmetatable, rawget, rawset, tostring, pcall, tonumber =
  type, error, setmetatable, rawget, rawset, tostring, pcall, tonumber
local lower, find, sub, gsub, match =
  string.lower, string.find, string.sub, string.gsub, string.match
local is_error, new_error, now = tide.is_error, tide.error, tide.now

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

-- ---- the plain-HTTP path ----------------------------------------------------

local POOL_MAX = 256  -- idle connections kept, in all (curl's cache size)
local URLS_MAX = 512  -- parsed URLs remembered

-- curl honours these; with any of them set, every request goes through
-- curl, which also applies no_proxy.
local proxied = false
for _, name in ipairs{"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"} do
  local v = os.getenv(name)
  if v and v ~= "" then proxied = true end
end

-- parse_url(url) -> {host=, port=, target=, hosthdr=, key=}, or false when
-- the plain path does not take the URL (not http://, user info, a target
-- with bytes curl would escape, a bad port): curl then handles it.
local urls, nurls = {}, 0
local function parse_url(url)
  local u = urls[url]
  if u ~= nil then return u end
  u = false
  if lower(sub(url, 1, 7)) == "http://" then
    local auth, rest = match(url, "^([^/?#]*)(.*)$", 8)
    local host, port
    if not find(auth, "@", 1, true) then
      if sub(auth, 1, 1) == "[" then
        host, port = match(auth, "^(%[[%x:.]+%])(.*)$")
      else
        host, port = match(auth, "^([^:]+)(.*)$")
      end
    end
    if host and (port == "" or match(port, "^:%d+$")) then
      local pnum = port == "" and 80 or tonumber(sub(port, 2))
      local target = gsub(rest, "#.*$", "")
      if sub(target, 1, 1) ~= "/" then target = "/" .. target end
      if pnum >= 1 and pnum <= 65535
         and not find(target, "[%z\1-\32\127-\255]") then
        u = {
          host = sub(host, 1, 1) == "[" and sub(host, 2, -2) or host,
          port = pnum, target = target,
          hosthdr = pnum == 80 and host or (host .. ":" .. pnum),
          key = lower(host) .. ":" .. pnum,
        }
      end
    end
  end
  if nurls >= URLS_MAX then urls, nurls = {}, 0 end
  urls[url] = u
  nurls = nurls + 1
  return u
end

-- The pool: idle connections per "host:port", reused last in, first out
-- (the most recently used one is the least likely to have timed out).
local idle, nidle = {}, 0

local function checkout(key)
  local list = idle[key]
  if not list then return nil end
  for n = #list, 1, -1 do
    local conn = list[n]
    list[n] = nil
    nidle = nidle - 1
    -- The server may have closed it (or sent something) while it waited.
    if fast_idle(conn) then return conn end
    fast_close(conn)
  end
end

local function checkin(key, conn, keep)
  if keep and nidle < POOL_MAX and fast_idle(conn) then
    local list = idle[key]
    if not list then
      list = {}
      idle[key] = list
    end
    list[#list + 1] = conn
    nidle = nidle + 1
  else
    fast_close(conn)
  end
end

-- Raise err as the request's own error (op http.request, path url); name
-- resolution failures are ENOTFOUND, as on the curl path.
local function raise_as(err, url)
  if is_error(err) and err.code ~= "ECANCELED" and err.code ~= "ETIMEDOUT"
     and err.op ~= "http.request" then
    local code = err.code
    if find(code, "^EAI_") then code = "ENOTFOUND" end
    err = new_error(code, err.message, {op = "http.request", path = url})
  end
  error(err, 0)
end

-- Send one request: on a pooled connection if there is one, else a new
-- one.  A reused connection that ends before any byte of a response (the
-- server closed it while idle) is retried once on a new connection, as
-- curl does.  Returns the connection and exchange's results.
local function send(u, url, head, body, flags, max_size)
  local conn = checkout(u.key)
  local reused = conn ~= nil
  while true do
    if not conn then
      local ok, s = pcall(connect_tcp, u.host, u.port)
      if not ok then raise_as(s, url) end
      conn = fast_conn(s)
    end
    local ok, status, rbody, rhead, version, keep =
      pcall(exchange, conn, url, head, body, flags, max_size)
    if not ok then
      fast_close(conn)
      error(status, 0)
    end
    if status then return conn, status, rbody, rhead, version, keep end
    fast_close(conn)
    if not reused then
      error(new_error(rbody, "the server closed the connection without a "
                      .. "response", {op = "http.request", path = url}), 0)
    end
    conn, reused = nil, false
  end
end

local function timed_out(seconds, url)
  return new_error("ETIMEDOUT",
                   ("the request timed out after %g s"):format(seconds),
                   {op = "http.request", path = url})
end

-- The body of a streamed response on the plain path: the Response's
-- _stream, with read/close/_buffered as the curl path's HttpStream.
local FastStream = {}
FastStream.__index = FastStream
FastStream.__name = "tide.HttpFastStream"

function FastStream:read(n)
  if n ~= nil and (math.type(n) ~= "integer" or n < 0) then
    error("bad argument #1 to 'read' (must be a non-negative integer)", 2)
  end
  local conn = self._conn
  if not conn then
    if self._err then error(self._err, 0) end
    if self._done then return nil end
    error("response stream is closed", 2)
  end
  local ok, data, keep
  local deadline = self._deadline
  if deadline then
    local left = deadline - now()
    ok, data, keep = pcall(tide.timeout, left > 0 and left or 0, fast_read,
                           conn, self._url, n or 0)
    if not ok and is_error(data, "ETIMEDOUT") and data.op == "tide.timeout"
       then
      data = timed_out(self._timeout, self._url)
    end
  else
    ok, data, keep = pcall(fast_read, conn, self._url, n or 0)
  end
  if not ok then
    if is_error(data, "ECANCELED") then
      -- The reader went away; the response stays open for another.
      fast_unhold(conn)
    elseif is_error(data) and self._conn then
      self._conn, self._err = nil, data
      fast_close(conn)
    end
    error(data, 0)
  end
  if data == nil then
    self._conn, self._done = nil, true
    checkin(self._key, conn, keep)
  end
  return data
end

function FastStream:close()
  local conn = self._conn
  if conn then
    self._conn = nil
    fast_close(conn)
  end
end

function FastStream:_buffered()
  return self._conn and F.buffered(self._conn) or 0
end

local REDIRECT = {[301] = true, [302] = true, [303] = true, [307] = true,
                  [308] = true}

-- path (with its query) without "." and ".." segments (RFC 3986, 5.2.4).
local function remove_dots(path)
  local q = find(path, "?", 1, true)
  local query = q and sub(path, q) or ""
  if q then path = sub(path, 1, q - 1) end
  if not find(path, "/%.%.?/") and not find(path, "/%.%.?$") then
    return path .. query
  end
  local segs, n, last = {}, 0, nil
  for seg in (sub(path, 2) .. "/"):gmatch("(.-)/") do
    if seg == ".." then
      if n > 0 then
        segs[n] = nil
        n = n - 1
      end
    elseif seg ~= "." then
      n = n + 1
      segs[n] = seg
    end
    last = seg
  end
  -- a path ending in "." or ".." names a directory
  local trail = (last == "." or last == "..") and n > 0 and "/" or ""
  return "/" .. table.concat(segs, "/") .. trail .. query
end

-- The absolute URL of a Location value relative to base.
local function resolve(base, loc)
  if find(loc, "^%a[%w+.-]*:") then return loc end
  local scheme, auth, path = match(base, "^(%a[%w+.-]*:)//([^/?#]*)([^?#]*)")
  if sub(loc, 1, 2) == "//" then return scheme .. loc end
  loc = gsub(loc, "#.*$", "")
  if sub(loc, 1, 1) ~= "/" then
    if sub(loc, 1, 1) == "?" then
      loc = (path ~= "" and path or "/") .. loc
    else
      loc = (match(path, "^(.*/)") or "/") .. loc
    end
  end
  return scheme .. "//" .. auth .. remove_dots(loc)
end

local function drain(conn, url)
  while fast_read(conn, url, 0) do end
end

-- The plain path of request(): results as C.request's.
local function fast_request(u, url, method, body, opts, headers, max_redirs,
                            max_size, follow, stream, deadline, timeout)
  local orig, nred = url, 0
  while true do
    local blen = (body or method == "POST") and #(body or "") or nil
    local head = fast_head(method, u.target, u.hosthdr, headers, blen)
    local flags = (method == "HEAD" and XF_HEAD or 0)
                  + (stream and XF_STREAM or 0)
    local conn, status, rbody, rhead, version, keep =
      send(u, orig, head, body, flags, max_size)
    local loc
    if follow and REDIRECT[status] then loc = parse_headers(rhead).location end
    if not loc or loc == "" then
      if stream then
        return status, nil, rhead, version, url, setmetatable({
          _conn = conn, _key = u.key, _url = orig, _deadline = deadline,
          _timeout = timeout}, FastStream)
      end
      checkin(u.key, conn, keep)
      return status, rbody, rhead, version, url
    end
    if stream then
      local ok, err = pcall(drain, conn, orig)
      if not ok then
        fast_close(conn)
        error(err, 0)
      end
    end
    checkin(u.key, conn, keep)
    if nred >= max_redirs then
      error(new_error("EREDIRECT", ("maximum (%d) redirects followed")
                      :format(max_redirs), {op = "http.request", path = orig}),
            0)
    end
    nred = nred + 1
    url = resolve(url, loc)
    -- As curl by default: 301 and 302 turn a POST into a GET, 303 turns
    -- everything but HEAD into a GET.
    if (status == 303 and method ~= "HEAD")
       or ((status == 301 or status == 302) and method == "POST") then
      method, body = "GET", nil
    end
    u = parse_url(url)
    if not u and not find(lower(url), "^https?://") then
      -- What curl reports as an unsupported protocol (ftp:, or a
      -- Location that is no URL at all).
      error(new_error("EPROTO", "redirect to an unsupported URL: " .. url,
                      {op = "http.request", path = orig}), 0)
    end
    if not u then
      -- https:// (or anything else curl does): curl takes it from here,
      -- with the redirects that are left.
      local o = {}
      for k, v in pairs(opts or {}) do o[k] = v end
      o.max_redirects = max_redirs - nred
      if deadline then
        local left = deadline - now()
        o.timeout = left > 0.001 and left or 0.001
      end
      return request(url, method, body, o)
    end
  end
end

-- request() for both paths: the plain path when it can take the URL.
local function dispatch(url, method, body, opts)
  local u = not proxied and parse_url(url)
  if not u then return request(url, method, body, opts) end
  local headers, timeout, max_redirs, max_size, follow, stream =
    nil, 0, 20, 0, true, false
  if opts ~= nil then
    headers, timeout, max_redirs, max_size, follow, stream = check_opts(opts)
  end
  if timeout > 0 then
    local r = table.pack(pcall(tide.timeout, timeout, fast_request, u, url,
                               method, body, opts, headers, max_redirs,
                               max_size, follow, stream, now() + timeout,
                               timeout))
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    if is_error(err, "ETIMEDOUT") and err.op == "tide.timeout" then
      err = timed_out(timeout, url)
    end
    error(err, 0)
  end
  return fast_request(u, url, method, body, opts, headers, max_redirs,
                      max_size, follow, stream)
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
  return wrap(dispatch(url, "GET", nil, opts))
end

-- post(url, body [, opts]) -> Response
function M.post(url, body, opts)
  check_url(url, "post")
  if type(body) ~= "string" then
    error(("bad argument #2 to 'post' (string expected, got %s)")
          :format(type(body)), 2)
  end
  check_opts(opts, 3, "post")
  return wrap(dispatch(url, "POST", body, opts))
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
  return wrap(dispatch(url, method and method:upper() or "GET", body,
                       opts))
end

M.Response = Response
M.Headers = Headers
M.parse_headers = parse_headers
M.curl_version = C.curl_version
-- _stats() -> what the client holds, for specs that check nothing is left
-- behind: the curl path's counters (transfers, sockets, pooled easy
-- handles, waiting tasks, live transfers, requests), with the plain path's
-- busy connections counted in live and its waiting tasks in waiting, and
-- its own fast_open (connections), fast_idle (in the pool), fast_requests.
function M._stats()
  local st = C._stats()
  local open, held, nreq = F.stats()
  st.curl_requests = st.requests
  st.fast_open, st.fast_idle, st.fast_requests = open, nidle, nreq
  st.live = st.live + (open - nidle)
  st.waiting = st.waiting + held
  st.requests = st.requests + nreq
  return st
end

return M
