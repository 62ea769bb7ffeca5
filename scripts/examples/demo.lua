-- demo.lua: a short tour of tide.  `make demo` runs it.
-- TIDE_EXAMPLE_SCALE shortens every wait (the tests run it at 0.05).
local scale = tonumber(os.getenv("TIDE_EXAMPLE_SCALE") or 1)
local function step(title) print(("\n== %s"):format(title)) end
local t0 = tide.now()
local function at() return ("%.2fs"):format((tide.now() - t0) / scale) end

step("tasks run concurrently: an async call is just a call")
local function brew(what, seconds)
  tide.sleep(seconds * scale)
  print(at(), what .. " ready")
  return what
end
local tea = tide.spawn(brew, "tea", 0.3)
local coffee = tide.spawn(brew, "coffee", 0.2)
local a, b = tea:await(), coffee:await()
print(at(), "both done:", a, "and", b)

step("gather, race and deadlines")
local toast, eggs = tide.gather(
  function() return brew("toast", 0.1) end,
  function() return brew("eggs", 0.2) end)
print(at(), "gathered:", toast, eggs)
local winner = tide.race(
  function() return brew("bus", 0.3) end,
  function() return brew("bike", 0.1) end)
print(at(), "race won by:", winner)
local ok, err = pcall(tide.timeout, 0.1 * scale, brew, "slow cooker", 10)
print(at(), "timeout:", ok, err.code)

step("structured concurrency with tide.group")
tide.group(function(g)
  for i = 1, 3 do
    g:spawn(function() tide.sleep(i * 0.05 * scale) print(at(), "worker", i, "done") end)
  end
end)

step("futures bridge callback code")
local answer = tide.future()
tide.spawn(function() tide.sleep(0.05 * scale) answer:set(42) end)
local value = await(answer)
print(at(), "the answer is", value)

step("generators may wait too")
local ticks = coroutine.wrap(function()
  for i = 1, 3 do tide.sleep(0.05 * scale) coroutine.yield(i) end
end)
local t1, t2, t3 = ticks(), ticks(), ticks()
print(at(), "ticks:", t1, t2, t3)

step("queues: a producer and two workers")
local Queue = require "tide.queue"
local jobs = Queue.new(2)        -- bounded: the producer waits when full
local function worker(name)
  for job in jobs:iter() do      -- ends when the queue is closed and drained
    tide.sleep(job * 0.05 * scale)
    print(at(), name, "finished job", job)
  end
end
local workers = {tide.spawn(worker, "w1"), tide.spawn(worker, "w2")}
for job = 1, 4 do jobs:put(job) end
jobs:close()
tide.gather(workers)

step("locks with <close> guards")
local sync = require "tide.sync"
local lock, log = sync.Lock(), {}
tide.gather(function()
  local guard <close> = lock:acquire()
  log[#log + 1] = "a in"; tide.sleep(0.05 * scale); log[#log + 1] = "a out"
end, function()
  local guard <close> = lock:acquire()
  log[#log + 1] = "b in"; log[#log + 1] = "b out"
end)
print(at(), table.concat(log, ", "))

step("files without blocking the loop")
local fs = require "tide.fs"
local dir = fs.mkdtemp()
fs.write_file(dir .. "/greeting.txt", "hello from a file\n", {atomic = true})
print(at(), "read back:", (fs.read_file(dir .. "/greeting.txt"):gsub("\n$", "")))
fs.remove(dir, {recursive = true})

step("subprocesses")
local process = require "tide.process"
local r = process.run("tr", {"a-z", "A-Z"}, {input = "shout"})
print(at(), "tr says:", r.stdout, "exit", r.code)
local ok2, err2 = pcall(process.run, "sleep", {"10"}, {timeout = 0.1 * scale})
print(at(), "slow child:", ok2, err2.code)

step("TCP: an echo server and a client, one task per connection")
local net = require "tide.net"
local server = net.listen{host = "127.0.0.1", port = 0, handler = function(conn)
  for line in conn:lines() do conn:write(line:upper() .. "\n") end
end}
do
  local conn <close> = net.connect("127.0.0.1", server.port)
  conn:write("hello over tcp\n")
  print(at(), "echoed:", conn:read_line())
end
server:close()

step("HTTP: a server and concurrent client requests")
local http = require "tide.http"
local web = http.serve{host = "127.0.0.1", port = 0, handler = function(req)
  tide.sleep(0.1 * scale)          -- a slow page; other requests go on
  return {status = 200, headers = {["content-type"] = "application/json"},
          body = ('{"path": "%s"}'):format(req.path)}
end}
local base = "http://127.0.0.1:" .. web.port
local pages = tide.gather({
  function() return http.get(base .. "/one") end,
  function() return http.get(base .. "/two") end,
  function() return http.get(base .. "/three") end,
})
for _, r in ipairs(pages) do
  print(at(), r.status, r.headers["Content-Type"], r.body)
end
web:close()

print("\ndone in " .. at())
