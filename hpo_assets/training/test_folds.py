"""A chosen configuration retrained and scored on every walk-forward test fold.

Fold k (`data.splits.walk_forward_folds`) trains on the past before its own validation period, early
stops and calibrates there, and is scored on its test days; fold 0 has the study's own train and
validation sets, so its first seed reproduces the trial. Only the `models` group calls this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from hpo_assets import settings as project_settings
from hpo_assets.data.splits import walk_forward_folds
from hpo_assets.training.retrain import SeedRun, TrialRecipe, retrain

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

PREDICTION_SCHEMA = {
    "fold": pl.Int64,
    "date": pl.String,
    "label": pl.Int64,
    "seed": pl.Int64,
    "logit": pl.Float64,
    "p_calibrated": pl.Float64,
}


def fold_datasets(data: PreparedData, n_folds: int, min_class_count: int | None = None) -> list[PreparedData]:
    """`data` once per walk-forward test fold of its (contiguous) split; same arrays, another split."""
    if min_class_count is None:
        min_class_count = int(project_settings.settings()["split"]["min_class_count"])
    return [replace(data, split=s) for s in walk_forward_folds(data.split, n_folds, min_class_count)]


@dataclass
class FoldRuns:
    """One fold's data and its seed runs (the trial's own seed first)."""

    fold: int
    data: PreparedData
    runs: list[SeedRun]

    @property
    def usable(self) -> list[SeedRun]:
        return [r for r in self.runs if r.usable]

    @property
    def y_test(self) -> np.ndarray:
        return np.asarray(self.data.y[self.data.split.test], dtype=np.float64)

    @property
    def y_val(self) -> np.ndarray:
        return np.asarray(self.data.y[self.data.split.val], dtype=np.float64)

    def test_logits(self) -> np.ndarray:
        """(usable seeds, test days) uncalibrated logits."""
        usable = self.usable
        if not usable:
            return np.empty((0, self.data.split.test.size))
        return np.stack([r.test_logits for r in usable])

    def span(self) -> dict[str, Any]:
        """The fold's parts: first/last dates and sizes (from the split's summary)."""
        s = self.data.split.summary()
        keys = [f"{p}_{e}" for p in ("train", "val", "test") for e in ("first", "last")]
        return {
            **{k: s.get(k) for k in keys},
            **{f"n_{p}": s.get(f"n_{p}") for p in ("train", "val", "test")},
            "val_extended_days": s.get("val_extended_days", 0),
        }


def retrain_folds(
    folds: Sequence[PreparedData],
    recipe: TrialRecipe,
    seeds: Sequence[int],
    device: str | None = None,
    num_threads: int | None = None,
    log: Any = None,
) -> list[FoldRuns]:
    """`retrain` on each fold. Only fold 0's models are kept in memory (one of them is saved); the other
    folds keep their logits."""
    out = []
    for k, data in enumerate(folds):
        say = None if log is None else (lambda msg, k=k: log(f"test fold {k}: {msg}"))
        runs = retrain(data, recipe, seeds, device=device, num_threads=num_threads, log=say)
        if k > 0:
            for r in runs:
                r.model = None
        out.append(FoldRuns(k, data, runs))
    return out


def predictions_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """test_predictions.parquet: one row per (fold, test day, seed); `logit` uncalibrated, `p_calibrated`
    through the calibrator chosen on that seed's own fold validation predictions."""
    frames = [pl.DataFrame(r, schema=PREDICTION_SCHEMA) for r in rows]
    return pl.concat(frames) if frames else pl.DataFrame(schema=PREDICTION_SCHEMA)
