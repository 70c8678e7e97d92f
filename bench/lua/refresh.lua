-- POST /v1/sessions/refresh: every token is used once; each answer's new
-- refresh token goes back into the thread's pool. Thread i of n owns every
-- n-th seeded chain, so no two requests ever present the same token.
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local pool = {}
local headers = { ["Content-Type"] = "application/json" }

init = function(args)
  local n = tonumber(os.getenv("THREADS") or "2")
  for i, line in ipairs(common.lines("refresh")) do
    if (i - 1) % n == tid then table.insert(pool, line) end
  end
end

request = function()
  local token = table.remove(pool)
  if token == nil then
    -- Every chain is in flight or lost: nothing left to present.
    wrk.thread:stop()
    token = "exhausted"
  end
  return wrk.format("POST", "/v1/sessions/refresh", headers, '{"refresh_token":"' .. token .. '"}')
end

response = function(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
end
