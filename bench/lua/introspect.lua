-- POST /v1/introspect of seeded tokens (FILE: access or verify_keys).
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local tokens
local headers = {}

init = function(args)
  math.randomseed(tid + 1)
  tokens = common.lines(os.getenv("FILE") or "access")
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = common.bearer()
end

request = function()
  local body = '{"token":"' .. tokens[math.random(#tokens)] .. '"}'
  return wrk.format("POST", "/v1/introspect", headers, body)
end
