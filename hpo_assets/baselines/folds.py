"""The reference predictors on walk-forward test folds: fitted per fold on that fold's training samples,
chosen on its validation period, scored on its test days; per-fold rows and a pooled row per baseline.

Pooled AUC = the folds weighted by positives x negatives, with the paired block bootstrap of `baselines.comparison` (the same
resampled days as any model it is compared with); pooled log loss and Brier are over all test days
(the folds tile the test period in time order), with the calibration package's block-bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hpo_assets.baselines.comparison import FoldAucs, auc_block, baseline_scores, fold_aucs
from hpo_assets.baselines.reference import BaselineFit, baseline_rows, fit_baselines
from hpo_assets.calibration.bootstrap import metric_intervals
from hpo_assets.calibration.metrics import brier, logloss
from hpo_assets.stats.bootstrap import Fold

POOLED_NOISE = (
    "test AUC: mean over the walk-forward test folds, 95% interval from a block bootstrap of the test days "
    "within each fold (Politis-White block length, >= h), the baseline refitted per fold on the past; "
    "log loss / Brier: over all test days, block bootstrap; sampling noise of the evaluated days"
)


def fit_folds(folds: Sequence[Any], seed: int = 0) -> list[list[BaselineFit]]:
    """`fit_baselines` on each fold (`PreparedData` with a walk-forward split)."""
    return [fit_baselines(data, seed) for data in folds]


def score_folds(
    folds: Sequence[Any],
    fits: Sequence[Sequence[BaselineFit]],
    models: Sequence[dict[str, np.ndarray]] | None = None,
) -> list[Fold]:
    """`stats.bootstrap.Fold` per fold: test labels, the baselines' (1, n) scores and any `models` scores."""
    out = []
    for k, (data, fit) in enumerate(zip(folds, fits, strict=True)):
        y = np.asarray(data.y[data.split.test], dtype=np.float64)
        extra = dict(models[k]) if models is not None else {}
        out.append(Fold(y, {**extra, **baseline_scores(fit, len(y))}))
    return out


def _pooled_probability_metrics(
    folds: Sequence[Any], fits: Sequence[Sequence[BaselineFit]], model: str, n_resamples: int, seed: int
) -> dict[str, Any]:
    fit = [next(f for f in fold_fits if f.model == model) for fold_fits in fits]
    if not fit[0].probabilities:
        return {k: None for k in ("log_loss", "log_loss_lo", "log_loss_hi", "brier", "brier_lo", "brier_hi")}
    y = np.concatenate([np.asarray(d.y[d.split.test], dtype=np.float64) for d in folds])
    p = np.concatenate([np.asarray(f.scores["test"], dtype=np.float64) for f in fit])
    ev = metric_intervals(y, p, {"log_loss": logloss, "brier": brier}, folds[0].horizon, n_resamples, seed)
    return {
        f"{k}{s}": ev[k][v]
        for k in ("log_loss", "brier")
        for s, v in (("", "value"), ("_lo", "lo"), ("_hi", "hi"))
    }


def fold_rows(
    folds: Sequence[Any],
    fits: Sequence[Sequence[BaselineFit]],
    aucs: FoldAucs,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, per-fold rows). `rows`: fold 0's validation row (the studies' own split) and one pooled test
    row per baseline; per-fold rows: validation and test of every fold, test AUC from the paired resamples."""
    per_fold = []
    for k, (data, fold_fits) in enumerate(zip(folds, fits, strict=True)):
        for row in baseline_rows(data, n_resamples, seed, fits=list(fold_fits)):
            row = {"fold": k, **row}
            if row["split"] == "test":
                block = auc_block(*aucs.per_fold[k][row["model"]], aucs.level, aucs.blocks(k))
                row.update({key: block[key] for key in ("auc", "auc_lo", "auc_hi", "auc_se")})
                row["block"] = aucs.resamples.blocks[k]
                row["test_first"], row["test_last"] = (str(data.dates[data.split.test[i]]) for i in (0, -1))
            per_fold.append(row)
    rows = [{**r, "fold": 0} for r in per_fold if r["fold"] == 0 and r["split"] == "validation"]
    for first in fits[0]:
        pooled = auc_block(*aucs.pooled[first.model], aucs.level, aucs.blocks())
        tests = [r for r in per_fold if r["model"] == first.model and r["split"] == "test"]
        rows.append(
            {
                "model": first.model,
                "split": "test",
                "fold": "pooled",
                **{k: pooled[k] for k in ("auc", "auc_lo", "auc_hi", "auc_se")},
                **_pooled_probability_metrics(folds, fits, first.model, n_resamples, seed),
                "n": sum(r["n"] for r in tests),
                "positives": sum(r["positives"] for r in tests),
                "folds": len(tests),
                "probabilities": first.probabilities,
                "block": list(aucs.resamples.blocks),
                "chosen": [r["chosen"] for r in tests],
            }
        )
    return rows, per_fold


def folds_document(
    folds: Sequence[Any], horizon_label: str, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The `baselines_<horizon>.json` document over walk-forward folds: `rows` (fold 0 validation + pooled
    test, the shape the report reads), `test_folds` (every fold's rows) and each fold's dates."""
    fits = fit_folds(folds, seed)
    aucs = fold_aucs(score_folds(folds, fits), folds[0].horizon, n_resamples, seed)
    rows, per_fold = fold_rows(folds, fits, aucs, n_resamples, seed)
    data = folds[0]
    spans = []
    for k, d in enumerate(folds):
        s = d.split.summary()
        spans.append(
            {
                "fold": k,
                **{
                    key: s.get(key)
                    for key in (
                        "train_first",
                        "train_last",
                        "n_train",
                        "val_first",
                        "val_last",
                        "n_val",
                        "test_first",
                        "test_last",
                        "n_test",
                        "pos_test",
                        "val_extended_days",
                    )
                },
            }
        )
    summary = data.split.summary()
    return {
        "horizon": horizon_label,
        "rows": rows,
        "test_folds": per_fold,
        "folds": spans,
        "n_folds": len(folds),
        "interval_noise": POOLED_NOISE,
        "auc_noise": aucs.noise(),
        "split": {k: v for k, v in summary.items() if isinstance(v, str | int | float) or v is None},
        "data_start": str(data.dates[0]),
        "data_end": str(data.dates[-1]),
        "features": list(data.feature_names),
    }
