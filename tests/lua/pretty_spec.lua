-- tide.pretty and tide.pp: the value printer the REPL shows results with.
local pretty = tide.pretty

describe("tide.pretty", function()
  it("shows scalars as Lua would write them", function()
    assert.equal("nil", pretty(nil))
    assert.equal("true", pretty(true))
    assert.equal("42", pretty(42))
    assert.equal("1.5", pretty(1.5))
    assert.equal("1.0", pretty(1.0))
  end)

  it("quotes and escapes strings", function()
    assert.equal('"hi"', pretty("hi"))
    assert.equal([["a\"b\\c\n\t\0001"]], pretty('a"b\\c\n\t\0' .. "1"))
    assert.equal('"caf\xc3\xa9"', pretty("caf\xc3\xa9"))
  end)

  it("cuts long strings and says how much is left out", function()
    local s = pretty(string.rep("x", 5000))
    assert.equal('"' .. string.rep("x", 4000) .. '"...(1000 more bytes)', s)
    assert.equal('"xx"...(3 more bytes)', pretty("xxxxx", { string = 2 }))
    assert.equal('"xxxxx"', pretty("xxxxx", { string = math.huge }))
  end)

  it("shows short tables on one line, keys sorted", function()
    assert.equal("{}", pretty({}))
    assert.equal("{1, 2, 3}", pretty({ 1, 2, 3 }))
    assert.equal('{1, 2, a = "x", b = {c = true}}',
                 pretty({ 1, 2, b = { c = true }, a = "x" }))
    assert.equal('{[1.5] = 1, [10] = 2, ["a b"] = 3, ["end"] = 4, ' ..
                 'k2 = 5, k10 = 6, [true] = 7}',
                 pretty({ [1.5] = 1, [10] = 2, ["a b"] = 3, ["end"] = 4,
                          k10 = 6, k2 = 5, [true] = 7 }))
  end)

  it("indents tables that do not fit the width", function()
    local t = { name = "a fairly long string value", list = { 1, 2, 3 },
                nested = { deeper = { "more text to make it wrap", 42 } } }
    assert.equal([[
{
  list = {1, 2, 3},
  name = "a fairly long string value",
  nested = {deeper = {"more text to make it wrap", 42}}
}]], pretty(t))
    assert.equal([[
{
    list = {1, 2, 3},
    name = "a fairly long string value",
    nested = {
        deeper = {
            "more text to make it wrap",
            42
        }
    }
}]], pretty(t, { indent = 4, width = 40 }))
  end)

  it("packs long arrays into lines", function()
    local t = {}
    for i = 1, 30 do t[i] = i end
    local s = pretty(t, { width = 40 })
    assert.equal("{\n  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,\n  13,",
                 s:sub(1, 48))
    for line in s:gmatch("[^\n]+") do assert.truthy(#line <= 40, line) end
  end)

  it("cuts long tables with a count of what was left out", function()
    local t = {}
    for i = 1, 150 do t[i] = i end
    local s = pretty(t)
    assert.truthy(s:find("100,\n  ...(50 more)\n}", #s - 30, true))
    assert.falsy(s:find("101", 1, true))
    assert.equal("{1, 2, ...(3 more)}", pretty({ 1, 2, 3, 4, 5 },
                                                { items = 2 }))
    assert.equal("{a = 1, ...(2 more)}",
                 pretty({ a = 1, b = 2, c = 3 }, { items = 1 }))
  end)

  it("cuts deep nesting", function()
    local t = { a = { b = { c = { d = 1 } } } }
    assert.equal("{a = {b = {...}}}", pretty(t, { depth = 2 }))
    assert.equal("{a = {b = {c = {d = 1}}}}", pretty(t))
    assert.equal("{...}", pretty(t, { depth = 0 }))
    local deep = {}
    local cur = deep
    for _ = 1, 10 do cur.x = {} cur = cur.x end
    assert.equal(("{x = "):rep(10) .. "{}" .. ("}"):rep(10),
                 pretty(deep, { depth = math.huge }))
    -- a limit past what the printer nests stops there, without failing
    for _ = 1, 100 do cur.x = {} cur = cur.x end
    assert.truthy(pretty(deep, { depth = math.huge }):find("{...}", 1, true))
  end)

  it("marks cycles and labels the table they lead back to", function()
    local t = { name = "root" }
    t.self = t
    assert.equal('<1>{name = "root", self = <cycle 1>}', pretty(t))
    local a, b = {}, {}
    a.b, b.a = b, a
    a.list = { a, b }
    assert.equal("<1>{b = {a = <cycle 1>}, list = {<cycle 1>, " ..
                 "{a = <cycle 1>}}}", pretty(a))
    -- two cycles get two labels, in the order their tables appear
    local x = { y = {} }
    x.y.up = x.y
    x.y.top = x
    assert.equal("<1>{y = <2>{top = <cycle 1>, up = <cycle 2>}}", pretty(x))
  end)

  it("prints a table shared without a cycle in full each time", function()
    local s = { 1 }
    assert.equal("{a = {1}, b = {1}}", pretty({ a = s, b = s }))
  end)

  it("shows Tasks with their status", function()
    local t = tide.spawn(function() tide.sleep(0.01) return 1 end)
    assert.truthy(pretty(t):find("^<Task %d+ %(task%-%d+%) pending>$"))
    tide.sleep(0)
    assert.truthy(pretty(t):find("waiting>$"))
    t:await()
    assert.truthy(pretty({ t }):find("^{<Task %d+ %(task%-%d+%) done>}$"))
  end)

  it("shows functions with where they were defined", function()
    local f = function() end
    assert.truthy(pretty(f):find("^<function .*pretty_spec%.lua:%d+>$"))
    assert.truthy(pretty(print):find("^<function: builtin: 0x%x+>$"))
  end)

  it("uses __tostring, and survives one that fails", function()
    local obj = setmetatable({}, { __tostring = function() return "OBJ" end })
    assert.equal("{x = <OBJ>}", pretty({ x = obj }))
    assert.equal("{}", pretty(obj, { tostring = false }))
    assert.equal("<ENOENT: gone>", pretty(tide.error("ENOENT", "gone")))
    local bad = setmetatable({}, { __tostring = function() error("no") end })
    assert.truthy(pretty(bad):find("^<table: 0x%x+>$"))
  end)

  it("rejects bad arguments, naming them", function()
    assert.has_error(function() pretty() end,
                     "bad argument #1 to 'pretty' (value expected)")
    local ok, err = pcall(pretty, 1, 2)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #2", 1, true))
    ok, err = pcall(pretty, 1, { depth = "deep" })
    assert.is_false(ok)
    assert.truthy(err:find("bad option 'depth'", 1, true))
    ok, err = pcall(pretty, 1, { items = 0 / 0 })
    assert.is_false(ok)
    assert.truthy(err:find("bad option 'items'", 1, true))
    -- negative limits count as zero
    assert.equal("{...(2 more)}", pretty({ 1, 2 }, { items = -5 }))
  end)
end)

describe("tide.pp", function()
  it("prints each value pretty, through print", function()
    local saved, got = _G.print, nil
    _G.print = function(...) got = table.pack(...) end
    local ok, err = pcall(tide.pp, { 1, "a" }, "s", nil)
    _G.print = saved
    assert.is_true(ok, err)
    assert.equal(3, got.n)
    assert.equal('{1, "a"}', got[1])
    assert.equal('"s"', got[2])
    assert.equal("nil", got[3])
  end)
end)

describe("docs/repl.md", function()
  it("shows what its pretty-printer examples print", function()
    local f = assert(io.open(helper.root .. "/docs/repl.md"))
    local doc = f:read("a")
    f:close()
    local n = 0
    for block in doc:gmatch("```lua\n(.-)```") do
      local expected = {}
      for line in block:gmatch("[^\n]*") do
        local out = line:match("^%-%-> ?(.*)$")
        if out then expected[#expected + 1] = out end
      end
      local status, out = helper.tide(block)
      assert.equal(0, status, out)
      assert.equal(table.concat(expected, "\n") .. "\n", out)
      n = n + 1
    end
    assert.truthy(n >= 2)
  end)
end)
