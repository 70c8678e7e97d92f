#!/usr/bin/env bash
# Crash-safety test: builds vouch, then tests/crash/run.py SIGKILLs it under a
# write load and checks that no command was lost, ran twice or half-applied.
#
#   tests/crash/run.sh [--release] [--duration S] [--kills N] [--threads N] [--seed N] [--keep]
#
# Needs Postgres at 127.0.0.1:5432 (user postgres, trust) and RabbitMQ at
# 127.0.0.1:5672, like the integration tests. See docs/crash-safety.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=debug
args=()
for arg in "$@"; do
  case "$arg" in
    --release) profile=release ;;
    *) args+=("$arg") ;;
  esac
done

if [ "$profile" = release ]; then
  cargo build --locked --release --bin vouch
else
  cargo build --locked --bin vouch
fi
exec python3 tests/crash/run.py --bin "target/$profile/vouch" "${args[@]}"
