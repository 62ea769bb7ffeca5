-- The engine's example scripts run and print what their comments promise.

local function example(name)
  return helper.sh("TIDE_EXAMPLE_SCALE=0.02 " .. helper.bin ..
                   " scripts/examples/" .. name)
end

describe("examples", function()
  it("hello.lua", function()
    local status, out = example("hello.lua")
    assert.equal(0, status)
    assert.equal("hello ...\n... world\n", out)
  end)

  it("tasks.lua finishes in about 2 units, not 3", function()
    local status, out = example("tasks.lua")
    assert.equal(0, status)
    assert.matches("hello\nworld\n", out)
    local units = tonumber(out:match("finished at ([%d.]+)"))
    assert.is_true(units >= 1.9 and units < 2.9, "took " .. units .. " units")
  end)

  it("timeouts.lua", function()
    local status, out = example("timeouts.lua")
    assert.equal(0, status)
    assert.equal("timeout:\tfalse\tETIMEDOUT\nin time:\tquick\n" ..
                 "wait_for:\tfalse\tETIMEDOUT\tcancelled\nnested:\tfalse\tETIMEDOUT\n", out)
  end)
end)

describe("demo.lua", function()
  it("runs the whole tour", function()
    local status, out = helper.sh("TIDE_EXAMPLE_SCALE=0.05 " .. helper.bin .. " scripts/examples/demo.lua")
    assert.equal(0, status, out)
    assert.matches("both done:\ttea\tand\tcoffee", out)
    assert.matches("gathered:\ttoast\teggs", out)
    assert.matches("race won by:\tbike", out)
    assert.matches("timeout:\tfalse\tETIMEDOUT", out)
    assert.matches("the answer is\t42", out)
    assert.matches("ticks:\t1\t2\t3", out)
    assert.matches("w1\tfinished job\t1", out)
    assert.matches("w2\tfinished job\t4", out)
    assert.matches("a in, a out, b in, b out", out)
    assert.matches("read back:\thello from a file", out)
    assert.matches("tr says:\tSHOUT\texit\t0", out)
    assert.matches("slow child:\tfalse\tETIMEDOUT", out)
    assert.matches("echoed:\tHELLO OVER TCP", out)
  end)
end)
