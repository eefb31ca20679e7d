"""One evaluation of probabilities on a split: every metric with its block-bootstrap interval, and bins."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpo_assets.calibration.bootstrap import N_RESAMPLES, metric_intervals
from hpo_assets.calibration.metrics import PROBABILITY_METRICS, reliability_bins

INTERVAL_NOISE = (
    "95% moving-block bootstrap over the evaluated days (blocks of consecutive samples, at least the "
    "horizon and 10 days long): sampling noise of the evaluation period for the fixed fitted model; "
    "seed-to-seed spread is reported separately"
)


def evaluate(
    y: Any, p: Any, horizon: int, n_resamples: int = N_RESAMPLES, seed: int = 0, n_bins: int = 10
) -> dict[str, Any]:
    """Metrics of probabilities `p` against labels `y` (time order), intervals, reliability bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    out: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(np.sum(y == 1)),
        "metrics": metric_intervals(y, p, PROBABILITY_METRICS, horizon, n_resamples, seed),
        "bins_width": reliability_bins(y, p, n_bins, "uniform").to_rows(),
        "bins_mass": reliability_bins(y, p, n_bins, "quantile").to_rows(),
    }
    return out


def flat(evaluation: dict[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """{metric: value, metric_lo: .., metric_hi: ..} for JSON files and tables."""
    out: dict[str, Any] = {}
    for name, iv in evaluation["metrics"].items():
        if keys is not None and name not in keys:
            continue
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = iv["value"], iv["lo"], iv["hi"]
    return out
