#!/usr/bin/env bash
# Live recommendations under load: the demo (ml-latest-small, embedded broker, SQLite) with
# fresh ratings streaming in at RATE events/s (examples/rating_load.rs), and wrk asking
# /users/{random user}/recommendations?n=10 at CONNS connections for SECS seconds. Before the
# load and beside it, examples/rating_visibility.rs times how soon a user's own new rating
# shows in their next list (PROBE_SAMPLES each time, default 200; 0 skips it).
# Ahead of the measured run, an unmeasured wrk run of WARMUP_SECS (default 3) warms the list
# cache. LIST_REFRESH sets the demo's --list-refresh (seconds; default the demo's own, 1).
# IMPRESSIONS=off runs the demo without logging (and persisting) the lists it serves.
# The demo's own CPU time is read from /proc: over IDLE_SECS (default 10) with only the ratings
# streaming, then over the measured wrk run; the difference per request served is the demo's
# CPU per request ("demo CPU per request"), which other processes on the machine do not move
# the way they move throughput.
# Usage: scripts/bench-recommend.sh [secs, default 30] [conns, default 64] [rate, default 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
conns=${2:-64}
rate=${3:-10000}
data=$(realpath "${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}")
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p serving --bin serving --example rating_load --example rating_visibility
probe_samples=${PROBE_SAMPLES:-200}
root=$PWD
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release
work=$(mktemp -d)
load= probe=
trap 'kill $pid $load $probe 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
(cd "$work" && RUST_LOG=warn exec "$bin/serving" demo --data "$data" --listen "127.0.0.1:$port" \
  --retrain-every 0 ${LIST_REFRESH:+--list-refresh "$LIST_REFRESH"} \
  $([ "${IMPRESSIONS:-on}" = off ] && echo --impressions-topic=) >"$work/demo.log" 2>&1) &
pid=$!
model() { curl -sf "http://127.0.0.1:$port/model" || echo '{}'; }
# Every rating applied and the retrain on all of them done: lists come from the top-N model.
for _ in $(seq 1 1500); do
  state=$(model | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m.get("eventsApplied", 0), (m.get("lastRetrain") or {}).get("trigger", "-"))')
  applied=${state% *}
  [ "$applied" -ge 100836 ] && [ "${state#* }" = replay ] && break
  sleep 0.2
done
brokers=$(grep -o 'Kafka (embedded, alive while this runs): [0-9.:]*' "$work/demo.log" | awk '{print $NF}')
echo "demo up, ml-latest-small replayed ($applied events)"
if [ "$probe_samples" -gt 0 ]; then
  echo "idle:"
  "$bin/examples/rating_visibility" "http://127.0.0.1:$port" "$probe_samples"
fi
echo "streaming $rate ratings/s into $brokers"
before=$(model | python3 -c 'import json,sys; print(json.load(sys.stdin)["eventsApplied"])')
${LOAD_NICE:+nice -n "$LOAD_NICE"} "$bin/examples/rating_load" "$brokers" "sqlite://$work/cinedata.db" "$rate" $((secs + 5)) &
load=$!
loaded=$(date +%s.%N)
sleep 2
source scripts/cpu-time.sh
idle_cores=0
if [ "${IDLE_SECS:-10}" -gt 0 ]; then
  idle_cores=$(cpu_cores "$pid" "${IDLE_SECS:-10}")
fi
# Unmeasured: every user's list is asked for once first (wrk measures the steady state, not the
# service's first list per user, ~2 ms of CPU each with the top-N model).
if [ "${WARMUP_SECS:-3}" != 0 ]; then
  wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"${WARMUP_SECS:-3}s" -s scripts/wrk-random-users.lua "http://127.0.0.1:$port" >/dev/null
fi
if [ "$probe_samples" -gt 0 ]; then
  # Spread over the wrk run; it adds a few requests per second beside wrk's.
  "$bin/examples/rating_visibility" "http://127.0.0.1:$port" "$probe_samples" $((secs > 4 ? secs - 4 : 1)) \
    >"$work/probe.log" 2>&1 &
  probe=$!
fi
start=$(date +%s.%N) t0=$(cpu_ticks "$pid")
WRK_CONNECTIONS="$conns" ${LOAD_NICE:+nice -n "$LOAD_NICE"} wrk -t"${WRK_THREADS:-2}" -c"$conns" -d"${secs}s" --latency -s scripts/wrk-random-users.lua "http://127.0.0.1:$port" | tee "$work/wrk.log"
end=$(date +%s.%N) t1=$(cpu_ticks "$pid")
cpu_per_request demo "$idle_cores" "$t0" "$t1" "$start" "$end" "$(awk '/requests in/ {print $1}' "$work/wrk.log")"
after=$(model | python3 -c 'import json,sys; print(json.load(sys.stdin)["eventsApplied"])')
python3 -c "print(f'events applied to the live model since the load started: {($after - $before):.0f} in {($end - $loaded):.1f} s = {($after - $before) / ($end - $loaded):.0f}/s')"
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^cinedata_(online_updates_total|recommendation_duration_seconds_(sum|count)|http_cache_lookups_total|impressions_total|consumer_events_persisted_total)'
if [ -n "$probe" ]; then
  wait "$probe" || true
  echo "under load:"
  cat "$work/probe.log"
fi
wait $load || true
