"""Walks every rating of a CineData service page by page into one DataFrame with the SDK and
prints the time of each repetition and their median (BENCHMARKS.md, "Python SDK").

    CINEDATA_URL=http://127.0.0.1:8000 python clients/python/benchmarks/walk_ratings.py --repeat 7

Each repetition uses a fresh client (new connections) and runs
``api.iter_ratings(page_size=...).to_pandas()``. For comparison it also times the same walk
with plain httpx and ``json`` (no models, no DataFrame): the difference is the SDK's cost, the
rest is the server's and the network's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

import cinedata


def walk_sdk(url: str, page_size: int) -> tuple[float, int]:
    """One repetition with the SDK: (seconds, rows)."""
    started = time.perf_counter()
    with cinedata.Client(url) as api:
        frame = api.iter_ratings(page_size=page_size).to_pandas()
    return time.perf_counter() - started, len(frame)


def walk_raw(url: str, page_size: int) -> tuple[float, int]:
    """The same pages with plain httpx: (seconds, rows)."""
    started = time.perf_counter()
    rows = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        skip = 0
        while True:
            page = http.get("/ratings", params={"skip": skip, "limit": page_size}).raise_for_status().json()
            rows += len(page)
            if len(page) < page_size:
                break
            skip += len(page)
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", default=None, help="the service (default: CINEDATA_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--page-size", type=int, default=1000, help="rows per page (default 1000, the largest)")
    args = parser.parse_args()
    url = args.url or cinedata.Client().base_url
    walk_sdk(url, args.page_size)  # warm-up: imports, the server's first reads
    sdk = [walk_sdk(url, args.page_size) for _ in range(args.repeat)]
    raw = [walk_raw(url, args.page_size) for _ in range(args.repeat)]
    for i, ((s, rows), (r, _)) in enumerate(zip(sdk, raw), 1):
        print(f"run {i}: SDK {s:.3f} s for {rows} rows; plain httpx {r:.3f} s")
    sdk_times, raw_times = [s for s, _ in sdk], [r for r, _ in raw]
    print(
        f"median {statistics.median(sdk_times):.3f} s over {args.repeat} runs "
        f"(min {min(sdk_times):.3f}, max {max(sdk_times):.3f}); "
        f"plain httpx median {statistics.median(raw_times):.3f} s"
    )


if __name__ == "__main__":
    main()
