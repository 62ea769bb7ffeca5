local Queue = require "tide.queue"

-- The error a call raises (fails the test if it does not raise).
local function err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- Let every ready task run until it waits again.
local function settle()
  for _ = 1, 3 do tide.sleep(0) end
end

describe("tide.queue", function()
  it("exports new, lifo and priority", function()
    assert.is_function(Queue.new)
    assert.is_function(Queue.lifo)
    assert.is_function(Queue.priority)
  end)

  describe("FIFO", function()
    it("returns items in order and reports its size", function()
      local q = Queue.new(3)
      assert.is_true(q:empty())
      assert.is_false(q:full())
      assert.equal(3, q:maxsize())
      q:put("a")
      q:put(false)
      q:put(3)
      assert.equal(3, q:size())
      assert.equal(3, #q)
      assert.is_true(q:full())
      assert.equal("a", q:get())
      assert.equal(false, q:get())
      assert.equal(3, q:get())
      assert.is_true(q:empty())
    end)

    it("is unbounded with maxsize 0, nil or negative", function()
      for _, m in ipairs({0, -5}) do
        local q = Queue.new(m)
        for i = 1, 5000 do q:put(i) end
        assert.is_false(q:full())
        assert.equal(5000, q:size())
      end
      assert.equal(0, Queue.new():maxsize())
    end)

    it("keeps order while its ring wraps and grows", function()
      local q = Queue.new()
      local nextput, nextget = 1, 1
      for round = 1, 50 do
        for _ = 1, round * 3 do q:put(nextput); nextput = nextput + 1 end
        for _ = 1, round * 2 do
          assert.equal(nextget, q:get())
          nextget = nextget + 1
        end
      end
      while not q:empty() do
        assert.equal(nextget, q:get_nowait())
        nextget = nextget + 1
      end
      assert.equal(nextput, nextget)
    end)

    it("keeps order in a small bounded ring", function()
      for _, size in ipairs({1, 3, 7, 1024}) do
        local q = Queue.new(size)
        local nextput, nextget = 1, 1
        for round = 1, 40 do
          while not q:full() and nextput <= round * 11 do
            q:put_nowait(nextput)
            nextput = nextput + 1
          end
          for _ = 1, math.min(q:size(), round % 5 + 1) do
            assert.equal(nextget, q:get())
            nextget = nextget + 1
          end
        end
        while not q:empty() do
          assert.equal(nextget, q:get())
          nextget = nextget + 1
        end
        assert.equal(nextput, nextget)
      end
    end)

    it("grows a large bounded ring up to its bound", function()
      local q = Queue.new(5000)
      for i = 1, 5000 do q:put_nowait(i) end
      assert.is_true(q:full())
      assert.equal("EAGAIN", err_of(q.put_nowait, q, 0).code)
      for i = 1, 5000 do assert.equal(i, q:get_nowait()) end
    end)

    it("rejects nil items and bad arguments", function()
      local q = Queue.new(1)
      assert.has_error(function() q:put(nil) end,
        "bad argument #1 to 'put' (nil cannot be put in a queue)")
      assert.has_error(function() q:put() end)
      assert.has_error(function() q:put_nowait(nil) end)
      assert.is_true(q:empty())
      assert.has_error(function() q.put({}, 1) end,
        "bad argument #1 to 'put' (tide.Queue expected, got table)")
      assert.has_error(function() q.get(io.stdout) end)
      assert.has_error(function() Queue.new("x") end)
      assert.has_error(function() Queue.new(1.5) end)
      assert.has_error(function() Queue.priority(0, 42) end)
    end)

    it("is safe against a tampered object", function()
      local q = Queue.new(2)
      q:put(1)
      assert.equal("tide.Queue", getmetatable(q).__name)
      for k in pairs(q) do
        if type(k) == "userdata" then rawset(q, k, io.stdout) end
      end
      local err = err_of(q.size, q)
      assert.matches("invalid tide.Queue", err)
      assert.has_error(function() return #q end)
      -- the per-item methods are bound to the queue and still work
      assert.equal(1, q:get())
      local other = Queue.new()
      assert.has_error(function() q.put(other, 1) end)
      assert.has_error(function() q.size(setmetatable({}, getmetatable(q))) end)
    end)

    it("raises EAGAIN from the _nowait calls", function()
      local q = Queue.new(1)
      local err = err_of(q.get_nowait, q)
      assert.equal("EAGAIN", err.code)
      assert.equal("queue.get_nowait", err.op)
      q:put_nowait(1)
      err = err_of(q.put_nowait, q, 2)
      assert.equal("EAGAIN", err.code)
      assert.equal(1, q:size())
      assert.equal(1, q:get_nowait())
    end)

    it("makes put wait while full", function()
      local q = Queue.new(1)
      q:put(1)
      local done = false
      local t = tide.spawn(function() q:put(2); done = true end)
      settle()
      assert.is_false(done)
      assert.equal("waiting", t.status)
      assert.equal(1, q:get())
      -- the waiting putter's item took the freed slot at once
      assert.equal(1, q:size())
      t:await()
      assert.is_true(done)
      assert.equal(2, q:get())
    end)

    it("makes get wait while empty", function()
      local q = Queue.new()
      local t = tide.spawn(function() return q:get() end)
      settle()
      assert.equal("waiting", t.status)
      q:put("x")
      -- handed to the getter directly, never stored
      assert.equal(0, q:size())
      assert.equal("x", t:await())
    end)

    it("serves waiting getters first come, first served", function()
      local q = Queue.new()
      local got = {}
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = tide.spawn(function() got[i] = q:get() end)
        settle()
      end
      for i = 1, 5 do q:put(i * 10) end
      tide.gather(tasks)
      assert.same({10, 20, 30, 40, 50}, got)
    end)

    it("serves waiting putters first come, first served", function()
      local q = Queue.new(1)
      q:put(0)
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = tide.spawn(function() q:put(i) end)
        settle()
      end
      -- a putter that comes later queues behind, even right after a get
      local got = {}
      for _ = 1, 5 do got[#got + 1] = q:get() end
      tide.gather(tasks)
      assert.same({0, 1, 2, 3, 4}, got)
    end)

    it("does not let a new put overtake waiting putters", function()
      local q = Queue.new(1)
      q:put("first")
      local t = tide.spawn(function() q:put("second") end)
      settle()
      assert.equal("first", q:get())
      -- the slot went to the waiting putter: a put_nowait finds no room
      assert.equal("EAGAIN", err_of(q.put_nowait, q, "third").code)
      assert.equal("second", q:get())
      t:await()
    end)
  end)

  describe("cancellation and timeouts", function()
    it("a cancelled get loses no item", function()
      local q = Queue.new()
      local t1 = tide.spawn(function() return q:get() end)
      local t2 = tide.spawn(function() return q:get() end)
      settle()
      t1:cancel()
      settle()
      assert.equal("cancelled", t1.status)
      q:put("a")
      q:put("b")
      assert.equal("a", t2:await())
      assert.equal(1, q:size())
      assert.equal("b", q:get())
    end)

    it("a cancelled put takes no slot and adds nothing", function()
      local q = Queue.new(1)
      q:put(1)
      local t1 = tide.spawn(function() q:put("cancelled") end)
      local t2 = tide.spawn(function() q:put(2) end)
      settle()
      t1:cancel("stop")
      settle()
      local err = err_of(t1.await, t1)
      assert.equal("ECANCELED", err.code)
      assert.matches("stop", err.message)
      assert.equal(1, q:get())
      t2:await()
      assert.equal(2, q:get())
      assert.is_true(q:empty())
      assert.equal("EAGAIN", err_of(q.get_nowait, q).code)
    end)

    it("a getter cancelled after the hand-off keeps its item", function()
      local q = Queue.new()
      local got
      local t = tide.spawn(function()
        got = q:get()
        tide.sleep(10)
      end)
      settle()
      q:put("mine")
      t:cancel() -- woken, not resumed yet
      local err = err_of(t.await, t)
      assert.equal("ECANCELED", err.code)
      assert.equal("mine", got)
      assert.is_true(q:empty())
    end)

    it("a putter cancelled after the hand-off has put its item", function()
      local q = Queue.new(1)
      q:put(1)
      local returned = false
      local t = tide.spawn(function()
        q:put(2)
        returned = true
        tide.sleep(10)
      end)
      settle()
      assert.equal(1, q:get())
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      assert.is_true(returned)
      assert.equal(2, q:get_nowait())
    end)

    it("a timed-out get leaves the queue intact", function()
      local q = Queue.new(2)
      local err = err_of(tide.timeout, 0.02, q.get, q)
      assert.equal("ETIMEDOUT", err.code)
      q:put("later")
      assert.equal(1, q:size())
      assert.equal("later", q:get())
    end)

    it("a timed-out put adds nothing", function()
      local q = Queue.new(1)
      q:put(1)
      local err = err_of(tide.timeout, 0.02, q.put, q, 2)
      assert.equal("ETIMEDOUT", err.code)
      assert.equal(1, q:get())
      assert.is_true(q:empty())
      q:put(3) -- the slot is free
      assert.equal(3, q:get())
    end)

    it("works with wait_for", function()
      local q = Queue.new()
      local t = tide.spawn(function() return q:get() end)
      local err = err_of(tide.wait_for, t, 0.02)
      assert.equal("ETIMEDOUT", err.code)
      assert.is_true(t:cancelled())
      q:put(1)
      assert.equal(1, q:size())
      local r = tide.wait_for(function() return q:get() end, 1)
      assert.equal(1, r)
    end)

    it("raises a pending cancel before it waits", function()
      local q = Queue.new()
      local t = tide.spawn(function()
        pcall(tide.sleep, 10) -- swallow the first cancel
        tide.current():cancel()
        return q:get()
      end)
      settle()
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      q:put(1)
      assert.equal(1, q:size())
    end)

    it("get inside a user coroutine suspends the task", function()
      local q = Queue.new()
      local gen = coroutine.wrap(function()
        while true do coroutine.yield(q:get() * 2) end
      end)
      local t = tide.spawn(function() return gen(), gen() end)
      settle()
      q:put(1)
      q:put(2)
      assert.same({2, 4}, {t:await()})
    end)

    it("a cancelled get inside a user coroutine leaves nothing", function()
      local q = Queue.new()
      local t = tide.spawn(function()
        local gen = coroutine.wrap(function() return q:get() end)
        return gen()
      end)
      settle()
      t:cancel()
      assert.equal("ECANCELED", err_of(t.await, t).code)
      q:put(5)
      assert.equal(5, q:get_nowait())
    end)

    it("cannot wait outside a task or where it cannot yield", function()
      local q = Queue.priority(0, function(a, b)
        tide.sleep(0)
        return a < b
      end)
      q:put(1)
      assert.matches("cannot suspend", err_of(q.put, q, 2))
      -- a stock lua5.4 host: no task is running
      local build = os.getenv("TIDE_BUILD") or (helper.root .. "/build")
      -- a sanitizer build needs its runtime loaded first
      local _, libs = helper.sh("ldd " .. helper.bin)
      local asan = libs:match("(/%S*libasan%.so[%.%d]*)")
      local pre = asan and ("LD_PRELOAD=" .. asan ..
                            " ASAN_OPTIONS=detect_leaks=0 ") or ""
      local status, out = helper.sh(pre .. "lua5.4 -e 'package.cpath=\"" .. build ..
        "/?.so;\"..package.cpath; require \"tide\"; " ..
        "local q = require(\"tide.queue\").new(); q:put(1); " ..
        "print(q:get()); print(select(2, pcall(q.get, q)))'")
      assert.equal(0, status, out)
      assert.equal("1\nqueue.get: not inside a task (start one with " ..
                   "tide.run or tide.spawn)\n", out)
    end)
  end)

  describe("random cancellations", function()
    -- Producers and consumers are cancelled at random points; every item
    -- whose put returned is received exactly once, and nothing else is.
    for _, kind in ipairs({"new", "lifo", "priority"}) do
      it("lose and duplicate no item (" .. kind .. ")", function()
        math.randomseed(42)
        local q = Queue[kind](3)
        local put_ok, got, nextid = {}, {}, 0
        local function producer()
          while true do
            nextid = nextid + 1
            local id = nextid
            q:put(id)
            put_ok[id] = true
            if math.random() < 0.3 then tide.sleep(0) end
          end
        end
        local function consumer()
          while true do
            local v = q:get()
            assert(not got[v], "item received twice")
            got[v] = true
            if math.random() < 0.3 then tide.sleep(0) end
          end
        end
        local tasks = {}
        for i = 1, 8 do tasks[i] = tide.spawn(i <= 4 and producer or consumer) end
        for _ = 1, 200 do
          tide.sleep(0)
          local i = math.random(#tasks)
          tasks[i]:cancel()
          tide.sleep(0)
          if tasks[i]:done() then
            assert.equal("ECANCELED", err_of(tasks[i].await, tasks[i]).code)
            tasks[i] = tide.spawn(i <= 4 and producer or consumer)
          end
        end
        for _, t in ipairs(tasks) do t:cancel() end
        for _, t in ipairs(tasks) do pcall(t.await, t) end
        while not q:empty() do
          local v = q:get()
          assert(not got[v], "item received twice")
          got[v] = true
        end
        local n = 0
        for id in pairs(put_ok) do
          assert(got[id], "item lost")
          n = n + 1
        end
        for id in pairs(got) do assert(put_ok[id], "item from nowhere") end
        assert.is_true(n > 100)
      end)
    end
  end)

  describe("close", function()
    it("drains to getters, then raises ECLOSED", function()
      local q = Queue.new()
      q:put(1)
      q:put(2)
      q:close()
      assert.is_true(q:closed())
      local err = err_of(q.put, q, 3)
      assert.equal("ECLOSED", err.code)
      assert.equal("ECLOSED", err_of(q.put_nowait, q, 3).code)
      assert.equal(1, q:get())
      assert.equal(2, q:get_nowait())
      assert.equal("ECLOSED", err_of(q.get, q).code)
      assert.equal("ECLOSED", err_of(q.get_nowait, q).code)
      q:close() -- idempotent
    end)

    it("wakes waiting getters and putters with ECLOSED", function()
      local q = Queue.new()
      local g = tide.spawn(function() return q:get() end)
      local q2 = Queue.new(1)
      q2:put(1)
      local p = tide.spawn(function() q2:put(2) end)
      settle()
      q:close()
      q2:close()
      assert.equal("ECLOSED", err_of(g.await, g).code)
      assert.equal("ECLOSED", err_of(p.await, p).code)
      -- the closed putter's item never entered the queue
      assert.equal(1, q2:get())
      assert.equal("ECLOSED", err_of(q2.get, q2).code)
    end)

    it("works as a to-be-closed variable", function()
      local q
      do
        local qq <close> = Queue.new()
        q = qq
      end
      assert.is_true(q:closed())
    end)

    it("ends q:iter() once drained", function()
      local q = Queue.new(2)
      local producer = tide.spawn(function()
        for i = 1, 10 do q:put(i) end
        q:close()
      end)
      local got = {}
      for item in q:iter() do got[#got + 1] = item end
      producer:await()
      assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got)
    end)

    it("ends q:iter() of a waiting consumer when closed", function()
      local q = Queue.new()
      local t = tide.spawn(function()
        local n = 0
        for _ in q:iter() do n = n + 1 end
        return n
      end)
      settle()
      q:put("a")
      settle()
      q:close()
      assert.equal(1, t:await())
    end)
  end)

  describe("task_done and join", function()
    it("join waits until every item is done", function()
      local q = Queue.new()
      q:join() -- nothing put: returns at once
      for i = 1, 3 do q:put(i) end
      local joined = false
      local j = tide.spawn(function() q:join(); joined = true end)
      for _ = 1, 3 do
        q:get()
        settle()
        assert.is_false(joined)
        q:task_done()
      end
      j:await()
      assert.is_true(joined)
    end)

    it("counts items handed to waiting getters", function()
      local q = Queue.new()
      local t = tide.spawn(function() return q:get() end)
      settle()
      q:put(1)
      t:await()
      local j = tide.spawn(function() q:join() end)
      settle()
      assert.equal("waiting", j.status)
      q:task_done()
      j:await()
    end)

    it("raises when task_done is called too often", function()
      local q = Queue.new()
      q:put(1)
      q:get()
      q:task_done()
      assert.has_error(function() q:task_done() end,
        "queue:task_done() called more times than items were put")
    end)

    it("a cancelled join leaves the queue usable", function()
      local q = Queue.new()
      q:put(1)
      local j = tide.spawn(function() q:join() end)
      settle()
      j:cancel()
      assert.equal("ECANCELED", err_of(j.await, j).code)
      assert.equal("ETIMEDOUT", err_of(tide.timeout, 0.01, q.join, q).code)
      q:get()
      q:task_done()
      q:join()
    end)
  end)

  describe("LIFO", function()
    it("returns the newest item first", function()
      local q = Queue.lifo(3)
      for i = 1, 3 do q:put(i) end
      assert.is_true(q:full())
      assert.equal(3, q:get())
      q:put(4)
      assert.same({4, 2, 1}, {q:get(), q:get(), q:get()})
    end)

    it("waits and hands off like a FIFO", function()
      local q = Queue.lifo(1)
      q:put("a")
      local p = tide.spawn(function() q:put("b") end)
      settle()
      assert.equal("a", q:get())
      p:await()
      assert.equal("b", q:get())
      local g = tide.spawn(function() return q:get() end)
      settle()
      q:put("c")
      assert.equal("c", g:await())
    end)
  end)

  describe("priority", function()
    it("returns the smallest item first", function()
      local q = Queue.priority()
      local input = {5, 3, 9, 1, 7, 2, 8, 6, 4, 0}
      for _, v in ipairs(input) do q:put(v) end
      local out = {}
      while not q:empty() do out[#out + 1] = q:get() end
      assert.same({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, out)
    end)

    it("sorts a random sequence", function()
      local q = Queue.priority()
      local input = {}
      math.randomseed(7)
      for i = 1, 500 do input[i] = math.random(1, 100) end
      for i = 1, 500 do q:put(input[i]) end
      table.sort(input)
      for i = 1, 500 do assert.equal(input[i], q:get()) end
    end)

    it("uses less and is stable among equal priorities", function()
      local q = Queue.priority(0, function(a, b) return a.p < b.p end)
      local names = {"a", "b", "c", "d", "e", "f"}
      local prios = {2, 1, 2, 1, 0, 2}
      for i = 1, 6 do q:put({p = prios[i], name = names[i]}) end
      local out = {}
      while not q:empty() do out[#out + 1] = q:get().name end
      assert.same({"e", "b", "d", "a", "c", "f"}, out)
    end)

    it("a failing less leaves the heap intact", function()
      local q = Queue.priority(0, function(a, b)
        if a == "bad" or b == "bad" then error("cannot compare") end
        return a < b
      end)
      for _, v in ipairs({5, 1, 3}) do q:put(v) end
      assert.matches("cannot compare", err_of(q.put, q, "bad"))
      assert.equal(3, q:size())
      assert.same({1, 3, 5}, {q:get(), q:get(), q:get()})
      -- the default `<` raises for mixed types, and changes nothing
      local d = Queue.priority()
      d:put(1)
      d:put(2)
      assert.has_error(function() d:put("x") end)
      assert.same({1, 2}, {d:get(), d:get()})
    end)

    it("gives a waiting putter the error of its item", function()
      local q = Queue.priority(2, function(a, b)
        if a == "bad" or b == "bad" then error("cannot compare") end
        return a < b
      end)
      q:put(1)
      q:put(3)
      local bad = tide.spawn(function() q:put("bad") end)
      settle()
      local good = tide.spawn(function() q:put(2) end)
      settle()
      assert.equal(1, q:get())
      -- the bad item was refused: the slot went to the next putter
      assert.matches("cannot compare", err_of(bad.await, bad))
      good:await()
      assert.same({2, 3}, {q:get(), q:get()})
      assert.is_true(q:empty())
    end)

    it("refills from a waiting putter in priority order", function()
      local q = Queue.priority(2)
      q:put(5)
      q:put(3)
      local p = tide.spawn(function() q:put(1) end)
      settle()
      -- the smallest item in the queue, then the putter's item enters
      assert.equal(3, q:get())
      p:await()
      assert.same({1, 5}, {q:get(), q:get()})
    end)
  end)

  it("prints a useful tostring", function()
    local q = Queue.new(4)
    q:put(1)
    assert.equal("Queue (1/4)", tostring(q))
    assert.equal("LifoQueue (0)", tostring(Queue.lifo()))
    q:close()
    assert.equal("Queue (1/4) closed", tostring(q))
    assert.equal("PriorityQueue (0)", tostring(Queue.priority()))
  end)

  it("runs the benchmark's programs (tide and its peers)", function()
    local bench = helper.root .. "/scripts/bench/queue/"
    local function check(cmd)
      local status, out = helper.sh(cmd .. " 2000")
      assert.equal(0, status, out)
      assert.matches("items_per_s=%d+", out)
      assert.matches("ns_per_item=[%d.]+", out)
    end
    check(helper.bin .. " " .. bench .. "tide.lua")
    for _, p in ipairs({{"node", "node.js"}, {"python3", "asyncio.py"}}) do
      if helper.sh("command -v " .. p[1]) == 0 then
        check(p[1] .. " " .. bench .. p[2])
      end
    end
  end)

  it("runs the two-worker example", function()
    local status, out = helper.sh("TIDE_EXAMPLE_SCALE=0.01 " .. helper.bin ..
      " " .. helper.root .. "/scripts/examples/queue_workers.lua")
    assert.equal(0, status, out)
    local running, slept = {}, {}
    for name, d in out:gmatch("(worker%-%d) running: (%d+) units") do
      running[#running + 1] = name .. ":" .. d
    end
    for d in out:gmatch("slept (%d+) units, elapsed") do
      slept[#slept + 1] = tonumber(d)
    end
    -- the first two jobs go to the two workers in turn
    assert.same({"worker-1:15", "worker-2:10"}, {running[1], running[2]})
    assert.equal(4, #running, out)
    table.sort(slept)
    assert.same({2, 5, 10, 15}, slept)
    local total = tonumber(out:match("total: ([%d.]+) units"))
    assert.is_not_nil(total, out)
    -- about 17 units when the workers overlap; 32 if they ran in turn
    assert.is_true(total >= 16.5 and total < 30, out)
  end)

  it("runs the examples of docs/queue.md", function()
    local examples = require "tests.lua.support.doc_examples"
    local blocks = examples(helper.root .. "/docs/queue.md")
    assert.is_true(#blocks >= 4)
    for _, block in ipairs(blocks) do
      local status, out = helper.tide(block.code)
      assert(status == 0, ("docs/queue.md:%d: %s"):format(block.line, out))
    end
  end)
end)
