-- POST /v1/sessions for the seeded users, round robin.
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local users
local n = 0
local headers = { ["Content-Type"] = "application/json" }

init = function(args)
  users = common.lines("users")
  n = tid * 97
end

request = function()
  n = n + 1
  local email, password = users[n % #users + 1]:match("^(%S+) (.+)$")
  local body = '{"email":"' .. email .. '","password":"' .. password .. '"}'
  return wrk.format("POST", "/v1/sessions", headers, body)
end
