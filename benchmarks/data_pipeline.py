"""Time the data layer on the bundled S&P 500: load + validate, features, labels, splits, windows.

Run by hand: `.venv/bin/python benchmarks/data_pipeline.py` (prints median seconds of 5 runs each).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.features import build_features
from hpo_assets.data.market import default_market_path, load_market
from hpo_assets.data.splits import chunked_split, shared_days
from hpo_assets.data.targets import add_labels


def timed(label: str, fn: Callable[[], object], repeat: int = 5) -> object:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    print(f"{label:<44} {statistics.median(times) * 1000:8.1f} ms")
    return result


def main() -> None:
    path = default_market_path()
    market = timed(f"load_market({path.name})", lambda: load_market(path))
    feats = timed("build_features (25 columns)", lambda: build_features(market))
    frame = timed("add_labels (h1, h3, h5)", lambda: add_labels(feats, (1, 3, 5)))
    for h in (1, 3, 5):
        data = timed(f"prepare_dataset h{h} (contiguous, context 80)", lambda h=h: prepare_dataset(frame, h))
    timed("chunked_split h5 (20 chunks)", lambda: chunked_split(frame["date"], frame["label_h5"], 80, 5))
    timed("shared_days (leakage verification)", lambda: shared_days(data.split, len(data.y)))
    timed("windows(train) -> (n, 80, 25) float32", lambda: data.windows(data.split.train))
    print(f"rows: market {market.height}, features {frame.height}, train windows {len(data.split.train)}")


if __name__ == "__main__":
    main()
