#!/usr/bin/env bash
# Measures the data API with wrk (Debian package `wrk`) against a release build serving
# ml-latest-small from a fresh SQLite file (or the PostgreSQL URL in $BENCH_DATABASE_URL).
# Usage: scripts/bench-api.sh [seconds per endpoint, default 10] [connections, default 64]
# CINEDATA_CACHE_TTL=0 measures with the response cache off. The `random` rows ask for a
# different movie or user on every request (a Lua script), so the cache rarely helps them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
data=${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p serving
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
url=${BENCH_DATABASE_URL:-sqlite://$work/bench.db}
./target/release/serving import --data "$data" --database-url "$url" >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn CINEDATA_SNAPSHOT_DIR="$work/snapshots" ./target/release/serving serve --database-url "$url" --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
printf '| endpoint | requests/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |\n'
ids=$(curl -sf "http://127.0.0.1:$port/movies?limit=1000" | python3 -c 'import json,sys; print(",".join(str(m["movieId"]) for m in json.load(sys.stdin)))')
cat > "$work/random.lua" <<LUA
local movies = {$ids}
math.randomseed(42)
request = function()
  if string.find(wrk.path, "USER") then
    return wrk.format("GET", (string.gsub(wrk.path, "USER", tostring(math.random(1, 610)))))
  end
  return wrk.format("GET", (string.gsub(wrk.path, "MOVIE", tostring(movies[math.random(#movies)]))))
end
LUA
for path in "/movies/1" "/movies?genre=Comedy&limit=100" "/ratings?user_id=1" "/analytics" "/movies?title=toy%20story" "/links?limit=100" "random /movies/MOVIE" "random /ratings?user_id=USER"; do
  script=()
  if [[ $path == random* ]]; then path=${path#random }; script=(-s "$work/random.lua"); fi
  warm=${path/MOVIE/1}; curl -sf -o /dev/null "http://127.0.0.1:$port${warm/USER/1}" || true # measure steady state
  wrk -t2 -c"$conns" -d"${secs}s" --latency "${script[@]}" "http://127.0.0.1:$port$path" > "$work/wrk.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' "$work/wrk.txt" | tr '\n' ' ')
  printf '| `%s` | %s | %s | %s | %s |\n' "$path" "$rps" "$p50" "$p99" "${errs:-0}"
done
