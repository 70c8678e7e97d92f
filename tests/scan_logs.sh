#!/usr/bin/env bash
# Scans a vouch JSON-lines log (e.g. the one a test run writes with
# VOUCH_TEST_LOG=FILE) for secrets: API keys, refresh tokens, access tokens
# (JWTs), action tokens (verification, reset, email change, invitation,
# second-factor challenge), TOTP secrets,
# argon2 password hashes, every password the integration tests in
# tests/api/ (and its subdirectories) use, and the passwords listed in
# PASSWORDS_FILE (one a line: those a harness made up as it ran).
#
#   tests/scan_logs.sh FILE [PASSWORDS_FILE]
#
# Exit 0: clean. Exit 1: secrets found; their lines are listed with the secret
# masked. It also scans for personal data vouch must never log: any email
# address, and the names, user agents and addresses the integration tests give
# people. Exit 2: no usable log (missing, empty, or without a single request
# line: a run that logged nothing proves nothing).
set -euo pipefail

tests_dir="$(cd "$(dirname "$0")" && pwd)"
log="${1:-}"
extra="${2:-}"
if [ -z "$log" ] || [ "$#" -gt 2 ]; then
  echo "usage: $0 LOG_FILE [PASSWORDS_FILE]" >&2
  exit 2
fi
if [ -n "$extra" ] && [ ! -r "$extra" ]; then
  echo "$extra: cannot read the passwords file" >&2
  exit 2
fi
if [ ! -s "$log" ]; then
  echo "$log: missing or empty" >&2
  exit 2
fi
if ! grep -q '"message":"request"' "$log"; then
  echo "$log: no request lines; was the test log on (VOUCH_TEST_LOG)?" >&2
  exit 2
fi

# Passwords of the tests: literals in password fields and constants, and the
# password argument of sign_in. A literal's `{…}` placeholders split it into
# fixed parts. Parts under 8 characters and common passwords (which vouch
# refuses, so no account has them, and which are words like "password") are
# left out.
common="$tests_dir/../src/auth/common_passwords.txt"
passwords="$(mktemp)"
trap 'rm -f "$passwords"' EXIT
mapfile -t sources < <(find "$tests_dir/api" -name '*.rs' | sort)
{
  grep -ohE '"(current_|new_)?password"[[:space:]]*:[[:space:]]*(format!\()?"[^"]*"' "${sources[@]}" || true
  grep -ohE '[A-Za-z0-9_]*([Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]|[Pp]assphrase)[A-Za-z0-9_]*[[:space:]]*(:[[:space:]]*&(.static[[:space:]]+)?str)?[[:space:]]*=[[:space:]]*"[^"]*"' "${sources[@]}" || true
  grep -ohE 'sign_in\([^,()]*,[[:space:]]*"[^"]*"' "${sources[@]}" || true
  if [ -n "$extra" ]; then sed -E 's/^(.*)$/"\1"/' "$extra"; fi
} | sed -E 's/.*"([^"]*)"$/\1/' |
  sed -E 's/\{[^}]*\}/\n/g' |
  awk 'length($0) >= 8' |
  sort -u |
  while IFS= read -r candidate; do
    if ! grep -qixF -- "$candidate" "$common" 2>/dev/null; then
      printf '%s\n' "$candidate"
    fi
  done >"$passwords"

found=0
report() { # kind line secret
  local secret="$3"
  printf '%s:%s: %s %s… (%d characters)\n' "$log" "$2" "$1" "${secret:0:6}" "${#secret}"
  found=1
}

scan() { # kind extended-regex
  local line secret
  while IFS=: read -r line secret; do
    report "$1" "$line" "$secret"
  done < <(grep -noE "$2" "$log" || true)
}

scan "API key" 'vk_[0-9A-Za-z]{49}'
scan "refresh token" 'vrt_[0-9a-f]{32}_[0-9A-Za-z]{43}'
scan "action token" 'v(ev|pr|ec|in|mf)_[0-9a-f]{32}_[0-9A-Za-z]{43}'
scan "TOTP secret" '\b[A-Z2-7]{32}\b'
scan "access token" 'eyJ[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*'
scan "password hash" '\$argon2(id|i|d)\$[0-9A-Za-z+/=,$]*'

if [ -s "$passwords" ]; then
  while IFS=: read -r line match; do
    report "test password" "$line" "$match"
  done < <(grep -noF -f "$passwords" "$log" || true)
fi

# Personal data: any email address, and the personal values of the tests
# (name, email and user-agent literals, constants such as AGENT or NAME, and
# agent strings), 8 characters or longer.
scan "email address" '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}'
personal="$(mktemp)"
trap 'rm -f "$passwords" "$personal"' EXIT
{
  grep -ohE '"User-Agent",[[:space:]]*"[^"]*"' "${sources[@]}" || true
  grep -ohE 'const [A-Z_]*(AGENT|NAME|RENAMED|EMAIL|IP)[A-Z_]*: &str = "[^"]*"' "${sources[@]}" || true
  grep -ohE '"(name|user_agent|email)"[[:space:]]*:[[:space:]]*"[^"]*"' "${sources[@]}" || true
  grep -ohE '"[A-Za-z]+(Agent|Browser)/[^"]*"' "${sources[@]}" || true
} | sed -E 's/.*"([^"]*)"$/\1/' | sed -E 's/^ +| +$//g' | awk 'length($0) >= 8' | sort -u >"$personal"
if [ -s "$personal" ]; then
  while IFS=: read -r line match; do
    report "personal value of a test" "$line" "$match"
  done < <(grep -noF -f "$personal" "$log" || true)
fi

lines="$(wc -l <"$log" | tr -d ' ')"
count="$(wc -l <"$passwords" | tr -d ' ')"
if [ "$found" -ne 0 ]; then
  echo "$log: secrets or personal data found (above) in $lines lines" >&2
  exit 1
fi
echo "$log: $lines lines, no API key, refresh token, action token, TOTP secret, access token, password hash, email address, any of $count test passwords or any of $(wc -l <"$personal" | tr -d ' ') personal values"
