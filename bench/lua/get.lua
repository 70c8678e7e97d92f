-- GET of the URL given to wrk (JWKS, health).
package.path = "bench/lua/?.lua;" .. package.path
local common = require("common")
done = common.done
