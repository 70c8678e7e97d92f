#!/usr/bin/env bash
# Replay and export speed over a large log.
#   bench/replay.sh [events]      (default 1,000,000: 2% org.created, the rest api_key.created)
#   SKIP_EXPORT=1 bench/replay.sh  measures only the replays
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
DB="vouch_bench_replay_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
KEYFILE=$(mktemp -u /tmp/vouch-bench-audit-XXXXXX.key)
OUT=$(mktemp /tmp/vouch-bench-export-XXXXXX.jsonl)
export VOUCH_LOG=warn
export VOUCH_PII_KEY_FILE=$(mktemp -u /tmp/vouch-bench-pii-XXXXXX.key)
trap 'rm -f "$OUT" "$KEYFILE" "$VOUCH_PII_KEY_FILE"; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"' EXIT

cargo build --release --quiet --bin vouch
./target/release/vouch migrate --database-url "$URL"
echo "== generating $EVENTS events"
psql -h 127.0.0.1 -U postgres -d "$DB" -q -v events="$EVENTS" -f bench/generate_log.sql
echo "== ceiling: one sequential scan of the log (COPY to /dev/null)"
/usr/bin/time -f "   %e s" psql -h 127.0.0.1 -U postgres -d "$DB" -qc "COPY (SELECT * FROM auth_events ORDER BY transaction_id, position) TO '/dev/null'"
echo "== vouch replay (rebuild and swap)"
./target/release/vouch replay --database-url "$URL" 2>&1 | tail -2
echo "== vouch replay --verify"
./target/release/vouch replay --database-url "$URL" --verify 2>&1 | tail -2
[ "${SKIP_EXPORT:-0}" = 1 ] && exit 0
echo "== vouch export (chains the log first, then exports)"
/usr/bin/time -f "   %e s, max RSS %M KiB" ./target/release/vouch export --database-url "$URL" --audit-key-file "$KEYFILE" --out "$OUT" 2>&1 | tail -4
echo "== vouch export again (chain up to date)"
/usr/bin/time -f "   %e s, max RSS %M KiB" ./target/release/vouch export --database-url "$URL" --audit-key-file "$KEYFILE" --out "$OUT" 2>&1 | tail -4
ls -l "$OUT" | awk '{printf "   %s bytes\n", $5}'
echo "== vouch verify-export"
PUBLIC_KEY=$(./target/release/vouch audit-public-key --audit-key-file "$KEYFILE" | cut -d' ' -f1)
/usr/bin/time -f "   %e s, max RSS %M KiB" ./target/release/vouch verify-export "$OUT" --public-key "$PUBLIC_KEY" 2>&1 | tail -2
