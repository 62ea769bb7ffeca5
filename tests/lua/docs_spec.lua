-- Every ```lua block of README.md and docs/core.md runs, each in a fresh
-- tide process, so the front page cannot drift from the code.

local examples = require "tests.lua.support.doc_examples"

local function run_blocks(path)
  for _, block in ipairs(examples(path)) do
    it(("%s:%d"):format(path, block.line), function()
      local status, out = helper.tide(block.code)
      assert.equal(0, status, out)
    end)
  end
end

describe("README.md examples", function() run_blocks("README.md") end)
describe("docs/core.md examples", function() run_blocks("docs/core.md") end)
