"""The model against each baseline on the same test days: a paired AUC difference with its interval.

Two marginal intervals that overlap say little about which model is better: both are scored on the
same days, so their errors are correlated. The difference is bootstrapped instead, resampling the
same blocks of consecutive days for both (the moving-block bootstrap of calibration/bootstrap.py),
and a verdict is given only when the interval excludes zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from hpo_assets.baselines.reference import BaselineFit
from hpo_assets.calibration.bootstrap import interval
from hpo_assets.calibration.metrics import auc

NOISE = (
    "95% moving-block bootstrap of the paired AUC difference over the test days (the same resampled "
    "days for both models): sampling noise of the evaluation period, fixed fitted models"
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


def paired_auc_differences(
    y: np.ndarray,
    p_model: np.ndarray,
    fits: list[BaselineFit],
    horizon: int,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per baseline with test scores: model AUC - baseline AUC, its interval and verdict.

    The constant `majority` baseline has AUC 0.5 by construction and is compared like the others.
    """
    y = np.asarray(y, dtype=np.float64)
    p_model = np.asarray(p_model, dtype=np.float64)
    rows = []
    for fit in fits:
        score = np.asarray(fit.scores["test"], dtype=np.float64)
        if score.shape != y.shape:
            raise ValueError(f"baseline {fit.model}: {score.shape[0]} test scores for {y.shape[0]} labels")
        if not fit.probabilities:
            score = rankdata(score) / (len(score) + 1)

        def diff(i: np.ndarray, score: np.ndarray = score) -> float | None:
            a, b = auc(y[i], p_model[i]), auc(y[i], score[i])
            return None if a is None or b is None else a - b

        iv = interval(diff, len(y), horizon, n_resamples, seed)
        rows.append({
            "baseline": fit.model, "auc_diff": iv["value"], "auc_diff_lo": iv["lo"], "auc_diff_hi": iv["hi"],
            "verdict": verdict(iv["lo"], iv["hi"]), "resamples": iv["resamples"], "block": iv["block"],
        })  # fmt: skip
    return rows
