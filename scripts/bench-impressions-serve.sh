#!/usr/bin/env bash
# What logging impressions costs serving itself, as deployed: the pipeline (broker, consumer
# group persisting ratings and impressions) runs in one process, the service in another.
# The demo (ml-latest-small, embedded broker, SQLite) plays the pipeline; a second process,
# `serving serve --brokers <the demo's broker>` on the same SQLite file, is the service under
# test: it follows the ratings topic, is retrained once on the whole release (POST
# /model/retrain), then answers wrk (random users' lists, n=10, CONNS connections, SECS s)
# while 10,000 fresh ratings/s stream in (examples/rating_load.rs). IMPRESSIONS=off starts the
# service with `--impressions-topic=` (it logs nothing; the demo then has none to persist).
# Printed: requests/s and latency (wrk), and the service's own CPU time from /proc: over
# IDLE_SECS (default 10) with only the ratings streaming, then over the wrk run; the difference
# per request served is "serve CPU per request". Both processes share this machine's cores,
# so the pipeline's work for the impressions still competes with the service for CPU here.
# Usage: scripts/bench-impressions-serve.sh [secs, default 30] [conns, default 64] [rate, default 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
conns=${2:-64}
rate=${3:-10000}
data=$(realpath "${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}")
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p serving --bin serving --example rating_load
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release
work=$(mktemp -d)
demo= serve= load=
trap 'kill $demo $serve $load 2>/dev/null || true; rm -rf "$work"' EXIT
demo_port=$((20000 + RANDOM % 20000))
port=$((demo_port + 1))
(cd "$work" && RUST_LOG=warn exec "$bin/serving" demo --data "$data" --listen "127.0.0.1:$demo_port" \
  --retrain-every 0 >"$work/demo.log" 2>&1) &
demo=$!
state() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/model" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m.get("eventsApplied", 0), m.get("version", 0), (m.get("lastRetrain") or {}).get("trigger", "-"))' 2>/dev/null || echo "0 0 -"
}
# The demo has replayed and persisted the release and retrained on it.
for _ in $(seq 1 1500); do
  read -r applied _ trigger < <(state "$demo_port")
  [ "$applied" -ge 100836 ] && [ "$trigger" = replay ] && break
  sleep 0.2
done
brokers=$(grep -o 'Kafka (embedded, alive while this runs): [0-9.:]*' "$work/demo.log" | awk '{print $NF}')
echo "pipeline up (demo, ml-latest-small replayed into $brokers)"
mkdir -p "$work/serve"
(cd "$work/serve" && RUST_LOG=warn exec "$bin/serving" serve --brokers "$brokers" \
  --database-url "sqlite://$work/cinedata.db" --listen "127.0.0.1:$port" --snapshot-dir '' \
  --retrain-interval 0 --retrain-every 0 \
  $([ "${IMPRESSIONS:-on}" = off ] && echo --impressions-topic=) >"$work/serve.log" 2>&1) &
serve=$!
for i in $(seq 1 1500); do
  kill -0 "$serve" 2>/dev/null || { echo "serve exited:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
  read -r applied _ _ < <(state "$port")
  [ "$applied" -ge 100836 ] && break
  [ $((i % 50)) = 0 ] && echo "  service applied $applied events" >&2
  sleep 0.2
done
# A retrain the service began by itself (409) ends first; then ours runs on the whole release.
until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/model/retrain")" = 202 ]; do
  sleep 1
done
for i in $(seq 1 1500); do
  read -r _ version trigger < <(state "$port")
  [ "$trigger" = admin ] && break
  [ $((i % 50)) = 0 ] && echo "  retraining: model version $version, last retrain: $trigger" >&2
  sleep 0.2
done
echo "service up: followed the release and retrained on it (model version $version)"
echo "streaming $rate ratings/s into $brokers"
"$bin/examples/rating_load" "$brokers" "sqlite://$work/cinedata.db" "$rate" $((secs + ${IDLE_SECS:-10} + 10)) &
load=$!
sleep 2
source scripts/cpu-time.sh
idle_cores=0
if [ "${IDLE_SECS:-10}" -gt 0 ]; then
  idle_cores=$(cpu_cores "$serve" "${IDLE_SECS:-10}")
fi
# Unmeasured: every user's list is asked for once first.
wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"${WARMUP_SECS:-3}s" -s scripts/wrk-random-users.lua "http://127.0.0.1:$port" >/dev/null
start=$(date +%s.%N) t0=$(cpu_ticks "$serve")
WRK_CONNECTIONS="$conns" wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"${secs}s" --latency -s scripts/wrk-random-users.lua "http://127.0.0.1:$port" | tee "$work/wrk.log"
end=$(date +%s.%N) t1=$(cpu_ticks "$serve")
cpu_per_request serve "$idle_cores" "$t0" "$t1" "$start" "$end" "$(awk '/requests in/ {print $1}' "$work/wrk.log")"
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^cinedata_impressions_total' || true
curl -sf "http://127.0.0.1:$demo_port/metrics" | grep -E '^cinedata_consumer_events_persisted_total' || true
wait $load || true
