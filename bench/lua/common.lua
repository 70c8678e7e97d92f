-- Shared by the load scripts: thread numbering, reading work files, and one
-- machine-readable result line.
local common = {}

local counter = 0
local threads = {}

-- wrk's setup(thread): number each thread so it can take its own share.
function common.setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- The lines of a work file written by bench/seed.rs.
function common.lines(name)
  local path = os.getenv("WORK") .. "/" .. name
  local out = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then table.insert(out, line) end
  end
  file:close()
  return out
end

function common.bearer()
  return "Bearer " .. assert(os.getenv("BEARER"), "BEARER not set")
end

-- wrk's done(): requests, errors (socket errors and statuses >= 400), rate, latency.
function common.done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format(
    "RESULT requests=%d errors=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, errors, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

return common
