-- POST /v1/users with a new email each time.
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
setup = common.setup
done = common.done
local n = 0
local run = os.time()
local headers = { ["Content-Type"] = "application/json" }

request = function()
  n = n + 1
  local body = string.format(
    '{"email":"load-%d-%d-%d@bench.example","password":"load passphrase %d"}', run, tid, n, n)
  return wrk.format("POST", "/v1/users", headers, body)
end
