"""The model against each baseline on the same test days of every walk-forward fold: paired AUC differences.

Two marginal intervals that overlap say little about which model is better: both are scored on the
same days, so their errors are correlated. The difference is bootstrapped instead, with the shared
block bootstrap of `hpo_assets.stats.bootstrap`: per fold the same resampled blocks of days for every
model, and the model's k retrained seed effect carried alongside them (its AUC is the mean over seeds, so
seed luck is noise too). Pooled = the folds weighted by positives x negatives (the pairs each orders). A verdict only when the interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo_assets.baselines.reference import BaselineFit
from hpo_assets.stats.bootstrap import (
    LEVEL,
    Fold,
    Resamples,
    describe,
    draw,
    effective_blocks,
    mean_auc,
    percentile_interval,
)

NOISE = (
    "95% percentile interval of the paired AUC difference (model's mean over its retrained seeds minus the "
    "baseline), the mean over the walk-forward test folds: block bootstrap of the test days within each fold, "
    "the same resampled days for both models, the model's seed effect carried with them; it reflects which days "
    "were tested and the training seed, not how the configuration was selected"
)


def verdict(lo: float | None, hi: float | None) -> str:
    """'model better' / 'baseline better' only when the interval excludes 0; else 'inconclusive'."""
    if lo is None or hi is None:
        return "inconclusive"
    if lo > 0:
        return "model better"
    if hi < 0:
        return "baseline better"
    return "inconclusive"


@dataclass
class FoldAucs:
    """Every model's AUC (mean over seeds) per fold and pooled, with replicates from one set of resamples."""

    folds: list[Fold]
    resamples: Resamples
    pooled: dict[str, tuple[float | None, np.ndarray]]
    per_fold: list[dict[str, tuple[float | None, np.ndarray]]]
    level: float = LEVEL

    @property
    def models(self) -> list[str]:
        return list(self.pooled)

    def noise(self) -> str:
        return describe(self.resamples.blocks, self.resamples.kind, self.resamples.n_resamples)

    def blocks(self, fold: int | None = None) -> float:
        """Independent blocks behind the pooled (or one fold's) interval, for its small-sample widening."""
        if fold is None:
            return effective_blocks(self.resamples, self.folds)
        return len(self.folds[fold].y) / self.resamples.blocks[fold]


def fold_aucs(
    folds: Sequence[Fold], horizon: int, n_resamples: int = 1000, seed: int = 0, level: float = LEVEL
) -> FoldAucs:
    """Draw the paired resamples once (`stats.bootstrap.draw`) and every model's AUC replicates on them."""
    folds = list(folds)
    if not folds:
        raise ValueError("no test fold to compare models on")
    models = list(dict.fromkeys(m for fold in folds for m in fold.scores))
    for f, fold in enumerate(folds):
        for m in models:
            s = np.atleast_2d(np.asarray(fold.scores.get(m, np.empty((0, 0)))))
            if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] != len(fold.y):
                raise ValueError(
                    f"fold {f}: {m} has scores of shape {s.shape} for {len(fold.y)} test days "
                    "(one row per seed, one column per day)"
                )
    rs = draw(folds, horizon, n_resamples, seed)
    pooled = {m: mean_auc(folds, m, rs) for m in models}
    per_fold = []
    for f, fold in enumerate(folds):
        one = Resamples([rs.days[f]], [rs.blocks[f]], rs.seeds, rs.kind, rs.n_resamples)
        per_fold.append({m: mean_auc([fold], m, one) for m in models})
    return FoldAucs(folds, rs, pooled, per_fold, level)


def auc_block(
    point: float | None, replicates: np.ndarray, level: float = LEVEL, blocks: float | None = None
) -> dict[str, Any]:
    """{auc, auc_lo, auc_hi, auc_se, resamples}: a point and its percentile interval."""
    lo, hi, se, valid = percentile_interval(replicates, level, point, blocks)
    return {"auc": point, "auc_lo": lo, "auc_hi": hi, "auc_se": se, "resamples": valid}


def difference(
    a: tuple[float | None, np.ndarray],
    b: tuple[float | None, np.ndarray],
    level: float = LEVEL,
    blocks: float | None = None,
) -> dict[str, Any]:
    """a - b with the interval of the replicate differences (paired: both from the same resamples), the
    SE two independent intervals would give (`auc_diff_se_unpaired`) and the verdict."""
    point = None if a[0] is None or b[0] is None else a[0] - b[0]
    lo, hi, se, valid = percentile_interval(a[1] - b[1], level, point, blocks)
    se_a, se_b = (percentile_interval(x[1], level)[2] for x in (a, b))
    unpaired = None if se_a is None or se_b is None else math.sqrt(se_a**2 + se_b**2)
    return {
        "auc_diff": point,
        "auc_diff_lo": lo,
        "auc_diff_hi": hi,
        "auc_diff_se": se,
        "auc_diff_se_unpaired": unpaired,
        "verdict": verdict(lo, hi),
        "resamples": valid,
    }


def versus(aucs: FoldAucs, model: str = "model") -> list[dict[str, Any]]:
    """One row per other model: pooled paired difference `model - other`, and the same per fold."""
    rows = []
    for other in aucs.models:
        if other == model:
            continue
        row: dict[str, Any] = {
            "baseline": other,
            **difference(aucs.pooled[model], aucs.pooled[other], aucs.level, aucs.blocks()),
        }
        row["block"] = aucs.resamples.blocks[0] if len(aucs.folds) == 1 else list(aucs.resamples.blocks)
        row["folds"] = [
            {"fold": f, **difference(per[model], per[other], aucs.level, aucs.blocks(f))}
            for f, per in enumerate(aucs.per_fold)
        ]
        rows.append(row)
    return rows


def baseline_scores(fits: Sequence[BaselineFit], n: int) -> dict[str, np.ndarray]:
    """{baseline: (1, n) test scores}; raw scores are kept (AUC only ranks them)."""
    out = {}
    for fit in fits:
        score = np.asarray(fit.scores["test"], dtype=np.float64)
        if score.shape != (n,):
            raise ValueError(f"baseline {fit.model}: {score.shape[0]} test scores for {n} labels")
        out[fit.model] = score[None, :]
    return out


def paired_auc_differences(
    y: np.ndarray,
    p_model: np.ndarray,
    fits: list[BaselineFit],
    horizon: int,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One test period, one score per day for the model (a (k, n) array for k seeds also works): one row
    per baseline with model AUC - baseline AUC, its paired interval and verdict."""
    y = np.asarray(y, dtype=np.float64)
    scores = {"model": np.atleast_2d(np.asarray(p_model, dtype=np.float64)), **baseline_scores(fits, len(y))}
    return versus(fold_aucs([Fold(y, scores)], horizon, n_resamples, seed))
