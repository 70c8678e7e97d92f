#!/usr/bin/env bash
# Sign-in throughput against the argon2 ceiling of this machine.
#   bench/signin.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-20}
CONNS=${2:-16}
USERS=64
PORT=${PORT:-18080}
DB="vouch_bench_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
API="http://127.0.0.1:$PORT"

cargo build --release --quiet --bin vouch --example argon2_ceiling
VOUCH_DATABASE_URL=$URL VOUCH_BIND=127.0.0.1:$PORT VOUCH_LOG=warn \
  VOUCH_SIGNIN_IP_ATTEMPTS=100000000 VOUCH_SIGNUP_IP_ATTEMPTS=100000000 \
  ./target/release/vouch serve > /dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"' EXIT
for _ in $(seq 1 100); do curl -sf "$API/healthz" > /dev/null && break; sleep 0.1; done

for i in $(seq 0 $((USERS - 1))); do
  curl -sf "$API/v1/users" -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench$i@example.org\",\"password\":\"bench passphrase $i\"}" > /dev/null
done

echo "== sign-in: wrk -t2 -c$CONNS -d${SECONDS_RUN}s POST /v1/sessions ($USERS users)"
RESULT=$(USERS=$USERS wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s bench/lua/signin.lua "$API" | tail -n 1)
echo "$RESULT"
kill $SERVER; wait $SERVER 2>/dev/null || true

echo "== ceiling: argon2id hashes/s with vouch's parameters, all cores, nothing else running"
CEILING=$(./target/release/examples/argon2_ceiling 10)
echo "$CEILING"
RPS=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<< "$RESULT")
CEIL=$(sed -E 's/.*: ([0-9.]+) hashes.*/\1/' <<< "$CEILING")
awk -v r="$RPS" -v c="$CEIL" 'BEGIN { printf "sign-in at %.0f%% of the argon2 ceiling (%.1f / %.1f per second)\n", 100 * r / c, r, c }'
