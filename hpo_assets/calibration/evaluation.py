"""One evaluation of probabilities on a split: every metric with its block-bootstrap interval, each ECE
next to what perfect calibration scores on the same predictions, the predictions' spread, and bins."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpo_assets.calibration import perfect_calibration
from hpo_assets.calibration.bootstrap import N_RESAMPLES, metric_intervals
from hpo_assets.calibration.metrics import PROBABILITY_METRICS, Strategy, reliability_bins

INTERVAL_NOISE = (
    "95% stationary block bootstrap over the evaluated days (geometric blocks, mean length chosen "
    "from each metric's own per-day series by Politis-White, never shorter than the horizon): sampling "
    "noise of the evaluation period for the fixed fitted model; seed-to-seed spread is reported separately"
)
ECE_NOISE = (
    "plug-in ECE is biased upward on a few hundred days: it is read against the ECE of a perfectly "
    "calibrated predictor on the same predictions (labels simulated y ~ Bernoulli(p), dependent over "
    "h-day windows), and called miscalibration only above that range"
)
ECE_KEYS: dict[str, Strategy] = {"ece_width": "uniform", "ece_mass": "quantile"}
SPREAD_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
COLLAPSE_BAND = 0.05  # "collapsed": predictions within +-0.05 of the base rate


def spread(p: Any, base_rate: float | None) -> dict[str, Any]:
    """Range, quantiles and share within +-0.05 of `base_rate` of predicted probabilities: shows
    probability collapse (a band squeezed around the base rate) and whether calibration changed it."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return {"n": 0}
    qs = np.quantile(p, SPREAD_QUANTILES)
    near = None if base_rate is None else float(np.mean(np.abs(p - base_rate) <= COLLAPSE_BAND))
    return {
        "n": int(p.size),
        "min": float(p.min()),
        "max": float(p.max()),
        **{f"q{round(q * 100):02d}": float(v) for q, v in zip(SPREAD_QUANTILES, qs, strict=True)},
        "base_rate": base_rate,
        "band": COLLAPSE_BAND,
        "share_near_base_rate": near,
    }


def evaluate(
    y: Any, p: Any, horizon: int, n_resamples: int = N_RESAMPLES, seed: int = 0, n_bins: int = 10
) -> dict[str, Any]:
    """Metrics of probabilities `p` against labels `y` (time order), intervals, ECE references, bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    base = float(y.mean()) if y.size else None
    out: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(np.sum(y == 1)),
        "metrics": metric_intervals(y, p, PROBABILITY_METRICS, horizon, n_resamples, seed),
        "perfect_calibration": {
            k: perfect_calibration.reference(y, p, horizon, n_bins, s, seed=seed) for k, s in ECE_KEYS.items()
        }
        if y.size
        else {},
        "spread": spread(p, base),
        "bins_width": reliability_bins(y, p, n_bins, "uniform").to_rows(),
        "bins_mass": reliability_bins(y, p, n_bins, "quantile").to_rows(),
    }
    return out


def flat(evaluation: dict[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """{metric: value, metric_lo: .., metric_hi: ..} for JSON files and tables; with all keys also
    `perfect_calibration` (per ECE) and `spread` (of the predictions)."""
    out: dict[str, Any] = {}
    for name, iv in evaluation["metrics"].items():
        if keys is not None and name not in keys:
            continue
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = iv["value"], iv["lo"], iv["hi"]
    if keys is None:
        out["perfect_calibration"] = evaluation.get("perfect_calibration", {})
        out["spread"] = evaluation.get("spread", {})
    return out
