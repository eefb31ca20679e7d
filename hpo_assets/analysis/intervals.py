"""Intervals for one AUC and for comparisons between budgets, each saying what noise it reflects.

Z95 intervals assume approximate normality of the estimate; the block bootstrap keeps neighbouring days
together because labels of overlapping horizons are correlated from one day to the next.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054
Z80_POWER = 0.8416212335729143  # one-sided quantile for 80% power


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval (lo/hi None when no interval could be formed) and where it comes from."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    se: float | None = None
    evidence: str = "none"  # test | validation_logits | hanley_mcneil | none
    noise: str = "no interval: nothing known about the noise of this number"
    n: int | None = None
    positives: int | None = None

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None

    def to_dict(self) -> dict:
        return asdict(self)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float | None:
    """Hanley & McNeil (1982) standard error of a ROC AUC from the class sizes (independent samples)."""
    if auc is None or not (0.0 <= auc <= 1.0) or n_pos < 1 or n_neg < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def hanley_mcneil(auc: float | None, n: int | None, positives: int | None) -> Estimate:
    """An AUC with its Hanley-McNeil 95% interval; no interval when the validation size is unknown."""
    if auc is None:
        return Estimate(None)
    if n is None or positives is None or not 0 < positives < n:
        return Estimate(auc)
    se = hanley_mcneil_se(auc, positives, n - positives)
    if se is None:
        return Estimate(auc)
    return Estimate(
        auc,
        max(0.0, auc - Z95 * se),
        min(1.0, auc + Z95 * se),
        se,
        "hanley_mcneil",
        f"validation: selection-biased; Hanley-McNeil from {n} samples / {positives} positives "
        "(treats days as independent, so too narrow for overlapping horizons)",
        n,
        positives,
    )


def block_bootstrap_auc(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    horizon_days: int | None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Estimate:
    """AUC of day-ordered validation scores with the project's block bootstrap 95% interval over days
    (hpo_assets/stats/bootstrap.py: block length from the AUC's own per-day series, never below h)."""
    from hpo_assets.stats.bootstrap import (
        Fold,
        describe,
        draw,
        effective_blocks,
        mean_auc,
        percentile_interval,
    )

    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    ok = np.isfinite(scores)
    scores, labels = scores[ok], labels[ok]
    n = len(labels)
    if n < 8 or labels.min() == labels.max():
        return Estimate(None)
    fold = Fold(labels, {"m": scores[None, :]})
    rs = draw([fold], int(horizon_days or 1), n_boot, seed)
    auc, reps = mean_auc([fold], "m", rs)
    lo, hi, se, valid = percentile_interval(reps, centre=auc, blocks=effective_blocks(rs, [fold]))
    if auc is None or lo is None:
        return Estimate(auc)
    return Estimate(
        auc,
        lo,
        hi,
        se,
        "validation_logits",
        f"validation: selection-biased; {describe(rs.blocks, rs.kind, valid).replace('test days', f'{n} validation days')}",
        n,
        int(labels.sum()),
    )


@dataclass(frozen=True)
class Difference:
    """b - a with its 95% interval (a, b independent), whether their own intervals overlap, and the
    minimal difference detectable at alpha 0.05 with 80% power."""

    diff: float | None
    lo: float | None
    hi: float | None
    intervals_overlap: bool | None
    mdd: float | None


def _se(e: Estimate) -> float | None:
    if e.se is not None:
        return e.se
    if e.has_interval:
        return (e.hi - e.lo) / (2 * Z95)
    return None


def difference(a: Estimate, b: Estimate) -> Difference:
    """b - a. Treating the two as independent is conservative when both are read on the same days."""
    if a.value is None or b.value is None:
        return Difference(None, None, None, None, None)
    d = b.value - a.value
    sa, sb = _se(a), _se(b)
    if sa is None or sb is None or not (a.has_interval and b.has_interval):
        return Difference(d, None, None, None, None)
    se = math.hypot(sa, sb)
    overlap = not (a.hi < b.lo or b.hi < a.lo)
    return Difference(d, d - Z95 * se, d + Z95 * se, overlap, (Z95 + Z80_POWER) * se)


@dataclass(frozen=True)
class SlopeFit:
    """error = intercept + slope * log10(N), with a 95% interval on the slope and the lack-of-fit
    (chi2 of the residuals against the points' own SEs, and the factor the interval was widened by)."""

    slope: float
    slope_lo: float | None
    slope_hi: float | None
    intercept: float
    method: str
    n_points: int
    chi2: float | None = None
    widened_by: float = 1.0


def fit_log_slope(n_params: list[float], error: list[float], se: list[float | None]) -> SlopeFit | None:
    """Weighted least squares with known standard errors when every point has one, else ordinary least
    squares with a t interval on n-2 degrees of freedom (none with 2 points).

    With known SEs and >= 3 points the interval is widened by sqrt(chi2 / (n-2)) when that exceeds 1 and
    then uses t(n-2): points that do not lie on a line are not evidence of a slope (Birge ratio)."""
    x = np.log10(np.asarray(n_params, dtype=float))
    y = np.asarray(error, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    if all(s is not None and s > 0 for s in se):
        w = 1.0 / np.asarray(se, dtype=float) ** 2
        xm = np.sum(w * x) / np.sum(w)
        sxx = np.sum(w * (x - xm) ** 2)
        slope = float(np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / sxx)
        intercept = float(np.sum(w * y) / np.sum(w) - slope * xm)
        dof = len(x) - 2
        chi2 = float(np.sum(w * (y - intercept - slope * x) ** 2)) if dof > 0 else None
        factor = max(1.0, math.sqrt(chi2 / dof)) if chi2 is not None and dof > 0 else 1.0
        q = stats.t.ppf(0.975, dof) if factor > 1.0 else Z95
        half = q * factor * math.sqrt(1.0 / sxx)
        method = "weighted (known SE)" + (
            f", widened x{factor:.2g} for lack of fit (chi2 {chi2:.3g} on {dof} dof)" if factor > 1.0 else ""
        )
        return SlopeFit(slope, slope - half, slope + half, intercept, method, len(x), chi2, factor)
    res = stats.linregress(x, y)
    if len(x) < 3:
        return SlopeFit(float(res.slope), None, None, float(res.intercept), "least squares, 2 points", 2)
    half = stats.t.ppf(0.975, len(x) - 2) * res.stderr
    return SlopeFit(
        float(res.slope),
        float(res.slope - half),
        float(res.slope + half),
        float(res.intercept),
        "least squares (t, residual noise)",
        len(x),
    )
