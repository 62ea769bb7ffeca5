-- Embedding: the installed library, pkg-config file and CMake package are
-- used to build the example host in scripts/examples/embed/ both ways, the
-- host runs its async C functions, and a stock lua5.4 loads tide with
-- `require "tide"`.  The C API itself is tested by tests/c/.
local build = os.getenv("TIDE_BUILD") or "build"
local root = os.getenv("TIDE_ROOT") or "."

local function sh(cmd)
  return helper.sh(cmd)
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have(prog)
  return sh("command -v " .. prog .. " >/dev/null") == 0
end

-- In a sanitizer build (make test SANITIZE=1) libtide.so needs the ASan
-- runtime loaded first in programs that are not built with it: preload
-- it, and skip what cannot work there (valgrind, linking libtide.a into
-- an uninstrumented program).
local sanitized = false
do
  local f = io.open(build .. "/CMakeCache.txt")
  if f then
    sanitized = f:read("a"):find("TIDE_SANITIZE:BOOL=ON", 1, true) ~= nil
    f:close()
  end
end
local preload = ""
if sanitized then
  -- tests/tests.cmake gives the sanitizer runtimes in TIDE_PRELOAD.
  local libs = os.getenv("TIDE_PRELOAD") or ""
  if libs == "" then
    local _, lib = sh("${CC:-cc} -print-file-name=libasan.so")
    libs = lib:gsub("%s+$", "")
  end
  preload = "LD_PRELOAD=" .. q(libs) .. " "
end

describe("embedding", function()
  local tmp, prefix, example

  setup(function()
    local status, out = sh("mktemp -d")
    assert(status == 0, out)
    tmp = out:gsub("%s+$", "")
    prefix = tmp .. "/prefix"
    example = tmp .. "/example"
    status, out = sh("cmake --install " .. q(build) .. " --prefix " .. q(prefix))
    assert(status == 0, out)
    status, out = sh("cp -r " .. q(root .. "/scripts/examples/embed") .. " "
                     .. q(example))
    assert(status == 0, out)
  end)

  teardown(function()
    if tmp then sh("rm -rf " .. q(tmp)) end
  end)

  it("installs the library, header, pkg-config file and CMake package", function()
    for _, f in ipairs{"include/tide.h", "lib/libtide.a", "lib/libtide.so",
                       "lib/pkgconfig/tide.pc", "lib/cmake/tide/tideConfig.cmake",
                       "lib/cmake/tide/tideTargets.cmake", "lib/lua/5.4/tide.so",
                       "bin/tide"} do
      assert.equal(0, (sh("test -e " .. q(prefix .. "/" .. f))), f)
    end
    local status, out = sh("PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig")
                           .. " pkg-config --cflags --libs tide")
    assert.equal(0, status, out)
    assert.truthy(out:find("-ltide", 1, true))
    assert.truthy(out:find("lua5.4", 1, true))
  end)

  local function check_host_output(out)
    assert.truthy(out:find("hello, embedded", 1, true), out)
    assert.truthy(out:find("gathered\ta\tb\ttrue", 1, true), out)
    assert.truthy(out:find("timeout:\tfalse\tETIMEDOUT", 1, true), out)
    assert.truthy(out:find("bad delay:\tfalse\thost.delay: EINVAL: negative delay -1",
                           1, true), out)
    assert.truthy(out:find("script returned 2 value%(s%): done %d+"), out)
    assert.truthy(out:find("background tasks: 1\nbackground task done", 1, true), out)
  end

  local function run_host(bin, script, args)
    return sh("cd " .. q(example) .. " && EMBED_DELAY_MS=5 " .. preload .. bin .. " "
              .. script .. " " .. (args or ""))
  end

  it("builds the example host with pkg-config and runs its script", function()
    local status, out = sh("make -C " .. q(example) .. " PKG_CONFIG_PATH="
                           .. q(prefix .. "/lib/pkgconfig"))
    assert.equal(0, status, out)
    status, out = run_host("./embed-host", "script.lua", "embedded")
    assert.equal(0, status, out)
    check_host_output(out)
  end)

  it("builds the example host with CMake, shared and static", function()
    for _, static in ipairs(sanitized and {"OFF"} or {"OFF", "ON"}) do
      local dir = example .. "/build-" .. static
      local status, out = sh("cmake -S " .. q(example) .. " -B " .. q(dir)
                             .. " -DCMAKE_PREFIX_PATH=" .. q(prefix)
                             .. " -DTIDE_STATIC=" .. static
                             .. " && cmake --build " .. q(dir))
      assert.equal(0, status, out)
      status, out = run_host(q(dir .. "/embed-host"), "script.lua", "embedded")
      assert.equal(0, status, out)
      check_host_output(out)
      -- the static build does not load libtide.so
      local _, libs = sh("ldd " .. q(dir .. "/embed-host"))
      assert.equal(static == "OFF", libs:find("libtide.so", 1, true) ~= nil)
    end
  end)

  it("reports a failing script with its traceback and exit status 1", function()
    local f = assert(io.open(example .. "/fails.lua", "w"))
    f:write("local host = require 'host'\n",
            "local function check(n)\n",
            "  if host.delay(1, n) > 1 then error('too big: ' .. n) end\n",
            "end\n",
            "check(1)\ncheck(2)\n")
    f:close()
    local status, out = run_host("./embed-host", "fails.lua")
    assert.equal(1, status, out)
    assert.truthy(out:find("embed-host: fails.lua:3: too big: 2", 1, true), out)
    assert.truthy(out:find("stack traceback:", 1, true), out)
    assert.truthy(out:find("fails.lua:6: in main chunk", 1, true), out)
  end)

  it("is clean under valgrind", function()
    if not have("valgrind") then return pending("valgrind is not installed") end
    if sanitized then return pending("not under the sanitizers") end
    local status, out = run_host("valgrind -q --leak-check=full --error-exitcode=9 "
                                 .. "./embed-host", "script.lua", "embedded")
    assert.equal(0, status, out)
    check_host_output(out)
  end)

  -- The n-th fenced block of the given language in docs/c-api.md.
  local function doc_block(lang, n)
    local f = assert(io.open(root .. "/docs/c-api.md"))
    local text = f:read("a")
    f:close()
    local i = 0
    for block in text:gmatch("```" .. lang .. "\n(.-)```") do
      i = i + 1
      if i == n then return block end
    end
    error("no block " .. n .. " of " .. lang)
  end

  it("builds and runs the minimal host of docs/c-api.md", function()
    local src = tmp .. "/minimal.c"
    local f = assert(io.open(src, "w"))
    f:write(doc_block("c", 1))
    f:close()
    local pc = "PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig") .. " pkg-config"
    local status, out = sh("${CC:-cc} -Wall -Wextra -Werror -o " .. q(tmp .. "/minimal")
                           .. " " .. q(src) .. " $(" .. pc .. " --cflags --libs tide)"
                           .. " -Wl,-rpath," .. q(prefix .. "/lib"))
    assert.equal(0, status, out)
    status, out = sh(preload .. q(tmp .. "/minimal"))
    assert.equal(0, status, out)
    assert.equal("sum: 42\n", out)
  end)

  it("runs the plain-Lua example of docs/c-api.md", function()
    if not have("lua5.4") then return pending("lua5.4 is not installed") end
    local code = doc_block("lua", 1):gsub("/opt/tide", prefix)
    local f = assert(io.open(tmp .. "/plain.lua", "w"))
    f:write(code)
    f:close()
    local status, out = sh(preload .. "lua5.4 " .. q(tmp .. "/plain.lua"))
    assert.equal(0, status, out)
    assert.equal("done\n", out)
  end)

  it("loads into a stock lua5.4 with require 'tide'", function()
    if not have("lua5.4") then return pending("lua5.4 is not installed") end
    local host = root .. "/tests/lua/support/stock_host.lua"
    for _, dir in ipairs{build, prefix .. "/lib/lua/5.4"} do
      local status, out = sh(preload .. "lua5.4 " .. q(host) .. " " .. q(dir))
      assert.equal(0, status, out)
      assert.truthy(out:find("run\t42\tchild\tfuture", 1, true), out)
      assert.truthy(out:find("error\tfalse\t.-stock_host.lua:17: inside"), out)
      assert.truthy(out:find("left\tcancelled", 1, true), out)
      assert.truthy(out:find("outside\tfalse\ttrue", 1, true), out)
    end
  end)

  it("loads into a stock lua5.4 from inside a coroutine", function()
    if not have("lua5.4") then return pending("lua5.4 is not installed") end
    local code = "package.cpath = " .. ("%q"):format(build .. "/?.so;") .. " .. package.cpath "
      .. "local tide = coroutine.wrap(function() return require 'tide' end)() "
      .. "print(tide.run(function() tide.sleep(0.001) return 'ran' end))"
    local status, out = sh(preload .. "lua5.4 -e " .. q(code))
    assert.equal(0, status, out)
    assert.equal("ran\n", out)
  end)
end)

describe("task cleanup", function()
  it("runs the <close> handlers of a cancelled task", function()
    local seen
    local t = tide.spawn(function()
      local guard <close> = setmetatable({}, {__close = function(_, e) seen = e end})
      tide.sleep(60)
    end)
    tide.sleep(0)
    t:cancel("stop")
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("ECANCELED", err.code)
    assert.equal("ECANCELED", seen and seen.code)
  end)

  it("runs the <close> handlers of a failed task with its error", function()
    local seen
    local t = tide.spawn(function()
      local guard <close> = setmetatable({}, {__close = function(_, e) seen = e end})
      tide.sleep(0)
      error("boom", 0)
    end)
    local ok, err = pcall(t.await, t)
    assert.is_false(ok)
    assert.equal("boom", err)
    assert.equal("boom", seen)
  end)
end)
