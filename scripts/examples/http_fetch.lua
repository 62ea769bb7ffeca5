-- Fetch a list of URLs with two workers taking them from a queue: the
-- classic asyncio example, on tide.queue and tide.http.
--
--   tide scripts/examples/http_fetch.lua https://www.debian.org https://www.lua.org
--   tide scripts/examples/http_fetch.lua     # no URLs: a self-contained run
--
-- With no URLs it starts its own tide.http server on a free loopback port,
-- whose pages take a while to answer, and fetches five of them: the two
-- workers overlap their waits, so the run takes about half the sum of the
-- delays.  Environment: FETCH_WORKERS (default 2), FETCH_UNIT (seconds per
-- delay unit of the local pages, default 0.1).
local http = require "tide.http"
local Queue = require "tide.queue"

local nworkers = tonumber(os.getenv("FETCH_WORKERS") or "2")
local unit = tonumber(os.getenv("FETCH_UNIT") or "0.1")

local urls = {}
for i = 1, #arg do urls[i] = arg[i] end

local server
if #urls == 0 then
  server = http.serve{port = 0, handler = function(req)
    local wait = tonumber(req.query.delay) or 0
    tide.sleep(wait)
    return ("%s answered after %.2f s\n"):format(req.path, wait)
  end}
  local base = "http://127.0.0.1:" .. server.port
  for i, units in ipairs{3, 2, 1, 2, 1} do
    urls[i] = ("%s/page%d?delay=%g"):format(base, i, units * unit)
  end
  print(("no URLs given: fetching %d pages from a local server at %s")
        :format(#urls, base))
end

local queue = Queue.new()
for _, url in ipairs(urls) do queue:put(url) end
queue:close()  -- the workers take what is queued, then their loops end

local start = tide.now()
local fetched, failed = 0, 0

local function worker(name)
  for url in queue:iter() do
    local t0 = tide.now()
    local ok, r = pcall(http.get, url, {timeout = 30})
    if ok then
      fetched = fetched + 1
      print(("%s  %d  %7d bytes  %5.2f s  %s"):format(
        name, r.status, #r.body, tide.now() - t0, url))
    else
      failed = failed + 1
      print(("%s  failed: %s  %s"):format(name, tostring(r), url))
    end
  end
end

local workers = {}
for i = 1, nworkers do
  workers[i] = function() worker("worker-" .. i) end
end
tide.gather(workers)

print(("fetched %d of %d URLs in %.2f s with %d workers%s"):format(
  fetched, #urls, tide.now() - start, nworkers,
  failed > 0 and (", " .. failed .. " failed") or ""))
if server then
  server:close()
  server:wait()
end
