#!/usr/bin/env bash
# Schema-driven tests of the HTTP API: starts vouch on a fresh database and runs
# schemathesis over every operation of /openapi.json, first as the bootstrap admin
# key, then as a signed-in user. Exits non-zero on any failure; vouch is stopped and
# its database dropped whatever happens. See docs/schemathesis.md.
#
# Environment:
#   VOUCH_ST_EXAMPLES   test cases per operation and phase (default 25)
#   VOUCH_ST_WORKERS    schemathesis workers (default 1)
#   VOUCH_ST_PASSES     passes to run, of "admin user" (default both)
#   VOUCH_ST_SEED       hypothesis seed (default: random, printed)
#   VOUCH_ST_REPORT_DIR where reports and vouch's log go (default target/schemathesis)
#   VOUCH_ST_TIMEOUT    seconds one pass may take before it is stopped (default 1200)
#   VOUCH_ST_BUILD      set to 0 to use an existing target/debug/vouch as is
#   PGHOST_URL          Postgres server URL without database (default postgres://postgres@127.0.0.1:5432)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

examples="${VOUCH_ST_EXAMPLES:-25}"
workers="${VOUCH_ST_WORKERS:-1}"
passes="${VOUCH_ST_PASSES:-admin user}"
seed="${VOUCH_ST_SEED:-$RANDOM$RANDOM}"
report_dir="${VOUCH_ST_REPORT_DIR:-$root/target/schemathesis}"
timeout="${VOUCH_ST_TIMEOUT:-1200}"
pg="${PGHOST_URL:-postgres://postgres@127.0.0.1:5432}"

log() { printf '== %s\n' "$*"; }

suffix="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
database="vouch_st_$suffix"
exchange="vouch.st.$suffix"
work="$(mktemp -d "${TMPDIR:-/tmp}/vouch-st.XXXXXX")"
mkdir -p "$report_dir"
vouch_log="$report_dir/vouch.log"
vouch_pid=""
consumer_pid=""
admin_key=""

stop() { # pid signal
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1"
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1"
  wait "$1" 2>/dev/null
}

cleanup() {
  local status=$?
  set +e
  stop "$vouch_pid" TERM
  stop "$consumer_pid" INT
  [ -n "$consumer_pid" ] && tail -n 1 "$report_dir/audit-consume.log"
  psql "$pg/postgres" -qAtc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 ||
    echo "could not drop database $database" >&2
  if command -v rabbitmqctl >/dev/null; then
    rabbitmqctl -q delete_queue "$exchange" >/dev/null 2>&1 || true
    rabbitmqctl -q eval \
      "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$exchange\">>), false, <<\"vouch-st\">>)." \
      >/dev/null 2>&1 || true
  fi
  # The kept log need not hold a secret, even of a dropped database.
  [ -n "$admin_key" ] && sed -i "s/$admin_key/[bootstrap admin key]/" "$vouch_log"
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The config and hooks are written for this release (options changed between majors).
# It lives in a virtual environment of its own, not in the system's Python.
st_version=4.32.5
venv="${VOUCH_ST_VENV:-$root/target/schemathesis-venv}"
st="$venv/bin/st"
if [ ! -x "$st" ] || [ "$("$st" --version 2>/dev/null | awk '{print $NF}')" != "$st_version" ]; then
  log "installing schemathesis $st_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$st_version"
fi

if [ "${VOUCH_ST_BUILD:-1}" != 0 ]; then
  log "building vouch (dev profile)"
  nice -n 10 cargo build --locked --quiet --bin vouch
fi
bin="${CARGO_TARGET_DIR:-$root/target}/debug/vouch"

# The reference subscriber, so that the relay's events are routed (a queue bound
# to the exchange) rather than returned and retried.
"$bin" audit-consume --out "$work/audit.jsonl" --queue "$exchange" --exchange "$exchange" \
  >"$report_dir/audit-consume.log" 2>&1 &
consumer_pid=$!

log "starting vouch on database $database"
VOUCH_DATABASE_URL="$pg/$database" \
  VOUCH_BIND=127.0.0.1:0 \
  VOUCH_EXCHANGE="$exchange" \
  VOUCH_AUDIT_KEY_FILE="$work/audit.key" \
  VOUCH_PII_KEY_FILE="$work/pii.key" \
  VOUCH_HTTP_WORKERS=2 \
  VOUCH_JWKS_PUBLISH_DELAY_SECONDS=0 \
  VOUCH_SIGNIN_EMAIL_FAILURES=1000000 \
  VOUCH_SIGNIN_IP_ATTEMPTS=1000000 \
  VOUCH_SIGNUP_IP_ATTEMPTS=1000000 \
  VOUCH_MAIL_EMAIL_REQUESTS=1000000 \
  VOUCH_MAIL_IP_REQUESTS=1000000 \
  VOUCH_TOKEN_FAILURES=1000000 \
  VOUCH_MAIL_URL="file://$work/mail" \
  "$bin" serve >"$vouch_log" 2>&1 &
vouch_pid=$!

port=""
for _ in $(seq 1 600); do
  kill -0 "$vouch_pid" 2>/dev/null || { cat "$vouch_log" >&2; echo "vouch exited at start" >&2; exit 1; }
  port="$(grep -o '"message":"vouch is serving".*' "$vouch_log" | grep -o '"port":[0-9]*' | head -n1 | cut -d: -f2 || true)"
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$vouch_log" >&2; echo "vouch did not start serving" >&2; exit 1; }
base="http://127.0.0.1:$port"
admin_key="$(grep -Eo '^    vk_[0-9A-Za-z]+$' "$vouch_log" | head -n1 | tr -d ' ' || true)"
[ -n "$admin_key" ] || { echo "no bootstrap admin key in $vouch_log" >&2; exit 1; }
curl -fsS "$base/readyz" >/dev/null
log "vouch serves at $base (pid $vouch_pid)"

# The user of the second pass: a member of no org at first; schemathesis may create
# orgs (it becomes their owner), keys and sessions as that user.
user_email="st-$suffix@example.com"
user_password="st-$suffix-long-enough-passphrase"
curl -fsS -o "$work/user.json" -X POST "$base/v1/users" \
  -H 'Content-Type: application/json' \
  -d "{\"email\":\"$user_email\",\"password\":\"$user_password\",\"name\":\"schemathesis\"}"

# Does this vouch check Idempotency-Key? A 256-character key on a POST that would
# otherwise be a plain 404 tells (see hooks.py for what follows from the answer).
nobody="0192f0c1-0000-7000-8000-000000000000"
probe="$(curl -sS -o /dev/null -w '%{http_code}' -X POST \
  "$base/v1/orgs/$nobody/keys/$nobody/revoke" \
  -H "Authorization: Bearer $admin_key" \
  -H "Idempotency-Key: $(printf 'k%.0s' $(seq 1 256))")"
if [ "$probe" = 422 ]; then idempotency=enforced; else idempotency=ignored; fi
log "Idempotency-Key: $idempotency by this vouch (probe answered $probe)"

export VOUCH_ST_BASE_URL="$base" VOUCH_ST_ADMIN_KEY="$admin_key" \
  VOUCH_ST_USER_EMAIL="$user_email" VOUCH_ST_USER_PASSWORD="$user_password" \
  VOUCH_ST_IDEMPOTENCY="$idempotency"

failed=0
for pass in $passes; do
  log "schemathesis as $pass: $examples examples per operation, seed $seed"
  rm -rf "${report_dir:?}/$pass"
  set +e
  VOUCH_ST_AS="$pass" SCHEMATHESIS_HOOKS="$here/hooks.py" \
    timeout "$timeout" "$st" --config-file "$here/schemathesis.toml" --no-color run "$base/openapi.json" \
    --max-examples "$examples" \
    --workers "$workers" \
    --seed "$seed" \
    --generation-database none \
    --report junit,ndjson --report-dir "$report_dir/$pass" \
    2>&1 | tee "$report_dir/$pass.txt"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "schemathesis as $pass failed (exit $status); vouch's log: $vouch_log" >&2
    failed=1
  fi
done

for pass in $passes; do
  log "checks as $pass"
  python3 "$here/summary.py" "$report_dir/$pass"/*.ndjson || true
done

requests="$(grep -c '"message":"request"' "$vouch_log" || true)"
statuses="$(grep -o '"message":"request".*' "$vouch_log" | grep -o '"status":[0-9]' |
  cut -d: -f2 | sort | uniq -c | awk '{printf "%s%sxx: %s", sep, $2, $1; sep=", "}' || true)"
log "vouch answered $requests requests ($statuses)"

# Errors vouch logged: its own are bugs. actix-http's parser logs requests it could
# not read at all (schemathesis probes, e.g. a NUL byte in a header) and answers them
# 400 before vouch sees them.
errors="$(grep '"level":"ERROR"' "$vouch_log" | grep -v '"target":"actix_http::h1::dispatcher"' || true)"
if [ -n "$errors" ]; then
  echo "vouch logged errors during the run:" >&2
  printf '%s\n' "$errors" | head -n 20 >&2
  failed=1
fi
if grep -q "^thread '.*' panicked at" "$vouch_log"; then
  echo "vouch panicked during the run:" >&2
  grep -A5 "^thread '.*' panicked at" "$vouch_log" | head -n 40 >&2
  failed=1
fi

# No secret in vouch's log: the bootstrap banner's key (printed once, by design,
# to the same stream) is redacted first; the user's password and the key files'
# secrets (audit signing seed, personal-data key-encryption key) are scanned for too.
sed -i "s/$admin_key/[bootstrap admin key]/" "$vouch_log"
printf '%s\n' "$user_password" >"$work/passwords.txt"
for key_file in "$work/audit.key" "$work/pii.key"; do
  [ -s "$key_file" ] || { echo "missing key file $key_file" >&2; failed=1; continue; }
  printf '%s\n' "$(tr -d '[:space:]' <"$key_file")" >>"$work/passwords.txt"
done
log "log scan"
if ! "$root/tests/scan_logs.sh" "$vouch_log" "$work/passwords.txt"; then
  echo "secrets in vouch's log: $vouch_log" >&2
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  log "schemathesis: FAILED (reports in $report_dir)"
  exit 1
fi
log "schemathesis: passed (reports in $report_dir)"
