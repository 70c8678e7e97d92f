#!/usr/bin/env bash
# Relay throughput with publisher confirms, and commit-to-subscriber latency.
#   bench/relay.sh [events]
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-100000}
PORT=${PORT:-18081}
DB="vouch_bench_relay_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
AMQP="amqp://guest:guest@127.0.0.1:5672/%2f"
EXCHANGE="vouch.bench.$$"

cargo build --release --quiet --bin vouch --example relay_bench
VOUCH_DATABASE_URL=$URL VOUCH_BIND=127.0.0.1:$PORT VOUCH_EXCHANGE=$EXCHANGE VOUCH_LOG=warn \
  ./target/release/vouch serve > /dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
./target/release/examples/relay_bench "$URL" "$AMQP" "$EXCHANGE" "$EVENTS"
