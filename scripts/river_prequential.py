"""River's BiasedMF on EVALUATION.md protocol B: the anchor, measured on this machine.

Streams ratings.csv sorted by (timestamp, userId, movieId); for each rating predicts (clipped to
[0.5, 5.0]), then learns. Prints one JSON object per run: RMSE over the stream and ratings/s of
the predict+learn loop (CSV loading excluded), so CineData's throughput can be quoted as a
ratio against River measured in the same session. Used by scripts/bench-prequential.sh.
"""
import csv
import json
import math
import sys
import time

from river import optim, reco


def main(path, runs):
    with open(path, newline="") as f:
        rows = [(int(r["userId"]), int(r["movieId"]), float(r["rating"]), int(r["timestamp"])) for r in csv.DictReader(f)]
    rows.sort(key=lambda r: (r[3], r[0], r[1]))
    for _ in range(runs):
        model = reco.BiasedMF(
            n_factors=10,
            bias_optimizer=optim.SGD(0.025),
            latent_optimizer=optim.SGD(0.05),
            seed=42,
        )
        se = 0.0
        start = time.perf_counter()
        for u, i, r, _ in rows:
            p = min(5.0, max(0.5, model.predict_one(u, i)))
            se += (r - p) ** 2
            model.learn_one(u, i, r)
        seconds = time.perf_counter() - start
        print(json.dumps({"model": "river-biasedmf", "rmse": math.sqrt(se / len(rows)), "ratings_per_second": len(rows) / seconds}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
