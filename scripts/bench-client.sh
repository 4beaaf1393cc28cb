#!/usr/bin/env bash
# Measures what cinedata-client costs over raw reqwest (clients/rust/examples/overhead.rs):
# `GET /movies/1` at CONCURRENCY concurrent requests against a release build serving
# ml-latest-small from a fresh SQLite file, alternating the two for ROUNDS rounds.
# Usage: scripts/bench-client.sh [concurrency, default 64] [seconds per run, default 5] [rounds, default 5]
# BENCH_PIN=1 pins the server to CPU 0 and the load to CPU 1 (taskset), so the two do not
# trade cores between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
data=${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}
cargo build --release -q -p serving --bin serving
cargo build --release -q -p cinedata-client --example overhead
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$target/release/serving" import --data "$data" --database-url "sqlite://$work/bench.db" >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
server_pin=() load_pin=()
if [ "${BENCH_PIN:-0}" = 1 ]; then server_pin=(taskset -c 0) load_pin=(taskset -c 1); fi
RUST_LOG=warn CINEDATA_SNAPSHOT_DIR='' "${server_pin[@]}" "$target/release/serving" serve --database-url "sqlite://$work/bench.db" \
  --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
"${load_pin[@]}" "$target/release/examples/overhead" "http://127.0.0.1:$port" "${1:-64}" "${2:-5}" "${3:-5}"
