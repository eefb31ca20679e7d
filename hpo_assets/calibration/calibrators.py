"""Post-hoc calibrators of a classifier's logits, chosen by cross-fitted validation log loss.

- `platt`: logistic regression on the logit (scikit-learn, unregularized): sigmoid(a z + b).
- `isotonic`: scikit-learn's isotonic regression of the label on the logit (monotone, stepwise).
- `temperature`: sigmoid(z / T), one scalar fitted with SciPy (keeps the ranking, AUC unchanged).
- `temperature_bias`: sigmoid(z / T + b); the bias absorbs a base-rate shift between periods.
- `none`: the raw sigmoid, so "calibration did not help" is a possible outcome.

The choice is scored out of fold (contiguous folds of the validation period): a method is never
judged on the data it was fitted on. Each fitted calibrator is a few numbers, saved as JSON.
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
    res2 = minimize(lambda v: _nll(z * math.exp(-v[0]) + v[1], y), x0=np.zeros(2), method="L-BFGS-B",
                    bounds=[(-5.0, 5.0), (-20.0, 20.0)])  # fmt: skip
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


@dataclass
class Selection:
    """The chosen calibrator (fitted on all validation data) and how every method scored."""

    calibrator: Calibrator
    scores: dict[str, float | None]
    n_validation: int
    warnings: list[str]

    @property
    def method(self) -> str:
        return self.calibrator.method

    def fitted(self, method: str, logits: Any, labels: Any) -> Calibrator:
        return self.calibrator if method == self.method else fit(method, logits, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.method,
            "cross_fitted_val_log_loss": self.scores,
            "n_validation": self.n_validation,
            "warnings": self.warnings,
            "calibrator": self.calibrator.to_dict(),
        }


def select(
    logits: Any, labels: Any, folds: int = CROSS_FIT_FOLDS, methods: tuple[str, ...] = METHODS
) -> Selection:
    """Score every method by cross-fitted validation log loss; refit the best on all validation data.

    Ties go to the earlier method in `methods` (simpler first). Isotonic is flagged, not banned,
    when the validation set is small: the cross-fitted score already penalises its overfitting.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = {m: cross_fitted_log_loss(m, z, y, folds) for m in methods}
    usable = {m: s for m, s in scores.items() if s is not None}
    if not usable:
        raise CalibrationError("no calibration method could be scored on the validation predictions")
    best = min(usable, key=lambda m: (usable[m], methods.index(m)))
    warnings = []
    if "isotonic" in methods and z.size < ISOTONIC_MIN_SAMPLES:
        warnings.append(
            f"isotonic: validation set has {z.size} samples (< {ISOTONIC_MIN_SAMPLES}); "
            "its step function is likely to overfit"
        )
    return Selection(fit(best, z, y), scores, int(z.size), warnings)
