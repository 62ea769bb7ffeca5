-- Every fuzz driver over every input of its committed corpus
-- (tests/fuzz/corpus/<driver>/), run in-process as a task: the seeds and
-- every input a fuzzer once crashed on stay regression tests, in plain and
-- sanitizer builds, without clang.  A driver raises when one of its
-- invariants breaks; see tests/fuzz/drivers/.  Inputs named regress-*
-- reproduced a bug that depended on timing, so they run REPEAT times.
local lfs = require "lfs"

local root = helper.root .. "/tests/fuzz"
local REPEAT = 20

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function list(dir, suffix)
  local out = {}
  if not lfs.attributes(dir) then return out end
  for name in lfs.dir(dir) do
    if name:sub(1, 1) ~= "." and (not suffix or name:sub(-#suffix) == suffix)
    then
      out[#out + 1] = name
    end
  end
  table.sort(out)
  return out
end


-- The tide modules a driver requires that this build lacks.
local function missing(path)
  local out = {}
  for mod in slurp(path):gmatch('require%s*%(?%s*"(tide%.[%w_]+)"') do
    if not pcall(require, mod) then out[#out + 1] = mod end
  end
  return out
end

for _, file in ipairs(list(root .. "/drivers", ".lua")) do
  local name = file:sub(1, -5)
  describe("fuzz driver " .. name, function()
    local inputs = list(root .. "/corpus/" .. name)
    local lacks = missing(root .. "/drivers/" .. file)
    if #lacks > 0 then
      pending(table.concat(lacks, ", ") .. " is not in this build")
      return
    end

    it("has a seed corpus", function()
      assert.is_true(#inputs > 0)
    end)

    for _, input in ipairs(inputs) do
      it("holds on " .. input, function()
        local driver = assert(loadfile(root .. "/drivers/" .. file))
        local data = slurp(root .. "/corpus/" .. name .. "/" .. input)
        for _ = 1, input:match("^regress%-") and REPEAT or 1 do
          local t = tide.spawn(driver, data)
          local ok, err = pcall(tide.await, t)
          assert(ok, tostring(err))
          assert.is_true(err)
        end
      end)
    end
  end)
end
