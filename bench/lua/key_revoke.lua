-- POST /v1/orgs/{org}/keys/{key}/revoke, each seeded key once: thread i of n
-- takes every n-th key. A thread that runs out stops.
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local mine = {}
local next_key = 0
local headers = {}

init = function(args)
  local n = tonumber(os.getenv("THREADS") or "2")
  for i, line in ipairs(common.lines("revoke")) do
    if (i - 1) % n == tid then table.insert(mine, line) end
  end
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = common.bearer()
end

request = function()
  next_key = next_key + 1
  if next_key > #mine then
    -- Every key of this thread is revoked: stop before repeating one.
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  local org, key = mine[next_key]:match("([^/]+)/([^/]+)")
  return wrk.format("POST", "/v1/orgs/" .. org .. "/keys/" .. key .. "/revoke", headers, '{"reason":"load"}')
end
