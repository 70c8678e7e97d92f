-- POST /v1/orgs/{org}/keys in random seeded orgs.
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local orgs
local headers = {}
local body = '{"name":"load key","scopes":["deploy"]}'

init = function(args)
  math.randomseed(tid + 1)
  orgs = common.lines("orgs")
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = common.bearer()
end

request = function()
  return wrk.format("POST", "/v1/orgs/" .. orgs[math.random(#orgs)] .. "/keys", headers, body)
end
