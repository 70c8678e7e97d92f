-- POST /v1/keys/verify of seeded keys in random order (PATH overrides the
-- path, for the HTTP ceiling).
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local keys, auth, path
local headers = {}

init = function(args)
  math.randomseed(tid + 1)
  keys = common.lines("verify_keys")
  path = os.getenv("PATH_OVERRIDE") or "/v1/keys/verify"
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = common.bearer()
end

request = function()
  local body = '{"key":"' .. keys[math.random(#keys)] .. '"}'
  return wrk.format("POST", path, headers, body)
end
