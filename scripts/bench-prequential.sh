#!/usr/bin/env bash
# Prequential throughput (EVALUATION.md protocol B) as a ratio against the anchor measured in the
# same session: River's BiasedMF (river 0.26.1, the anchor's version and settings,
# scripts/river_prequential.py) and `evaluate --protocol prequential`, interleaved ROUNDS times
# so both see the same machine. Prints every run, then the medians and the ratio per model.
# Usage: scripts/bench-prequential.sh [rounds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
data=${CINEDATA_ML_SMALL:-../shared/data/movielens/ml-latest-small}
if [ ! -x .venv-tools/river/bin/python ] || ! .venv-tools/river/bin/python -c "import river" 2>/dev/null; then
  python3 -m venv .venv-tools/river
  .venv-tools/river/bin/pip install -q "river==0.26.1"
fi
cargo build --release -q -p evaluate
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq 1 "$rounds"); do
  .venv-tools/river/bin/python scripts/river_prequential.py "$data/ratings.csv" 1 >>"$out"
  ./target/release/evaluate --data "$data" --protocol prequential --no-record --json >>"$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
text = open(sys.argv[1]).read()
dec, i, rates, rmse = json.JSONDecoder(), 0, {}, {}
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    obj, i = dec.raw_decode(text, i)
    for r in obj if isinstance(obj, list) else [obj]:
        if "metrics" in r:
            rates.setdefault(r["model"], []).extend(r["metrics"]["ratings_per_second_runs"])
            rmse[r["model"]] = r["metrics"]["rmse"]
        else:
            rates.setdefault(r["model"], []).append(r["ratings_per_second"])
            rmse[r["model"]] = r["rmse"]
river = statistics.median(rates["river-biasedmf"])
print("| model | RMSE | runs | ratings/s median | q1–q3 | × River (medians) |")
print("| --- | --- | --- | --- | --- | --- |")
for m, v in rates.items():
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    print(f"| {m} | {rmse[m]:.4f} | {len(v)} | {statistics.median(v):,.0f} | {q[0]:,.0f}–{q[2]:,.0f} | {statistics.median(v) / river:.1f} |")
PY
