#!/usr/bin/env bash
# The serving process's memory at a release's scale: imports RELEASE_DIR into a temp SQLite
# file, starts `serving serve` on it (no broker, no snapshots, no scheduled retrains) and
# samples its resident size every second through the start-up retrain (which reads every
# rating and fits every model) until that ends. Prints the import time, the retrain's report
# (`GET /model`), the process's peak resident size (VmHWM) and its size once idle, then the
# server time (curl's time to first byte) of `GET /users/{id}/recommendations?n=10` for 200
# different users (first ask each: nothing cached) and the strategies the lists came from.
# Usage: scripts/bench-serve-rss.sh SERVING_BINARY RELEASE_DIR
set -euo pipefail
bin=${1:?serving binary}; data=${2:?release folder}
dir=$(mktemp -d); pid=
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
t0=$(date +%s.%N)
"$bin" import --data "$data" --database-url "sqlite://$dir/b.db" >"$dir/import.log" 2>&1
t1=$(date +%s.%N)
python3 -c "print(f'import: {$t1 - $t0:.1f} s')"
port=$((20000 + RANDOM % 20000))
"$bin" serve --database-url "sqlite://$dir/b.db" --listen "127.0.0.1:$port" --snapshot-dir '' \
  --retrain-every 0 --retrain-interval 0 >"$dir/log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
started=$(date +%s)
for _ in $(seq 1 3600); do
  if curl -fs "$base/model" 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("lastRetrain") else 1)'; then
    break
  fi
  echo "$(($(date +%s) - started)) s: RSS $(($(kib VmRSS) / 1024)) MiB" >>"$dir/rss.log"
  sleep 1
done
echo "start-up retrain ended after $(($(date +%s) - started)) s (RSS every 10 s below)"
awk 'NR % 10 == 0' "$dir/rss.log"
cat >"$dir/report.py" <<'EOF'
import json, sys
m = json.load(sys.stdin)
r = m["lastRetrain"]
print(f"retrain: accepted {r['accepted']}, {r['seconds']:.1f} s over {r['trainingRatings']} ratings; reason: {r.get('reason')}")
print(f"model version {m['version']}, users {m['users']}, movies {m['movies']}")
EOF
curl -fs "$base/model" | python3 "$dir/report.py"
sleep 5
echo "peak RSS (VmHWM) $(($(kib VmHWM) / 1024)) MiB; RSS once idle $(($(kib VmRSS) / 1024)) MiB"
users=$(curl -fs "$base/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')
for i in $(seq 0 199); do
  u=$((1 + i * (users / 200)))
  curl -s -o "$dir/list.json" -w '%{time_starttransfer}\n' "$base/users/$u/recommendations?n=10" >>"$dir/times"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("strategy"))' "$dir/list.json" >>"$dir/strategies"
done
python3 - "$dir/times" <<'EOF'
import statistics, sys
t = sorted(float(x) * 1000 for x in open(sys.argv[1]))
print(f"GET /users/{{id}}/recommendations?n=10, 200 users, uncached: median {statistics.median(t):.2f} ms, "
      f"p99 {t[int(0.99 * (len(t) - 1))]:.2f} ms, max {t[-1]:.2f} ms")
EOF
echo "strategies: $(sort "$dir/strategies" | uniq -c | tr '\n' ' ')"
echo "peak RSS (VmHWM) after the lists $(($(kib VmHWM) / 1024)) MiB"
