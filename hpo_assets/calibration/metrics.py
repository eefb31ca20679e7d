"""Probability metrics of binary predictions: AUC, log loss, Brier, accuracy and calibration error.

Calibration error bins the predicted probabilities the way scikit-learn's `calibration_curve` does
(equal-width: `linspace(0, 1)`; equal-mass: quantiles of the predictions) and, unlike a common
mistake, skips empty bins instead of counting them as accuracy 0. Every function returns None where
the number is undefined (one class only, no samples), never a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

Strategy = Literal["uniform", "quantile"]
EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] for log loss, so a 0/1 output scores finite


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.size}) and probabilities ({p.size}) differ in length")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 or 1")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return y, p


@dataclass(frozen=True)
class Bins:
    """Non-empty bins of a reliability diagram: edges, sample counts, mean confidence, observed rate."""

    strategy: str
    n_bins: int
    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    rate: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return np.abs(self.rate - self.confidence)

    def to_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "lower": float(lo),
                "upper": float(hi),
                "count": int(n),
                "confidence": float(c),
                "rate": float(r),
            }
            for lo, hi, n, c, r in zip(
                self.lower, self.upper, self.count, self.confidence, self.rate, strict=True
            )
        ]


def reliability_bins(y: Any, p: Any, n_bins: int = 10, strategy: Strategy = "uniform") -> Bins:
    """Bin predictions like `sklearn.calibration.calibration_curve`; empty bins are dropped."""
    y, p = _arrays(y, p)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, int(n_bins) + 1)) if p.size else np.array([0.0, 1.0])
    else:
        raise ValueError(f"strategy {strategy!r} is not 'uniform' or 'quantile'")
    ids = np.searchsorted(edges[1:-1], p)  # the assignment calibration_curve uses
    nb = len(edges) - 1
    count = np.bincount(ids, minlength=nb)
    conf_sum = np.bincount(ids, weights=p, minlength=nb)
    pos_sum = np.bincount(ids, weights=y, minlength=nb)
    keep = count > 0
    return Bins(
        strategy=strategy,
        n_bins=int(n_bins),
        lower=edges[:-1][keep],
        upper=edges[1:][keep],
        count=count[keep],
        confidence=conf_sum[keep] / count[keep],
        rate=pos_sum[keep] / count[keep],
    )


def expected_calibration_error(
    y: Any, p: Any, n_bins: int = 10, strategy: Strategy = "uniform"
) -> float | None:
    """Sum over non-empty bins of (bin share) x |observed rate - mean confidence|."""
    bins = reliability_bins(y, p, n_bins, strategy)
    total = int(bins.count.sum())
    return None if total == 0 else float(np.sum(bins.count * bins.gap) / total)


def maximum_calibration_error(
    y: Any, p: Any, n_bins: int = 10, strategy: Strategy = "uniform"
) -> float | None:
    """Largest |observed rate - mean confidence| over the non-empty bins."""
    bins = reliability_bins(y, p, n_bins, strategy)
    return None if bins.count.size == 0 else float(bins.gap.max())


def auc(y: Any, p: Any) -> float | None:
    """ROC-AUC as the Mann-Whitney statistic (ties count one half), equal to sklearn's `roc_auc_score`.

    Written out because the bootstrap calls it thousands of times and scikit-learn's input checks
    cost ~100x the arithmetic on a few hundred samples; tests compare it with scikit-learn.
    """
    y, p = _arrays(y, p)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(y: Any, p: Any) -> float | None:
    """Mean binary cross-entropy with p clipped to [EPS, 1 - EPS] (= sklearn's `log_loss` on clipped p)."""
    y, p = _arrays(y, p)
    if y.size == 0:
        return None
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def brier(y: Any, p: Any) -> float | None:
    """Mean squared error of the probability (= sklearn's `brier_score_loss`)."""
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2)) if y.size else None


def accuracy(y: Any, p: Any, threshold: float = 0.5) -> float | None:
    y, p = _arrays(y, p)
    return float(np.mean((p >= threshold) == (y == 1))) if y.size else None


PROBABILITY_METRICS = {
    "auc": auc,
    "log_loss": logloss,
    "brier": brier,
    "accuracy": accuracy,
    "ece_width": lambda y, p: expected_calibration_error(y, p, 10, "uniform"),
    "ece_mass": lambda y, p: expected_calibration_error(y, p, 10, "quantile"),
    "mce_width": lambda y, p: maximum_calibration_error(y, p, 10, "uniform"),
}
