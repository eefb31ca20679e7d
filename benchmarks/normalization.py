"""RevIN vs train-split z-score: validation AUC of the same configurations under each, on CPU.

Decides the default of the searchable `normalization` parameter (model/training.yaml lists the
default first). Short on purpose (shared CPU): a few 2M shapes x two learning rates x seeds on the
demo window, one thread each. Prints each pair and the mean paired difference with a 95% t-interval
over the pairs (noise: seeds and configurations). Validation split only; the test split is not read.

    .venv/bin/python benchmarks/normalization.py [--horizon 1] [--epochs 6] [--seeds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.market import default_market_path, load_market
from hpo_assets.search.space import configs_from_params
from hpo_assets.training.trainer import train_prepared

SHAPES = [(96, 16, 4, 4), (192, 5, 8, 2), (384, 1, 8, 4)]  # 2M shapes: narrow-deep, middle, wide-shallow
LRS = [1e-4, 1e-3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    data = prepare_dataset(load_market(default_market_path()), args.horizon, start="2013-07-01", end="2016-12-31",
                           val_start="2015-10-01", test_start="2016-10-01")  # fmt: skip
    print(
        f"h{args.horizon}: {len(data.split.train)} train / {len(data.split.val)} val windows, {args.epochs} epochs"
    )
    diffs, t0 = [], time.perf_counter()
    for d, n_layers, heads, ratio in SHAPES:
        for lr in LRS:
            for seed in range(args.seeds):
                auc = {}
                for norm in ("revin", "zscore"):
                    params = {"d_model": d, "n_layers": n_layers, "n_heads": heads, "d_ff_ratio": ratio, "lr": lr,
                              "dropout": 0.1, "weight_decay": 1e-4, "warmup_frac": 0.05, "batch_size": 64,
                              "normalization": norm}  # fmt: skip
                    arch, cfg = configs_from_params(params, max_epochs=args.epochs, patience=args.epochs, seed=seed,
                                                    num_threads=1, device="cpu")  # fmt: skip
                    res = train_prepared(data, arch, cfg)
                    auc[norm] = res.metrics["val_auc"]
                print(
                    f"d{d}-L{n_layers} lr={lr:g} seed={seed}: revin {auc['revin']} zscore {auc['zscore']}",
                    flush=True,
                )
                if auc["revin"] is not None and auc["zscore"] is not None:
                    diffs.append(auc["zscore"] - auc["revin"])
    a = np.asarray(diffs)
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    print(f"zscore - revin val AUC: mean {a.mean():+.4f}, 95% CI [{a.mean() - half:+.4f}, {a.mean() + half:+.4f}] "
          f"over {len(a)} paired runs ({time.perf_counter() - t0:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
