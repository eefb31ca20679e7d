"""From a study's best trial to a released model: retrain k seeds, test, calibrate, save, card.

This is the only place the test split is read for a study's model: once, for the final numbers of
the chosen configuration. Everything chosen (the seed saved, the calibration method, the baselines'
settings) is chosen on validation.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from hpo_assets import outputs
from hpo_assets.baselines.comparison import NOISE as PAIRED_NOISE
from hpo_assets.baselines.comparison import paired_auc_differences
from hpo_assets.baselines.reference import baseline_rows, fit_baselines
from hpo_assets.calibration import calibrators
from hpo_assets.calibration.evaluation import INTERVAL_NOISE, evaluate, flat
from hpo_assets.calibration.metrics import auc
from hpo_assets.calibration.model_card import card_markdown, reliability_png, seed_spread
from hpo_assets.locations import is_local
from hpo_assets.training.metrics import sigmoid
from hpo_assets.training.retrain import RetrainError, SeedRun, TrialRecipe, retrain
from hpo_assets.training.saved_model import write_model_files

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

# Same data, seed, configuration and thread count on CPU: the retrain repeats the trial's arithmetic, so
# its validation AUC matches to float32 round-off. On CUDA (bf16 autocast, non-deterministic atomics in
# the backward pass) expect differences up to ~0.01 AUC; set `tolerance` accordingly there.
CPU_TOLERANCE = 1e-4
CUDA_TOLERANCE = 1e-2
METRIC_KEYS = ("auc", "log_loss", "brier", "accuracy")


@dataclass
class Release:
    """What `release_model` wrote and measured; `card` is the content of card.json."""

    folder: Path
    card: dict[str, Any]
    png: bytes
    runs: list[SeedRun]


def _objective(run: SeedRun, objective: str) -> float | None:
    value = run.val_metrics.get(objective)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _pick_saved(runs: list[SeedRun], objective: str) -> SeedRun:
    usable = [r for r in runs if r.usable and _objective(r, objective) is not None]
    if not usable:
        reasons = "; ".join(f"seed {r.seed}: {r.reason or 'no finite validation objective'}" for r in runs)
        raise RetrainError(f"no retrain produced a usable model ({reasons})")
    sign = -1.0 if objective == "val_loss" else 1.0
    return max(usable, key=lambda r: (sign * (_objective(r, objective) or 0.0), -r.seed))


def replace_folder(partial: Path, target: Any) -> None:
    """Put a completely written local folder in place as `target`.

    Locally the folder is renamed into place (the previous version kept until that succeeded); under an
    object-store root each file is uploaded as one object (`outputs.write_bytes`), the card last.
    """
    if not is_local(target):
        names = sorted((f.name for f in partial.iterdir()), key=lambda n: n.startswith("card."))
        for name in names:
            outputs.write_bytes(target / name, (partial / name).read_bytes())
        shutil.rmtree(partial, ignore_errors=True)
        return
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    partial.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def release_model(
    data: PreparedData,
    recipe: TrialRecipe,
    seeds: list[int],
    folder: Any,
    *,
    budget: str,
    horizon: str,
    device: str | None = None,
    num_threads: int | None = None,
    tolerance: float = CPU_TOLERANCE,
    n_resamples: int = 1000,
    log: Any = None,
) -> Release:
    """Retrain `recipe` with `seeds` (the first should be the trial's own), evaluate, calibrate, save into `folder`.

    `folder` is a local `Path` or a `UPath` under an object-store outputs root.
    """
    if data.split.test.size == 0:
        raise RetrainError("the split has no test samples (test_start is unset or after the data's end)")
    runs = retrain(data, recipe, seeds, device=device, num_threads=num_threads, log=log)
    saved = _pick_saved(runs, recipe.objective)
    own = runs[0]
    reproduced = _objective(own, recipe.objective)
    diff = None if reproduced is None or recipe.value is None else abs(reproduced - recipe.value)

    y_val = data.y[data.split.val].astype(np.float64)
    y_test = data.y[data.split.test].astype(np.float64)
    p_before = sigmoid(saved.test_logits)
    selection = calibrators.select(saved.val_logits, y_val)
    p_after = selection.calibrator.predict(saved.test_logits)
    before = evaluate(y_test, p_before, data.horizon, n_resamples)
    after = evaluate(y_test, p_after, data.horizon, n_resamples)
    seed_aucs = [auc(y_test, sigmoid(r.test_logits)) if r.usable else None for r in runs]
    fits = fit_baselines(data)
    baselines = baseline_rows(data, n_resamples, fits=fits)
    vs_baselines = paired_auc_differences(y_test, p_after, fits, data.horizon, n_resamples)

    summary = data.split.summary()
    test_block = {
        **flat(after, METRIC_KEYS),
        "seed_aucs": seed_aucs,
        "n": after["n"],
        "positives": after["positives"],
    }
    card: dict[str, Any] = {
        "budget": budget,
        "horizon": horizon,
        "horizon_days": data.horizon,
        "param_count": saved.param_count,
        "test": test_block,
        "test_uncalibrated": flat(before, METRIC_KEYS),
        "interval_noise": INTERVAL_NOISE,
        "bootstrap": {k: before["metrics"]["auc"][k] for k in ("block", "resamples", "level")},
        "seeds": [r.seed for r in runs],
        "saved_seed": saved.seed,
        "seed_runs": [
            {
                "seed": r.seed,
                "status": r.status,
                "reason": r.reason,
                "best_epoch": r.best_epoch,
                "epochs_trained": r.epochs_trained,
                "val_auc": r.val_metrics.get("val_auc"),
                "val_loss": r.val_metrics.get("val_loss"),
                "test_auc": a,
                "duration_sec": r.duration_sec,
            }
            for r, a in zip(runs, seed_aucs, strict=True)
        ],  # fmt: skip
        "seed_spread": seed_spread(seed_aucs),
        "reproduction": {
            "seed": own.seed,
            "objective": recipe.objective,
            "recorded": recipe.value,
            "retrained": reproduced,
            "abs_diff": diff,
            "tolerance": tolerance,
            "passed": diff is not None and diff <= tolerance,
            "cuda_tolerance": CUDA_TOLERANCE,
        },
        "trial": recipe.to_dict(),
        "data": {
            "data_start": str(data.dates[0]),
            "data_end": str(data.dates[-1]),
            **{k: summary.get(k) for k in ("kind", "purge_gap", "val_start", "test_start")},
            **{
                f"{p}_{e}": summary.get(f"{p}_{e}")
                for p in ("train", "val", "test")
                for e in ("first", "last")
            },
            **{f"n_{p}": summary.get(f"n_{p}") for p in ("train", "val", "test")},
        },
        "calibration": {
            **selection.to_dict(),
            "folds": calibrators.CROSS_FIT_FOLDS,
            "before": flat(before),
            "after": flat(after),
            "bins_before_width": before["bins_width"],
            "bins_before_mass": before["bins_mass"],
            "bins_after_width": after["bins_width"],
            "bins_after_mass": after["bins_mass"],
        },
        "baselines": baselines,
        "vs_baselines": vs_baselines,
        "vs_baselines_noise": PAIRED_NOISE,
        "features": list(data.feature_names),
    }
    png = reliability_png(y_test, p_before, p_after, f"{budget} | {horizon}: test reliability, "
                          f"before vs after {selection.method} calibration")  # fmt: skip
    architecture = {
        **recipe.arch.to_dict(), "label": recipe.arch.label, "param_count": saved.param_count,
        "n_features": data.n_features, "context": data.context, "patch_len": recipe.patch_len,
        "stride": recipe.stride, "dropout": float(recipe.train["dropout"]), "parametrization": recipe.parametrization,
        "normalization": str(recipe.train.get("normalization", "revin")),
    }  # fmt: skip
    if is_local(folder):
        folder = Path(folder)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial = Path(tempfile.mkdtemp(prefix="hpo-model-"))
    assert saved.model is not None
    write_model_files(
        partial, saved.model, architecture, list(data.feature_names), selection.calibrator, saved.input_scale
    )
    (partial / "reliability.png").write_bytes(png)
    pl.DataFrame({
        "date": [str(d) for d in data.dates[data.split.test]], "label": y_test.astype(int),
        "logit": saved.test_logits, "p_raw": p_before, "p_calibrated": p_after,
    }).write_csv(partial / "test_predictions.csv")  # fmt: skip
    (partial / "card.json").write_text(json.dumps(card, indent=2, default=str))
    (partial / "card.md").write_text(card_markdown(card))
    if is_local(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
    replace_folder(partial, folder)
    return Release(folder, card, png, runs)
