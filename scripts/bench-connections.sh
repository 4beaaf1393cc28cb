#!/usr/bin/env bash
# Many connections, slow clients and the ratings journal, measured with wrk (Debian package
# `wrk`) against release builds on ml-latest-small in a fresh SQLite file:
#  1. /movies/1 and /users/{random}/recommendations at 64 and at 1,000 connections
#     (wrk -t2 -d$secs); the ratio is the 1,000-connection throughput over the 64 one.
#  2. /movies/1 at 16 connections, alone and while 1,000 half-open clients are held (each
#     sends half a request head; a closed one is reopened at once, so 1,000 stay open).
#  3. POST /ratings on the demo (its broker in memory) with and without the journal.
# Usage: scripts/bench-connections.sh [seconds per run, default 15] [parts, default "1 2 3"]
# CINEDATA_SERVING_BIN runs another build (e.g. an older commit's, for a same-run baseline)
# instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
parts=${2:-1 2 3}
data=${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
target=${CARGO_TARGET_DIR:-target}
if [ -n "${CINEDATA_SERVING_BIN:-}" ]; then
  serving=$(realpath "$CINEDATA_SERVING_BIN")
else
  cargo build --release -q -p serving
  serving="$(cd "$target/release" && pwd)/serving"
fi
data=$(cd "$data" && pwd)
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

wait_up() { for _ in $(seq 1 300); do curl -sf "$1/movies/1" >/dev/null && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }
row() { # label file
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$2")
  p50=$(awk '$1=="50%" {print $2}' "$2")
  p99=$(awk '$1=="99%" {print $2}' "$2")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' "$2" | tr '\n' ' ')
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${errs:-0}"
}

url=sqlite://$work/bench.db
"$serving" import --data "$data" --database-url "$url" >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$serving" serve --database-url "$url" --listen "127.0.0.1:$port" --snapshot-dir '' 2>"$work/serve.log" &
pids+=($!)
base="http://127.0.0.1:$port"
wait_up "$base"
# Measure the trained model, not the start-up retrain competing with wrk for the two cores.
for _ in $(seq 1 600); do
  curl -sf "$base/model" | python3 -c 'import json,sys; m=json.load(sys.stdin); sys.exit(0 if m["version"] >= 1 and not m["retraining"] else 1)' && break
  sleep 0.5
done
curl -sf -o /dev/null "$base/users/1/recommendations?n=10" || true

if [[ " $parts " == *" 1 "* ]]; then # (not indented: the here-documents below)
echo "## 1. connections (wrk -t2 -d${secs}s --timeout 2s)"
printf '| run | requests/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |\n'
for conns in 64 1000; do
  wrk -t2 -c"$conns" -d"${secs}s" --timeout 2s --latency "$base/movies/1" > "$work/m$conns.txt"
  row "\`/movies/1\` -c$conns" "$work/m$conns.txt"
  wrk -t2 -c"$conns" -d"${secs}s" --timeout 2s --latency -s scripts/wrk-random-users.lua "$base" > "$work/r$conns.txt"
  row "\`/users/{random}/recommendations\` -c$conns" "$work/r$conns.txt"
done
for kind in m r; do
  a=$(awk '/Requests\/sec/ {print $2}' "$work/${kind}64.txt"); b=$(awk '/Requests\/sec/ {print $2}' "$work/${kind}1000.txt")
  echo "ratio ${kind} (1000/64): $(python3 -c "print(f'{$b/$a:.2f}')")"
done

echo "sqlx waits over 2 s for a database connection so far: $(grep -c 'time to acquire exceeded' "$work/serve.log" || true)"
fi

if [[ " $parts " == *" 2 "* ]]; then # (not indented: the here-documents below)
echo "## 2. half-open clients (wrk -t2 -c16 -d${secs}s)"
printf '| run | requests/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |\n'
wrk -t2 -c16 -d"${secs}s" --timeout 2s --latency "$base/movies/1" > "$work/alone.txt"
row "\`/movies/1\` alone" "$work/alone.txt"
python3 - "$port" 1000 > "$work/slow.log" 2>&1 <<'PY' &
import selectors, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
def open_one():
    s = socket.create_connection(("127.0.0.1", port))
    s.send(b"GET /movies/1 HTTP/1.1\r\nX: ")
    sel.register(s, selectors.EVENT_READ)
for _ in range(n):
    open_one()
print("held", n, flush=True)
reopened = 0
while True:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        if not s.recv(4096):
            sel.unregister(s); s.close(); open_one(); reopened += 1
    print("reopened", reopened, flush=True)
PY
pids+=($!)
for _ in $(seq 1 100); do grep -q held "$work/slow.log" && break; sleep 0.1; done
open=$(curl -sf "$base/metrics" | awk '/^cinedata_http_connections_open / {print $2}')
wrk -t2 -c16 -d"${secs}s" --timeout 2s --latency "$base/movies/1" > "$work/slow.txt"
row "\`/movies/1\` with 1,000 half-open clients held (open connections at start: $open)" "$work/slow.txt"
kill "${pids[-1]}" 2>/dev/null || true
fi

if [[ " $parts " == *" 3 "* ]]; then # (not indented: the here-documents below)
echo "## 3. POST /ratings on the demo, journal on and off (wrk -t2 -c64 -d${secs}s)"
cat > "$work/post.lua" <<'LUA'
math.randomseed(7)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"userId": %d, "movieId": 1, "rating": 4.5}', math.random(1, 1000000))
  return wrk.format(nil, "/ratings", nil, body)
end
LUA
printf '| run | requests/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |\n'
for journal in "$work/ratings.journal" ""; do
  dport=$((20000 + RANDOM % 20000))
  dir=$(mktemp -d -p "$work")
  (cd "$dir" && RUST_LOG=warn exec "$serving" demo --data "$data" --rate 1 --listen "127.0.0.1:$dport" \
    --snapshot-dir '' --retrain-every 0 --retrain-interval 0 --journal "$journal" >/dev/null) &
  dpid=$!
  pids+=($dpid)
  wait_up "http://127.0.0.1:$dport"
  wrk -t2 -c64 -d"${secs}s" --timeout 2s --latency -s "$work/post.lua" "http://127.0.0.1:$dport" > "$work/post.txt"
  row "journal $([ -n "$journal" ] && echo on || echo off)" "$work/post.txt"
  kill "$dpid"; wait "$dpid" 2>/dev/null || true
done
fi
