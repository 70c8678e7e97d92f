#!/usr/bin/env bash
# Personal data over a large log: replay of a log written before sealing,
# `vouch migrate-pii` sealing it, replay of the sealed log, and an export that
# opens every sealed field.
#   bench/pii.sh [events] [people]   (default 1,000,000 and 100,000: 2 events a person more)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
PEOPLE=${2:-100000}
DB="vouch_bench_pii_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
export VOUCH_LOG=warn
export VOUCH_DATABASE_URL="$URL"
export VOUCH_AUDIT_KEY_FILE=$(mktemp -u /tmp/vouch-bench-audit-XXXXXX.key)
export VOUCH_PII_KEY_FILE=$(mktemp -u /tmp/vouch-bench-pii-XXXXXX.key)
OUT=$(mktemp /tmp/vouch-bench-export-XXXXXX.jsonl)
trap 'rm -f "$OUT" "$VOUCH_AUDIT_KEY_FILE" "$VOUCH_PII_KEY_FILE"; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"' EXIT

cargo build --release --quiet --bin vouch
./target/release/vouch migrate --database-url "$URL"
echo "== generating $EVENTS events and $PEOPLE people (fields in the clear)"
psql -h 127.0.0.1 -U postgres -d "$DB" -q -v events="$EVENTS" -v people="$PEOPLE" -f bench/generate_log.sql
echo "== vouch replay, fields in the clear"
./target/release/vouch replay 2>&1 | tail -2
echo "== vouch migrate-pii"
/usr/bin/time -f "   %e s, max RSS %M KiB" ./target/release/vouch migrate-pii 2>&1 | tail -3
psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "SELECT '   sealed payload fields: ' || count(*) FROM auth_events WHERE data->>'email' LIKE 'pii:v1:%' OR data->>'ip' LIKE 'pii:v1:%'"
echo "== vouch replay, fields sealed"
./target/release/vouch replay 2>&1 | tail -2
echo "== vouch replay --verify"
./target/release/vouch replay --verify 2>&1 | tail -2
echo "== vouch export (opens every sealed field)"
/usr/bin/time -f "   %e s, max RSS %M KiB" ./target/release/vouch export --out "$OUT" 2>&1 | tail -3
echo "== vouch verify-export"
PUBLIC_KEY=$(./target/release/vouch audit-public-key | cut -d' ' -f1)
/usr/bin/time -f "   %e s" ./target/release/vouch verify-export "$OUT" --public-key "$PUBLIC_KEY" 2>&1 | tail -2
