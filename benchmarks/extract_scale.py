"""How fast and how lean `extract` is at scale; run by hand, prints figures (nothing is asserted).

    .venv/bin/python benchmarks/extract_scale.py            # all cases (first run builds benchmarks/.cache/, slow)
    .venv/bin/python benchmarks/extract_scale.py --only 600 # one case: 600 | sqlite | exports | trial_json

Cases, each measured in a fresh subprocess (wall time and peak RSS of that process):
- 600 trials (12 studies x 50, per-trial JSON with 50-epoch curves): read + derive + write all files;
- an Optuna SQLite store of 10,000 trials with 50-epoch curves (contract user_attrs + intermediate values):
  `read_optuna_storage` (bulk SQL) + derive, beside `optuna.load_study(...).trials_dataframe()` per study;
- 100,000 trials as template export folders (100 x 1,000) and as per-trial JSON (100 x 1,000 files, curves).
Targets (issue 5): 600 trials < 2 s; SQLite >= 5x faster than trials_dataframe(); 100,000 trials < 60 s, < 4 GB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
EPOCHS = 50
ARCHS = [(d, n, h) for d in (32, 64, 128, 256, 512) for n in (2, 4, 6, 8, 12) for h in (2, 4, 8)]
LRS = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3]


def _curve(rng: random.Random, diverge: bool) -> list[dict]:
    out, v = [], 0.7
    for e in range(1, EPOCHS + 1):
        v = max(0.3, v - rng.random() * 0.01 + 0.004)
        val = float("nan") if diverge and e > 30 else v
        out.append(
            {
                "epoch": e,
                "train_loss": v - 0.02,
                "val_loss": val,
                "val_auc": 0.5 + rng.random() * 0.2,
                "lr": 1e-4,
                "seconds": 0.4,
            }
        )
    return out


def _budget(i: int) -> str:
    return ["2M", "20M", "200M", "2B"][i % 4]


def write_trial_json(root: Path, n_studies: int, per_study: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for s in range(n_studies):
        folder = root / f"phase6a_{_budget(s)}_h{1 + 2 * (s % 3)}_threshold_1pct_{s:03d}" / "trials"
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(per_study):
            d, n, h = rng.choice(ARCHS)
            diverge = rng.random() < 0.05
            curve = _curve(rng, diverge)
            value = 100.0 if diverge else min(r["val_loss"] for r in curve)
            data = {
                "trial_number": t,
                "value": value,
                "state": "COMPLETE",
                "params": {
                    "learning_rate": rng.choice(LRS),
                    "epochs": EPOCHS,
                    "weight_decay": 0.0,
                    "warmup_steps": 100,
                    "dropout": 0.1,
                },
                "duration_seconds": 20.0,
                "architecture": {
                    "d_model": d,
                    "n_layers": n,
                    "n_heads": h,
                    "d_ff": 4 * d,
                    "param_count": d * n * 1000,
                },
                "user_attrs": {
                    "arch_idx": 0,
                    "learning_curve": [{k: r[k] for k in ("epoch", "train_loss", "val_loss")} for r in curve],
                    "val_accuracy": 0.55,
                    "train_accuracy": 0.6,
                },
            }
            (folder / f"trial_{t:05d}.json").write_text(json.dumps(data))


def write_exports(root: Path, n_studies: int, per_study: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for s in range(n_studies):
        folder = root / f"hpo_{_budget(s).lower()}_{1 + 2 * (s % 3)}_a50_{s:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        items, csv_rows = (
            [],
            [
                "trial,auc,precision,recall,pred_min,pred_max,forced_extreme,extreme_type,duration_sec,"
                "d_model,n_layers,n_heads,d_ff_ratio,learning_rate,dropout,weight_decay"
            ],
        )
        for t in range(per_study):
            d, n, h = rng.choice(ARCHS)
            lr, auc = rng.choice(LRS), 0.6 + rng.random() * 0.15
            params = {
                "d_model": d,
                "n_layers": n,
                "n_heads": h,
                "d_ff_ratio": 4,
                "learning_rate": lr,
                "dropout": 0.1,
                "weight_decay": 0.0,
            }
            items.append(
                {
                    "number": t,
                    "value": auc,
                    "state": "TrialState.COMPLETE",
                    "params": params,
                    "user_attrs": {
                        "duration_sec": 20.0,
                        "epochs_run": EPOCHS,
                        "forced_extreme": False,
                        "val_auc": auc,
                    },
                }
            )
            csv_rows.append(f"{t},{auc},,,,,False,,20.0,{d},{n},{h},4,{lr},0.1,0.0")
        (folder / "all_trials.json").write_text(json.dumps(items))
        (folder / "trial_metrics.csv").write_text("\n".join(csv_rows) + "\n")
        (folder / "best_params.json").write_text(
            json.dumps({"experiment": folder.name, "budget": _budget(s)})
        )


def write_sqlite(path: Path, n_studies: int, per_study: int, seed: int = 2) -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(seed)
    dists = {
        "arch": CategoricalDistribution([f"d{d}-L{n}-H{h}-F{4 * d}" for d, n, h in ARCHS]),
        "lr": CategoricalDistribution(LRS),
        "dropout": CategoricalDistribution([0.1, 0.3]),
        "weight_decay": CategoricalDistribution([0.0, 1e-4]),
        "warmup_steps": CategoricalDistribution([0, 100]),
        "batch_size": CategoricalDistribution([64, 128]),
    }
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    for s in range(n_studies):
        budget, horizon = _budget(s), f"h{1 + 2 * (s % 3)}"
        study = optuna.create_study(
            study_name=f"hpo-{budget}-{horizon}-{s:03d}", storage=storage, direction="maximize"
        )
        for k, v in {"budget": budget, "horizon": horizon, "tier": "a20", "objective": "val_auc"}.items():
            study.set_user_attr(k, v)
        trials = []
        for _ in range(per_study):
            d, n, h = rng.choice(ARCHS)
            params = {
                "arch": f"d{d}-L{n}-H{h}-F{4 * d}",
                "lr": rng.choice(LRS),
                "dropout": 0.1,
                "weight_decay": 0.0,
                "warmup_steps": 100,
                "batch_size": 64,
            }
            diverge = rng.random() < 0.05
            curve = _curve(rng, diverge)
            for r in curve:
                r["val_loss"] = None if r["val_loss"] != r["val_loss"] else r["val_loss"]
            attrs = {
                "d_model": d,
                "n_layers": n,
                "n_heads": h,
                "d_ff": 4 * d,
                "param_count": d * n * 1000,
                "epochs_config": EPOCHS,
                "duration_sec": 20.0,
                "forced_extreme": False,
                "extreme_type": None,
                "learning_curve": curve,
                "diverged": diverge,
            }
            if diverge:
                trials.append(
                    optuna.trial.create_trial(
                        state=optuna.trial.TrialState.FAIL,
                        params=params,
                        distributions=dists,
                        user_attrs={
                            **attrs,
                            "diverged_reason": "non-finite val_loss",
                            "diverge_epoch": 31,
                            "fail_reason": "diverged at epoch 31: non-finite val_loss",
                        },
                    )
                )
            else:
                best = max(curve, key=lambda r: r["val_auc"])
                trials.append(
                    optuna.trial.create_trial(
                        value=best["val_auc"],
                        params=params,
                        distributions=dists,
                        user_attrs={**attrs, "val_auc": best["val_auc"], "val_loss": best["val_loss"]},
                        intermediate_values={r["epoch"]: r["val_auc"] for r in curve},
                    )
                )
        study.add_trials(trials)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def measure(kind: str, source: str, out: str) -> None:
    """Runs in a child process: time one operation, print one JSON line."""
    t0 = time.perf_counter()
    if kind == "trials_dataframe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        rows = sum(
            len(optuna.load_study(study_name=name, storage=source).trials_dataframe())
            for name in optuna.get_all_study_names(source)
        )
        print(json.dumps({"seconds": time.perf_counter() - t0, "rows": rows, "peak_gb": _peak_gb()}))
        return
    from hpo_assets.analysis.report_files import write_outputs
    from hpo_assets.trials.extract import extract

    result = extract([source])
    t_read = time.perf_counter() - t0
    if out:
        write_outputs(result.table, Path(out), sources=[source], problems=result.imported.all_problems)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - t0,
                "read_derive_seconds": t_read,
                "rows": result.table.height,
                "skipped": result.imported.n_skipped,
                "peak_gb": _peak_gb(),
            }
        )
    )


def _child(kind: str, source: str, out: str = "") -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", kind, source, out],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ensure(path: Path, build, *args) -> None:  # type: ignore[no-untyped-def]
    if path.exists():
        return
    t0 = time.perf_counter()
    tmp = path.with_name(path.name + ".partial")
    build(tmp, *args)
    tmp.rename(path)
    print(f"  built {path.name} in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["600", "sqlite", "exports", "trial_json"], default=None)
    parser.add_argument("--measure", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    CACHE.mkdir(exist_ok=True)
    outs = CACHE / "out"
    cases = [args.only] if args.only else ["600", "sqlite", "exports", "trial_json"]
    for case in cases:
        if case == "600":
            src = CACHE / "trial_json_600"
            _ensure(src, write_trial_json, 12, 50)
            r = _child("extract", str(src), str(outs / "600"))
            print(
                f"600 trials (per-trial JSON, 50-epoch curves): {r['seconds']:.2f} s incl. writing all files "
                f"(read+derive {r['read_derive_seconds']:.2f} s), rows {r['rows']}, peak {r['peak_gb']:.2f} GB "
                f"[target < 2 s]"
            )
        elif case == "sqlite":
            db = CACHE / "optuna_10k.db"
            _ensure(db, write_sqlite, 20, 500)
            url = f"sqlite:///{db}"
            mine = _child("extract", url)
            ref = _child("trials_dataframe", url)
            print(
                f"SQLite 10,000 trials: extract (bulk SQL + normalize + derive) {mine['seconds']:.2f} s, rows "
                f"{mine['rows']}, peak {mine['peak_gb']:.2f} GB; trials_dataframe() {ref['seconds']:.2f} s "
                f"(rows {ref['rows']}) -> {ref['seconds'] / mine['seconds']:.1f}x [target >= 5x]"
            )
        elif case == "exports":
            src = CACHE / "exports_100k"
            _ensure(src, write_exports, 100, 1000)
            r = _child("extract", str(src), str(outs / "exports"))
            print(
                f"100,000 trials (template exports): {r['seconds']:.1f} s incl. writing "
                f"(read+derive {r['read_derive_seconds']:.1f} s), rows {r['rows']}, peak {r['peak_gb']:.2f} GB "
                f"[target < 60 s, < 4 GB]"
            )
        elif case == "trial_json":
            src = CACHE / "trial_json_100k"
            _ensure(src, write_trial_json, 100, 1000)
            r = _child("extract", str(src), str(outs / "trial_json"))
            print(
                f"100,000 trials (per-trial JSON, 50-epoch curves): {r['seconds']:.1f} s incl. writing "
                f"(read+derive {r['read_derive_seconds']:.1f} s), rows {r['rows']}, peak {r['peak_gb']:.2f} GB "
                f"[target < 60 s, < 4 GB]"
            )


if __name__ == "__main__":
    main()
