#!/usr/bin/env bash
# Measures `serving import` throughput: ml-latest-small, then a synthetic MovieLens-shaped
# release (default 25 M ratings, generated once into $SYNTH_DIR), into a fresh SQLite file and
# a fresh PostgreSQL database ($BENCH_PG_ADMIN_URL, default the local server's `test` db).
# Usage: scripts/bench-import.sh [ratings, default 25000000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-25000000}
small=${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}
synth=${SYNTH_DIR:-/tmp/cinedata-synth-$n}
admin=${BENCH_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}
pg_base=${admin%/*}
cargo build --release -q -p serving -p movielens
[ -f "$synth/ratings.csv" ] || ./target/release/synth --out "$synth" --ratings "$n" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"; psql "$admin" -qc "DROP DATABASE IF EXISTS cinedata_bench_import" 2>/dev/null || true' EXIT

run() { # label, data dir, url
  local start end
  start=$(date +%s.%N)
  ./target/release/serving import --data "$2" --database-url "$3" 2>&1 | grep -E '^imported' >"$work/out"
  end=$(date +%s.%N)
  local rows
  rows=$(awk '{print $4}' "$work/out")
  printf '| %s | %s | %.2f s | %.0f ratings/s |\n' "$1" "$rows" "$(echo "$end - $start" | bc)" "$(echo "$rows / ($end - $start)" | bc -l)"
}
fresh_pg() { psql "$admin" -qc "DROP DATABASE IF EXISTS cinedata_bench_import" -c "CREATE DATABASE cinedata_bench_import" 2>/dev/null; }

printf '| import | ratings | wall time | throughput |\n| --- | ---: | ---: | ---: |\n'
run "ml-latest-small → SQLite" "$small" "sqlite://$work/small.db"
fresh_pg; run "ml-latest-small → PostgreSQL" "$small" "$pg_base/cinedata_bench_import"
run "synthetic $n → SQLite" "$synth" "sqlite://$work/big.db"
fresh_pg; run "synthetic $n → PostgreSQL" "$synth" "$pg_base/cinedata_bench_import"
