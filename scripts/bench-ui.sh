#!/usr/bin/env bash
# Web interface sizes and server times: imports a release into a temp SQLite file, serves it
# with the given `serving` binary, and for each page reports the HTML size (plain and gzip),
# the bytes a first visit of the overview transfers (HTML + scripts + style, gzip), and the
# median of 21 server times (curl's time to first byte on 127.0.0.1, after one warm-up);
# `/analytics` (JSON, cached) is the baseline measured in the same run.
# Usage: scripts/bench-ui.sh SERVING_BINARY RELEASE_DIR
set -euo pipefail
bin=${1:?serving binary}; data=${2:?release folder}
dir=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" import --data "$data" --database-url "sqlite://$dir/b.db" >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
"$bin" serve --database-url "sqlite://$dir/b.db" --listen "127.0.0.1:$port" --snapshot-dir "$dir/snapshots" \
  --retrain-every 0 --retrain-interval 0 --analytics-ttl 600 >"$dir/log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do curl -fs "$base/ui/model" >/dev/null 2>&1 && break; sleep 0.5; done
# The first request waits for the precomputed figures (read from the store's rating summaries).
# It is timed before the start-up retrain ends (which also reads every rating); the pages after.
first=$(curl -fs -o /dev/null -w '%{time_starttransfer}' "$base/ui/")
printf "first /ui/ after start: %.1f ms\n" "$(echo "$first * 1000" | bc -l)"
# User pages need the live model, which the start-up retrain loads (minutes at 25 M ratings):
# wait until it ends, swapped in or kept out (then user pages answer 404: the code column).
for _ in $(seq 1 3600); do grep -qE 'new model swapped in|retrain kept out|retrain failed' "$dir/log" && break; sleep 1; done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-22s %5s %10s %10s %12s\n" page code html_bytes gzip_bytes median_ms
for path in /analytics /ui/ /ui/movies "/ui/movies/table?title=star&sort=mean" /ui/movies/356 /ui/users/414 /ui/model; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
  plain=$(curl -s "$base$path" | wc -c)
  gz=$(curl -s -H 'accept-encoding: gzip' "$base$path" | wc -c)
  ms=$(for _ in $(seq 1 21); do curl -s -o /dev/null -w '%{time_starttransfer}\n' "$base$path"; done | median)
  printf "%-22s %5s %10s %10s %12.1f\n" "$path" "$code" "$plain" "$gz" "$(echo "$ms * 1000" | bc -l)"
done
total=$(curl -fs -H 'accept-encoding: gzip' "$base/ui/" | wc -c)
for asset in $(curl -fs "$base/ui/" | grep -o '/assets/[^"]*\.\(js\|css\)'); do
  total=$((total + $(curl -fs -H 'accept-encoding: gzip' "$base$asset" | wc -c)))
done
echo "first visit of /ui/ (gzip, HTML + scripts + style): $total bytes"
