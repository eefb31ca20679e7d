"""Four reference predictors of the label, fitted on the study's training samples, tuned on validation.

- `majority`: the training positive rate for every sample (the majority class as a probability);
- `atr_ratio`: atr_14 / close of the sample's last day, a volatility score with no training (AUC only:
  it is not a probability, so its log loss and Brier are null);
- `logistic`: standardized logistic regression on the last day's 25 features, C chosen by
  validation log loss;
- `hgb`: scikit-learn's HistGradientBoostingClassifier on the same features, learning rate and
  leaf count chosen by validation log loss.

The test split is only scored, never used to choose anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hpo_assets.calibration.bootstrap import metric_intervals
from hpo_assets.calibration.evaluation import INTERVAL_NOISE
from hpo_assets.calibration.metrics import auc, brier, logloss

BASELINES = ("majority", "atr_ratio", "logistic", "hgb")
LOGISTIC_C = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
HGB_GRID = tuple((lr, leaves) for lr in (0.05, 0.1) for leaves in (7, 31))
SPLITS = (("validation", "val"), ("test", "test"))


@dataclass
class BaselineFit:
    """One reference predictor's scores per split and what was chosen on validation."""

    model: str
    scores: dict[str, np.ndarray]  # split name -> probabilities (or a raw score for atr_ratio)
    probabilities: bool = True
    chosen: dict[str, Any] = field(default_factory=dict)


def _val_loss(y: np.ndarray, p: np.ndarray) -> float:
    loss = logloss(y, p)
    return float("inf") if loss is None else loss


def _last_day(data: Any, idx: np.ndarray) -> np.ndarray:
    return np.asarray(data.x[np.asarray(idx, dtype=np.int64)], dtype=np.float64)


def fit_baselines(data: Any, seed: int = 0, threads: int | None = 1) -> list[BaselineFit]:
    """Fit the four baselines on `data.split.train`, choose on `.val`, score `.val` and `.test`.

    `data` is a `hpo_assets.data.dataset.PreparedData` (features x, labels y, split). `threads`
    caps the OpenMP/BLAS threads (1 by default: on a shared small machine more threads spin-wait).
    """
    with threadpool_limits(limits=threads):
        return _fit(data, seed)


def _fit(data: Any, seed: int) -> list[BaselineFit]:
    split = data.split
    parts = {"train": split.train, "val": split.val, "test": split.test}
    x = {k: _last_day(data, v) for k, v in parts.items()}
    y = {k: np.asarray(data.y[v], dtype=np.float64) for k, v in parts.items()}
    names = list(data.feature_names)
    fits = []

    rate = float(y["train"].mean())
    fits.append(BaselineFit("majority", {k: np.full(len(y[k]), rate) for k in ("val", "test")},
                            chosen={"train_positive_rate": rate}))  # fmt: skip

    atr, close = names.index("atr_14"), names.index("close")
    fits.append(BaselineFit("atr_ratio", {k: x[k][:, atr] / x[k][:, close] for k in ("val", "test")},
                            probabilities=False))  # fmt: skip

    best: tuple[float, Any, Any] | None = None
    for c in LOGISTIC_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(
            x["train"], y["train"]
        )
        loss = _val_loss(y["val"], model.predict_proba(x["val"])[:, 1])
        if best is None or loss < best[0]:
            best = (loss, model, c)
    assert best is not None
    fits.append(BaselineFit("logistic", {k: best[1].predict_proba(x[k])[:, 1] if len(x[k]) else np.empty(0)
                                         for k in ("val", "test")}, chosen={"C": best[2]}))  # fmt: skip

    best = None
    for lr, leaves in HGB_GRID:
        model = HistGradientBoostingClassifier(
            learning_rate=lr, max_leaf_nodes=leaves, max_iter=100, early_stopping=False, random_state=seed
        ).fit(x["train"], y["train"])
        loss = _val_loss(y["val"], model.predict_proba(x["val"])[:, 1])
        if best is None or loss < best[0]:
            best = (loss, model, (lr, leaves))
    assert best is not None
    fits.append(BaselineFit("hgb", {k: best[1].predict_proba(x[k])[:, 1] if len(x[k]) else np.empty(0)
                                    for k in ("val", "test")},
                            chosen={"learning_rate": best[2][0], "max_leaf_nodes": best[2][1]}))  # fmt: skip
    return fits


def baseline_rows(
    data: Any, n_resamples: int = 1000, seed: int = 0, fits: list[BaselineFit] | None = None
) -> list[dict[str, Any]]:
    """One row per baseline and split: AUC, log loss, Brier with block-bootstrap intervals.

    `fits`: baselines already fitted on `data` (`fit_baselines`), so a caller that also compares
    against their scores fits them once.
    """
    metrics = {"auc": auc, "log_loss": logloss, "brier": brier}
    rows = []
    for fit in fits if fits is not None else fit_baselines(data, seed):
        for split_name, key in SPLITS:
            idx = getattr(data.split, key)
            yk = np.asarray(data.y[idx], dtype=np.float64)
            if len(yk) == 0:
                continue
            score = fit.scores[key]
            if not fit.probabilities:  # a raw score: rank it for AUC (any monotone map keeps AUC)
                score = rankdata(score) / (len(score) + 1)
            ev = metric_intervals(yk, score, metrics, data.horizon, n_resamples, seed)
            row: dict[str, Any] = {"model": fit.model, "split": split_name}
            for name in metrics:
                iv = ev[name]
                usable = fit.probabilities or name == "auc"
                row[name] = iv["value"] if usable else None
                row[f"{name}_lo"] = iv["lo"] if usable else None
                row[f"{name}_hi"] = iv["hi"] if usable else None
            row.update(n=int(len(yk)), positives=int(np.sum(yk == 1)), chosen=fit.chosen,
                       probabilities=fit.probabilities, block=ev["auc"]["block"])  # fmt: skip
            rows.append(row)
    return rows


def baselines_document(
    data: Any, horizon_label: str, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The `baselines_<horizon>.json` document: rows plus the split they were measured on."""
    summary = data.split.summary()
    return {
        "horizon": horizon_label,
        "rows": baseline_rows(data, n_resamples, seed),
        "interval_noise": INTERVAL_NOISE,
        "split": {k: v for k, v in summary.items() if isinstance(v, str | int | float) or v is None},
        "data_start": str(data.dates[0]),
        "data_end": str(data.dates[-1]),
        "features": list(data.feature_names),
    }
