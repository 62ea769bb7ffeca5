-- The benchmark harness (scripts/bench/lib.sh, run.sh) and the engine
-- benchmark's scripts (scripts/bench/core/): tiny sizes, checking that each
-- script prints its figures and that the harness computes medians, ratios
-- and verdicts right.  No timing is asserted here.

local root = helper.root
local core = root .. "/scripts/bench/core"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The key=value figures a benchmark script printed.
local function figures(out)
  local t = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do t[k] = tonumber(v) end
  return t
end

local function have(prog)
  return (helper.sh("command -v " .. prog .. " >/dev/null"))  == 0
end

-- Run a bash snippet with lib.sh sourced and bench_init done.
local function lib(code, env)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write("set -u\n. ", q(root .. "/scripts/bench/lib.sh"), "\n",
          "bench_init\n", code, "\n")
  f:close()
  local status, out = helper.sh((env or "") .. " TIDE=" .. q(helper.bin) ..
                                " bash " .. q(script))
  os.remove(script)
  return status, out
end

describe("bench core scripts", function()
  local tide = helper.bin .. " " .. q(core .. "/tide.lua")

  it("tide.lua spawn prints a positive rate", function()
    local status, out = helper.sh(tide .. " spawn 200")
    assert.equal(0, status, out)
    local f = figures(out)
    assert.is_true(f.spawn_await_per_s > 0, out)
    assert.is_true(f.spawn_await_ns > 0, out)
  end)

  it("tide.lua switch prints the cost of a switch", function()
    local status, out = helper.sh(tide .. " switch 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).switch_ns > 0, out)
  end)

  it("tide.lua sleep runs every sleeper and reports the wall time", function()
    local status, out = helper.sh(tide .. " sleep 50 0.01")
    assert.equal(0, status, out)
    local f = figures(out)
    assert.equal(50, f.sleepers)
    assert.is_true(f.sleep_wall_s >= 0.009, out)
  end)

  it("tide.lua sleep with no sleepers returns at once", function()
    local status, out = helper.sh(tide .. " sleep 0 5")
    assert.equal(0, status, out)
    assert.equal(0, figures(out).sleepers)
  end)

  it("tide.lua rejects an unknown workload", function()
    local status, out = helper.sh(tide .. " nope 10")
    assert.equal(2, status)
    assert.matches("usage:", out)
  end)

  it("the empty script runs and prints nothing", function()
    local status, out = helper.sh(helper.bin .. " " .. q(core .. "/empty.lua"))
    assert.equal(0, status)
    assert.equal("", out)
  end)

  it("floor.lua measures bare coroutines under lua5.4", function()
    if not have("lua5.4") then pending("lua5.4 is not installed") return end
    local lua = "lua5.4 " .. q(core .. "/floor.lua")
    local status, out = helper.sh(lua .. " spawn 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).spawn_await_per_s > 0, out)
    status, out = helper.sh(lua .. " switch 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).switch_ns > 0, out)
    status = helper.sh(lua .. " nope 1")
    assert.equal(2, status)
  end)

  it("node.js prints the same figures", function()
    if not have("node") then pending("node is not installed") return end
    local node = "node " .. q(core .. "/node.js")
    local status, out = helper.sh(node .. " spawn 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).spawn_await_per_s > 0, out)
    status, out = helper.sh(node .. " switch 200")
    assert.equal(0, status, out)
    local f = figures(out)
    assert.is_true(f.switch_ns > 0, out)
    assert.is_true(f.switch_immediate_ns > 0, out)
    status, out = helper.sh(node .. " sleep 20 0.01")
    assert.equal(0, status, out)
    assert.equal(20, figures(out).sleepers)
  end)

  it("asyncio.py prints the same figures despite its name", function()
    local py = have("/usr/bin/python3") and "/usr/bin/python3" or "python3"
    if not have(py) then pending("python3 is not installed") return end
    -- Run from the script's own folder, where a careless `import asyncio`
    -- would find the script itself.
    local cmd = "cd " .. q(core) .. " && " .. py .. " asyncio.py"
    local status, out = helper.sh(cmd .. " spawn 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).spawn_await_per_s > 0, out)
    status, out = helper.sh(cmd .. " switch 200")
    assert.equal(0, status, out)
    assert.is_true(figures(out).switch_ns > 0, out)
    status, out = helper.sh(cmd .. " sleep 20 0.01")
    assert.equal(0, status, out)
    assert.equal(20, figures(out).sleepers)
  end)
end)

describe("bench lib.sh", function()
  it("takes the median of the runs, odd and even", function()
    local status, out = lib([[
      BENCH_REPEAT=3
      bench_run odd -- sh -c 'n=$(cat "$0" 2>/dev/null || echo 0); n=$((n+1));
        echo $n >"$0"; case $n in 1) echo x=5;; 2) echo x=1;; 3) echo x=9;; esac' \
        "$BENCH_TMP/count"
      echo "odd=$(bench_get odd x)"
      BENCH_REPEAT=4
      rm -f "$BENCH_TMP/count"
      bench_run even -- sh -c 'n=$(cat "$0" 2>/dev/null || echo 0); n=$((n+1));
        echo $n >"$0"; echo x=$((n*10))' "$BENCH_TMP/count"
      echo "even=$(bench_get even x)"
      echo "missing=[$(bench_get even nope)][$(bench_get nobody x)]"
      echo "rss=$(bench_get even rss_kb) wall=$(bench_get even wall_s)"
    ]])
    assert.equal(0, status, out)
    assert.matches("odd=5\n", out)
    assert.matches("even=25\n", out)
    assert.matches("missing=%[%]%[%]", out)
    assert.matches("rss=%d+ wall=[%d.]+", out)
  end)

  it("ignores lines that are not figures", function()
    local status, out = lib([[
      BENCH_REPEAT=1
      bench_run a -- printf 'hello\nx=1.5e3\ny = 2\nz=abc\nw=-4\nv=\n'
      echo "x=$(bench_get a x) y=[$(bench_get a y)] z=[$(bench_get a z)] w=$(bench_get a w) v=[$(bench_get a v)]"
    ]])
    assert.equal(0, status, out)
    assert.matches("x=1500 y=%[%] z=%[%] w=%-4 v=%[%]", out)
  end)

  it("bench_calc propagates a missing value as empty", function()
    local status, out = lib([[
      echo "a=$(bench_calc '(x - y) * 2' x=5 y=1.5)"
      echo "b=[$(bench_calc '(x - y) * 2' x=5 y=)]"
    ]])
    assert.equal(0, status, out)
    assert.matches("a=7\n", out)
    assert.matches("b=%[%]", out)
  end)

  it("prints a table with ratios and verdicts", function()
    local status, out = lib([[
      bench_title "demo table"
      bench_row "rate" "ops/s" 2600000 node 2000000 "ratio>=1.3"
      bench_row "rate" "ops/s" 2500000 node 2000000 "ratio>=1.3"
      bench_row "cost" "ns" 120 floor 80 "ratio<=1.5"
      bench_row "cost" "ns" 121 floor 80 "ratio<=1.5"
      bench_row "size" "B" 700 node 1160 "value<=800"
      bench_row "gone" "ns" "" floor 80 "ratio<=1.5"
      bench_row "info" "ms" 1 lua 2
      bench_note "a note"
      bench_table
      echo "fails=$BENCH_FAILS"
      (bench_exit); echo "exit=$?"
      (BENCH_STRICT=1; bench_exit); echo "strict=$?"
    ]])
    assert.equal(0, status, out)
    assert.matches("== demo table", out, 1, true)
    assert.matches("tide/peer", out, 1, true)
    assert.matches("rate%s+ops/s%s+2.6M%s+node%s+2M%s+1.30x%s+>= 1.3x%s+PASS", out)
    assert.matches("rate%s+ops/s%s+2.5M%s+node%s+2M%s+1.25x%s+>= 1.3x%s+FAIL", out)
    assert.matches("cost%s+ns%s+120%s+floor%s+80%s+1.50x%s+<= 1.5x%s+PASS", out)
    assert.matches("cost%s+ns%s+121%s+floor%s+80%s+1.51x%s+<= 1.5x%s+FAIL", out)
    assert.matches("size%s+B%s+700%s+node%s+1160%s+0.60x%s+<= 800 B%s+PASS", out)
    assert.matches("gone%s+ns%s+n/a%s+floor%s+80%s+n/a%s+<= 1.5x%s+SKIP", out)
    assert.matches("info%s+ms%s+1%s+lua%s+2%s+0.50x\n", out)
    assert.matches("  a note", out, 1, true)
    assert.matches("fails=2\n", out)
    assert.matches("exit=0\n", out)
    assert.matches("strict=1\n", out)
  end)

  it("a command that fails is reported and counted, and the rest go on", function()
    local status, out = lib([[
      BENCH_REPEAT=2
      bench_run bad -- sh -c 'echo partial=1; echo broken >&2; exit 3'
      bench_run good -- sh -c 'echo x=1'
      echo "errors=$BENCH_ERRORS bad=[$(bench_get bad partial)] good=$(bench_get good x)"
      bench_exit
    ]])
    assert.equal(1, status, out)
    assert.matches("bench: bad failed", out, 1, true)
    assert.matches("| broken", out, 1, true)
    assert.matches("errors=1 bad=%[%] good=1", out)
  end)

  it("measures start-up", function()
    local status, out = lib([[
      BENCH_STARTUP_RUNS=3
      bench_startup t --pin -- "$TIDE" -e ''
      echo "ms=$(bench_get t startup_ms) errors=$BENCH_ERRORS"
      bench_startup f -- sh -c 'exit 1'
      echo "errors=$BENCH_ERRORS"
    ]])
    assert.equal(0, status, out)
    assert.matches("ms=[%d.e-]+ errors=0", out)
    assert.matches("errors=1\n", out)
  end)

  it("stops when tide is not built", function()
    local status, out = helper.sh("TIDE=/nonexistent/tide bash -c " ..
      q(". " .. root .. "/scripts/bench/lib.sh; bench_init; echo reached"))
    assert.equal(2, status)
    assert.matches("not built", out, 1, true)
    assert.is_nil(out:find("reached", 1, true))
  end)

  it("finds a peer named in the environment, or skips it", function()
    local status, out = lib([[echo "lua=[$LUA] node=[$NODE]"]],
                            "LUA=/bin/true NODE=/nonexistent/node")
    assert.equal(0, status, out)
    assert.matches("lua=%[/bin/true%]", out) -- command -v keeps the path
    assert.matches("node=%[%]", out)
    assert.matches("NODE=/nonexistent/node not found", out, 1, true)
  end)
end)

describe("bench run.sh", function()
  local run = q(root .. "/scripts/bench/run.sh")

  it("lists the workloads", function()
    local status, out = helper.sh(run .. " --help")
    assert.equal(0, status)
    assert.matches("workloads:.*core", out)
  end)

  it("rejects an unknown workload", function()
    local status, out = helper.sh(run .. " no-such-workload")
    assert.equal(1, status)
    assert.matches("no workload 'no-such-workload'", out, 1, true)
  end)
end)
