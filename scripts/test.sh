#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it first sets up what the tests talk
# to: PostgreSQL on 127.0.0.1:5432 (started if down) and the Python test tools
# (schemathesis, in .venv-tools/). Extra arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL: the suite runs against it as well as SQLite.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "installing PostgreSQL" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

# Python tools used by the tests, pinned, installed once.
if [ ! -x .venv-tools/bin/schemathesis ]; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q "schemathesis==4.32.5"
fi
export SCHEMATHESIS="$PWD/.venv-tools/bin/schemathesis"

command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
exec cargo nextest run --workspace --no-fail-fast "$@"
