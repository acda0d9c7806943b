-- wrk script: cycles through the request paths listed (one per line) in the file named by
-- the WRK_PATHS environment variable, so every server gets the same mix of modules.
local paths = {}
local i = 0

local f = assert(io.open(os.getenv("WRK_PATHS"), "r"))
for line in f:lines() do
  if #line > 0 then paths[#paths + 1] = line end
end
f:close()

request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
