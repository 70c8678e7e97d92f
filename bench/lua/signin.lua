-- POST /v1/sessions for USERS users (bench0@example.org ...), round robin.
local users = tonumber(os.getenv("USERS") or "64")
local n = 0

request = function()
  n = n + 1
  local i = n % users
  local body = string.format('{"email":"bench%d@example.org","password":"bench passphrase %d"}', i, i)
  return wrk.format("POST", "/v1/sessions", { ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors_status=%d duration_s=%.1f rps=%.1f p50_ms=%.1f p99_ms=%.1f\n",
    summary.requests, summary.errors.status, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
