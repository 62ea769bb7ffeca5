-- The ```lua blocks of a Markdown file, so specs can run the examples of
-- docs/<module>.md and the docs cannot rot.  Returns a list of
-- {line = <first line>, code = <source>}.
return function(path)
  local f = assert(io.open(path))
  local blocks, current, n = {}, nil, 0
  for line in f:lines() do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = current
        current = nil
      else
        current.code = current.code .. line .. "\n"
      end
    elseif line:match("^```lua%s*$") then
      current = {line = n + 1, code = ""}
    end
  end
  f:close()
  return blocks
end
