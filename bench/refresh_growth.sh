#!/usr/bin/env bash
# Refresh latency as a session grows: N refreshes of one session, the first and
# last 100 timed.   bench/refresh_growth.sh [BINARY] [N]   (cargo build --release first)
set -euo pipefail
BIN=${1:-./target/release/vouch}; N=${2:-1500}; DB=vouch_refresh_$$; PORT=18557
VOUCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB VOUCH_BIND=127.0.0.1:$PORT VOUCH_RELAY=false VOUCH_CHAINER=false VOUCH_LOG=warn VOUCH_AUDIT_KEY_FILE=/tmp/refresh-bench.key VOUCH_PII_KEY_FILE=/tmp/refresh-bench-pii.key $BIN serve > /dev/null 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -f /tmp/refresh-bench.key' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
API=http://127.0.0.1:$PORT
curl -s $API/v1/users -H 'Content-Type: application/json' -d '{"email": "r@example.org", "password": "correct horse battery"}' >/dev/null
python3 - "$API" "$N" <<'PY'
import json, sys, time, urllib.request
api, n = sys.argv[1], int(sys.argv[2])
def post(path, body):
    req = urllib.request.Request(api + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
tok = post("/v1/sessions", {"email": "r@example.org", "password": "correct horse battery"})["refresh_token"]
times = []
for i in range(n):
    t = time.perf_counter()
    tok = post("/v1/sessions/refresh", {"refresh_token": tok})["refresh_token"]
    times.append((time.perf_counter() - t) * 1000)
first, last = sorted(times[:100]), sorted(times[-100:])
print(f"{n} refreshes of one session: first 100 median {first[50]:.2f} ms, last 100 median {last[50]:.2f} ms (p99 {last[98]:.2f} ms)")
PY
