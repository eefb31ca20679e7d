"""Post-hoc calibrators of a classifier's logits, chosen by cross-fitted validation log loss.

- `platt`: logistic regression on the logit (scikit-learn, unregularized): sigmoid(a z + b).
- `isotonic`: scikit-learn's isotonic regression of the label on the logit (monotone, stepwise).
- `temperature`: sigmoid(z / T), one scalar fitted with SciPy (keeps the ranking, AUC unchanged).
- `temperature_bias`: sigmoid(z / T + b); the bias absorbs a base-rate shift between periods.
- `none`: the raw sigmoid, so "calibration did not help" is a possible outcome.

The choice is made forward in time, the way the calibrator is used: each method is fitted on the
early part of the validation period and scored (log loss) on its late part, after a purge of h - 1
days; validation -> test is a shift in time, and a method that fits the period's middle (cross-fitted
folds) can fail forward (a temperature chosen that way doubled test ECE on logistic h5, 0.137 ->
0.273). A method replaces `none` only when its forward log-loss gain over `none` is beyond the noise
(a block-bootstrap interval of the paired per-day difference below 0); otherwise the raw sigmoid is
kept. Cross-fitted scores are still reported. Each fitted calibrator is a few numbers, saved as JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sklearn
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from hpo_assets.calibration.metrics import logloss

METHODS = ("none", "platt", "isotonic", "temperature", "temperature_bias")
# scikit-learn's guide: isotonic calibration overfits with "<< 1000" calibration samples.
ISOTONIC_MIN_SAMPLES = 1000
CROSS_FIT_FOLDS = 5
FORWARD_FIT_SHARE = 0.6  # fit on the first 60% of validation days, score on the rest
FORWARD_RESAMPLES = 500
SELECTION_RULE = (
    "lowest forward validation log loss (fitted on the early part of validation, scored on its late "
    "part after an h - 1 day purge); a method replaces 'none' only when its paired per-day log-loss "
    "gain over 'none' has a 95% block-bootstrap interval below 0"
)
# No penalty: scikit-learn >= 1.8 spells it C=inf (penalty= is deprecated there), older ones penalty=None.
UNREGULARIZED: dict[str, Any] = (
    {"C": np.inf}
    if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 8)
    else {"penalty": None}
)


class CalibrationError(ValueError):
    """Calibration that cannot be fitted or a calibrator file that cannot be read."""


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of logits z (stable)."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


@dataclass
class Calibrator:
    """A fitted calibrator: `method` and its parameters (all JSON numbers)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def predict(self, logits: Any) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64).reshape(-1)
        m, q = self.method, self.params
        if m == "none":
            return expit(z)
        if m == "platt":
            return expit(q["a"] * z + q["b"])
        if m == "temperature":
            return expit(z / q["temperature"])
        if m == "temperature_bias":
            return expit(z / q["temperature"] + q["bias"])
        if m == "isotonic":
            return np.interp(z, q["x"], q["y"])  # clip outside the fitted range, like out_of_bounds="clip"
        raise CalibrationError(f"calibration method {m!r} is not one of {', '.join(METHODS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, raw: Any) -> Calibrator:
        if (
            not isinstance(raw, dict)
            or raw.get("method") not in METHODS
            or not isinstance(raw.get("params"), dict)
        ):
            raise CalibrationError(
                f"calibrator must be {{'method': one of {list(METHODS)}, 'params': {{...}}}}, got {raw!r:.200}"
            )
        needed = {
            "none": (),
            "platt": ("a", "b"),
            "temperature": ("temperature",),
            "temperature_bias": ("temperature", "bias"),
            "isotonic": ("x", "y"),
        }[raw["method"]]
        missing = [k for k in needed if k not in raw["params"]]
        if missing:
            raise CalibrationError(f"calibrator {raw['method']!r} lacks parameter(s) {', '.join(missing)}")
        return cls(raw["method"], dict(raw["params"]))


def fit(method: str, logits: Any, labels: Any) -> Calibrator:
    """Fit one calibration method on validation logits and 0/1 labels."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if z.shape != y.shape or z.size == 0:
        raise CalibrationError(f"need as many logits as labels (got {z.size} and {y.size}), at least one")
    if not np.all(np.isfinite(z)):
        raise CalibrationError("logits must be finite to calibrate")
    if method not in METHODS:
        raise CalibrationError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")
    if method != "none" and np.unique(y).size < 2:
        raise CalibrationError(f"{method} calibration needs both classes in the fitting labels")
    if method == "none":
        return Calibrator("none")
    if method == "platt":
        lr = LogisticRegression(**UNREGULARIZED, solver="lbfgs", max_iter=1000).fit(z[:, None], y)
        return Calibrator("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
        return Calibrator(
            "isotonic",
            {"x": iso.X_thresholds_.astype(float).tolist(), "y": iso.y_thresholds_.astype(float).tolist()},
        )
    if method == "temperature":
        # optimise log T so T stays positive; bounds cover T in [e^-5, e^5]
        res = minimize_scalar(lambda s: _nll(z * math.exp(-s), y), bounds=(-5.0, 5.0), method="bounded")
        return Calibrator("temperature", {"temperature": float(math.exp(res.x))})
    res2 = minimize(
        lambda v: _nll(z * math.exp(-v[0]) + v[1], y),
        x0=np.zeros(2),
        method="L-BFGS-B",
        bounds=[(-5.0, 5.0), (-20.0, 20.0)],
    )
    return Calibrator(
        "temperature_bias", {"temperature": float(math.exp(res2.x[0])), "bias": float(res2.x[1])}
    )


def cross_fitted_log_loss(
    method: str, logits: Any, labels: Any, folds: int = CROSS_FIT_FOLDS
) -> float | None:
    """Log loss of `method` on each contiguous fold when fitted on the other folds (pooled).

    None when a fold's complement holds one class only (the method cannot be fitted there).
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    out = np.empty_like(z)
    for held in np.array_split(np.arange(z.size), max(2, min(folds, z.size))):
        rest = np.setdiff1d(np.arange(z.size), held)
        try:
            out[held] = fit(method, z[rest], y[rest]).predict(z[held])
        except CalibrationError:
            return None
    return logloss(y, out)


def _per_day_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(q) + (1 - y) * np.log1p(-q))


def forward_split(
    n: int, horizon: int = 1, fit_share: float = FORWARD_FIT_SHARE
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, score) day indices: the first `fit_share` of n days, then the rest after an h - 1 day purge."""
    cut = int(round(n * fit_share))
    return np.arange(cut), np.arange(min(n, cut + max(0, int(horizon) - 1)), n)


def forward_losses(
    method: str, logits: Any, labels: Any, horizon: int = 1, fit_share: float = FORWARD_FIT_SHARE
) -> np.ndarray | None:
    """Per-day log loss on the late part of validation of `method` fitted on its early part; None when
    the method cannot be fitted on the early part (one class) or a part is empty."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    fit_idx, score_idx = forward_split(z.size, horizon, fit_share)
    if fit_idx.size == 0 or score_idx.size == 0:
        return None
    try:
        cal = fit(method, z[fit_idx], y[fit_idx])
    except CalibrationError:
        return None
    return _per_day_loss(y[score_idx], cal.predict(z[score_idx]))


@dataclass
class Selection:
    """The chosen calibrator (fitted on all validation data) and how every method scored.

    `scores`: forward validation log loss (the selection score); `cross_fitted`: the cross-fitted
    scores, for reference; `vs_none`: the best method's paired forward log-loss difference to `none`.
    """

    calibrator: Calibrator
    scores: dict[str, float | None]
    n_validation: int
    warnings: list[str]
    cross_fitted: dict[str, float | None] = field(default_factory=dict)
    best_forward: str | None = None
    vs_none: dict[str, Any] = field(default_factory=dict)
    forward: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.calibrator.method

    def fitted(self, method: str, logits: Any, labels: Any) -> Calibrator:
        return self.calibrator if method == self.method else fit(method, logits, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.method,
            "rule": SELECTION_RULE,
            "forward_val_log_loss": self.scores,
            "best_forward": self.best_forward,
            "vs_none": self.vs_none,
            "forward": self.forward,
            "cross_fitted_val_log_loss": self.cross_fitted,
            "n_validation": self.n_validation,
            "warnings": self.warnings,
            "calibrator": self.calibrator.to_dict(),
        }


def select(
    logits: Any,
    labels: Any,
    folds: int = CROSS_FIT_FOLDS,
    methods: tuple[str, ...] = METHODS,
    *,
    horizon: int = 1,
    fit_share: float = FORWARD_FIT_SHARE,
    n_resamples: int = FORWARD_RESAMPLES,
    seed: int = 0,
) -> Selection:
    """Score every method forward on validation (`SELECTION_RULE`); refit the chosen one on all of it.

    Ties go to the earlier method in `methods` (simpler first). Isotonic is flagged, not banned,
    when the validation set is small: the forward score already penalises its overfitting.
    """
    from hpo_assets.stats.bootstrap import interval

    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    losses = {m: forward_losses(m, z, y, horizon, fit_share) for m in methods}
    scores = {m: (None if v is None else float(v.mean())) for m, v in losses.items()}
    usable = {m: s for m, s in scores.items() if s is not None}
    if not usable:
        raise CalibrationError("no calibration method could be scored on the validation predictions")
    best = min(usable, key=lambda m: (usable[m], methods.index(m)))
    fit_idx, score_idx = forward_split(z.size, horizon, fit_share)
    forward = {
        "fit_days": int(fit_idx.size),
        "score_days": int(score_idx.size),
        "purge": max(0, int(horizon) - 1),
        "fit_share": fit_share,
    }
    warnings = []
    chosen, vs_none = best, {}
    if best != "none" and "none" in methods and losses.get("none") is not None:
        diff = losses[best] - losses["none"]  # type: ignore[operator]
        iv = interval(lambda i: float(diff[i].mean()), diff.size, horizon, n_resamples, seed, series=[diff])
        vs_none = {
            "method": best,
            "diff": iv["value"],
            "lo": iv["lo"],
            "hi": iv["hi"],
            "block": iv["block"],
            "resamples": iv["resamples"],
        }
        if iv["hi"] is None or iv["hi"] >= 0:
            chosen = "none"
            warnings.append(
                f"{best} had the lowest forward log loss but its gain over none "
                f"({iv['value']:+.4f}, 95% interval [{_fmt(iv['lo'])}, {_fmt(iv['hi'])}]) is within the noise: kept none"
            )
    if "isotonic" in methods and z.size < ISOTONIC_MIN_SAMPLES:
        warnings.append(
            f"isotonic: validation set has {z.size} samples (< {ISOTONIC_MIN_SAMPLES}); "
            "its step function is likely to overfit"
        )
    cross = {m: cross_fitted_log_loss(m, z, y, folds) for m in methods}
    return Selection(fit(chosen, z, y), scores, int(z.size), warnings, cross, best, vs_none, forward)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:+.4f}"
