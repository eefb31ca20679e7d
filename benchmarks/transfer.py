"""Does one learning rate mean the same at every width? And do warm-started studies save trials?

Run by hand (minutes to an hour; others share the machine, so the load average is printed):

    .venv/bin/python benchmarks/transfer.py lr-curves                 # (1) defaults below, ~30 min
    .venv/bin/python benchmarks/transfer.py lr-curves --seeds 0 --epochs 1 --widths 64,128
    .venv/bin/python benchmarks/transfer.py replay                    # (2) tabular replay of warm starts

(1) lr-curves: best validation loss (S&P 500 h1 split, 3,667 training / 424 validation windows)
vs learning rate for widths 64 -> 512 (depth 2, head size 32, d_ff = 2 x width, batch 64, dropout
0.1, weight decay 0.01, 10 warm-up steps, cosine decay over `--epochs`), `standard` vs `mup`, one
run per (width, lr, seed), 1 CPU thread each. Per width: mean over seeds with a 95% t-interval
(the noise is the seed's: init, batch order, dropout), the optimum lr, and the lrs whose mean lies
within one standard error of the optimum's ("indistinguishable"). Results are cached in
benchmarks/.cache/ so a killed run resumes.

(2) replay: see `replay_main` below.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
HEAD_DIM = 32


def _data() -> Any:
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market

    return prepare_dataset(load_market(default_market_path()), horizon=1)


def _prior_loss(data: Any) -> float:
    """Validation BCE of predicting the training base rate for every window (the no-skill baseline)."""
    p = float(data.y[data.split.train].mean())
    yv = data.y[data.split.val]
    return float(-(yv * math.log(p) + (1 - yv) * math.log(1 - p)).mean())


def _t95(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else math.nan


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["key"]] = rec
    return out


def lr_curves(args: argparse.Namespace) -> None:
    import torch

    from hpo_assets.model.params import Arch, count_parameters
    from hpo_assets.training.trainer import TrainConfig, train_prepared

    torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    lrs = [float(v) for v in args.lrs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    kinds = args.kinds.split(",")
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_path = CACHE / "transfer_lr_curves.jsonl"
    cache = _load_cache(cache_path)
    data = _data()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared)", flush=True)
    for seed in seeds:
        for kind in kinds:
            for lr in lrs:
                for width in widths:
                    arch = Arch(width, args.depth, max(1, width // HEAD_DIM), 2 * width)
                    key = f"{kind}|{arch.label}|lr={lr:g}|seed={seed}|epochs={args.epochs}"
                    if key in cache:
                        continue
                    cfg = TrainConfig(
                        lr=lr, weight_decay=0.01, warmup_steps=10, dropout=0.1, batch_size=64,
                        max_epochs=args.epochs, patience=args.epochs, objective="val_loss", seed=seed,
                        num_threads=1, parametrization=kind,
                    )  # fmt: skip
                    t0 = time.perf_counter()
                    res = train_prepared(data, arch, cfg)
                    rec = {
                        "key": key, "kind": kind, "width": width, "lr": lr, "seed": seed,
                        "params": count_parameters(arch, data.n_features),
                        "best_val_loss": res.best_val_loss, "status": res.status,
                        "val_auc": res.metrics.get("val_auc"), "seconds": time.perf_counter() - t0,
                    }  # fmt: skip
                    cache[key] = rec
                    with cache_path.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    print(
                        f"{kind:9s} w={width:4d} lr={lr:<7g} seed={seed} best val loss "
                        f"{rec['best_val_loss'] if rec['best_val_loss'] is not None else 'None'} "
                        f"({rec['status']}, {rec['seconds']:.0f}s, load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    report_lr_curves(cache, widths, lrs, seeds, kinds, args.epochs, _prior_loss(data))


def report_lr_curves(
    cache: dict[str, dict[str, Any]],
    widths: list[int],
    lrs: list[float],
    seeds: list[int],
    kinds: list[str],
    epochs: int,
    prior: float,
) -> None:
    print(f"\nbaseline: predicting the training base rate gives validation BCE {prior:.4f}")
    print(f"best validation loss (mean over seeds {seeds} +- 95% t-interval half-width; {epochs} epochs)")
    for kind in kinds:
        print(f"\n[{kind}]")
        print("width  " + "".join(f"lr={lr:<17g}" for lr in lrs) + "optimum  within 1 SE")
        optima = {}
        for width in widths:
            cells, means, ses = [], {}, {}
            for lr in lrs:
                vals = [
                    r["best_val_loss"]
                    for r in cache.values()
                    if r["kind"] == kind and r["width"] == width and r["lr"] == lr and r["seed"] in seeds
                    and r["key"].endswith(f"epochs={epochs}")
                ]  # fmt: skip
                finite = [v for v in vals if v is not None and math.isfinite(v)]
                if len(finite) < len(vals) or not vals:
                    cells.append(f"{'n/a' if not vals else f'{len(vals) - len(finite)} diverged':<20s}")
                    continue
                m = statistics.fmean(finite)
                se = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else math.nan
                means[lr], ses[lr] = m, se
                cells.append(f"{m:.4f}+-{_t95(len(finite)) * se:.4f}".ljust(20))
            if means:
                best = min(means, key=means.get)
                optima[width] = best
                close = [lr for lr in means if means[lr] - means[best] <= ses[best]]
                print(f"{width:<7d}" + "".join(cells) + f"{best:<9g}{','.join(f'{v:g}' for v in close)}")
            else:
                print(f"{width:<7d}" + "".join(cells))
        if len(optima) >= 2:
            steps = [
                round(math.log(optima[w] / optima[widths[0]]) / math.log(lrs[1] / lrs[0])) for w in optima
            ]
            print(
                f"optimum lr drift from width {widths[0]} (grid steps): {dict(zip(optima, steps, strict=True))}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lr = sub.add_parser("lr-curves", help="(1) best validation loss vs lr across widths")
    lr.add_argument("--widths", default="64,128,256,512")
    lr.add_argument("--lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2")
    lr.add_argument("--seeds", default="0,1,2")
    lr.add_argument("--kinds", default="standard,mup")
    lr.add_argument("--epochs", type=int, default=2)
    lr.add_argument("--depth", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "lr-curves":
        lr_curves(args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
