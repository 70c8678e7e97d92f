#!/usr/bin/env bash
# Where the time goes in one scenario: the whole machine sampled with perf while
# wrk loads one route of a seeded vouch (or while replay / the relay run).
#
#   bench/profile.sh key_create|key_revoke|refresh|signin|verify|replay|relay
#   KEYS=60000 bench/profile.sh key_revoke   more keys to seed (default 20,000): the
#                                            revoke load revokes each seeded key once
#
# Writes bench/results/profile-<scenario>.txt: CPU share per process, then the
# hottest symbols of vouch and of Postgres. Needs perf (apt-get install linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:?scenario}
OUT="bench/results/profile-$SCENARIO.txt"
DATA=$(mktemp /tmp/vouch-perf-XXXXXX.data)
WORK=$(mktemp -d /tmp/vouch-profile-XXXXXX)
DB="vouch_profile_$$"
PG="postgres://postgres@127.0.0.1:5432"
PORT=18095
export WORK VOUCH_LOG=warn THREADS=2
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2> /dev/null; wait 2> /dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" 2> /dev/null || true
  rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT
cargo build --release --quiet --bin vouch --example seed --example relay_bench
record() { perf record -a -g -o "$DATA" -- sleep "$1" > /dev/null 2>&1; }

case "$SCENARIO" in
  replay)
    ./target/release/vouch migrate --database-url "$PG/$DB" > /dev/null
    psql -h 127.0.0.1 -U postgres -d "$DB" -q -v events=1000000 -f bench/generate_log.sql
    ./target/release/vouch replay --database-url "$PG/$DB" --pii-key-file "$WORK/pii.key" > "$WORK/replay.out" 2>&1 &
    RUN=$!; sleep 3; record 10; wait "$RUN"; SUMMARY=$(grep events/s "$WORK/replay.out") ;;
  relay)
    EXCHANGE="vouch.profile.$$"
    VOUCH_DATABASE_URL="$PG/$DB" VOUCH_BIND=127.0.0.1:$PORT VOUCH_EXCHANGE=$EXCHANGE VOUCH_CHAINER=false \
      VOUCH_AUDIT_KEY_FILE="$WORK/audit.key" VOUCH_PII_KEY_FILE="$WORK/pii.key" ./target/release/vouch serve > "$WORK/serve.out" 2>&1 & SERVER=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
    ./target/release/examples/relay_bench "$PG/$DB" "amqp://guest:guest@127.0.0.1:5672/%2f" "$EXCHANGE" 100000 > "$WORK/relay.out" &
    RUN=$!; sleep 25; record 8; wait "$RUN"; SUMMARY=$(grep 'relay throughput' "$WORK/relay.out") ;;
  *)
    VOUCH_DATABASE_URL="$PG/$DB" VOUCH_BIND=127.0.0.1:$PORT VOUCH_RELAY=false VOUCH_AUDIT_KEY_FILE="$WORK/audit.key" VOUCH_PII_KEY_FILE="$WORK/pii.key" \
      VOUCH_SIGNIN_IP_ATTEMPTS=1000000000 VOUCH_SIGNUP_IP_ATTEMPTS=1000000000 VOUCH_SIGNIN_EMAIL_FAILURES=1000000000 \
      ./target/release/vouch serve > "$WORK/serve.out" 2>&1 & SERVER=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
    ADMIN=$(grep -o 'vk_[0-9A-Za-z]*' "$WORK/serve.out" | head -n1)
    ./target/release/examples/seed "http://127.0.0.1:$PORT" "$ADMIN" "$WORK" 100 "${KEYS:-20000}" 100 > /dev/null 2>&1
    sleep 15   # the chainer catches up on the seed
    BEARER=$ADMIN wrk -t2 -c32 -d15s -s "bench/lua/$SCENARIO.lua" "http://127.0.0.1:$PORT" > "$WORK/wrk.out" &
    RUN=$!; sleep 3; record 10; wait "$RUN"; SUMMARY=$(grep RESULT "$WORK/wrk.out") ;;
esac

report() { perf report -i "$DATA" --stdio --no-children -g none "$@" 2> /dev/null | grep -v '^#' | grep -v '^$'; }
{
  echo "# profile: $SCENARIO ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, perf record -a -g, 10 s under load)"
  echo "# result while sampled: $SUMMARY"
  echo
  echo "## CPU samples by process (swapper = idle)"
  report --sort comm | head -15
  echo
  echo "## vouch (all its threads): hottest symbols"
  # `head` closes the pipe early: perf's SIGPIPE is not a failure.
  report --comms vouch,actix-rt\|system,tokio-runtime-w --sort dso,sym | head -40 | cut -c1-160 || true
  echo
  echo "## postgres: hottest symbols"
  report --comms postgres --sort sym | head -30 | cut -c1-160 || true
} > "$OUT"
echo "wrote $OUT"
