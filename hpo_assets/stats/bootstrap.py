"""The one block bootstrap of the project: block length from the data, circular or stationary blocks,
resamples drawn once and shared by every model compared (paired), the seed effect carried with the days.

Why blocks: neighbouring days share inputs (an 80-day window) and labels (an h-day window), and market
regimes last months, so day-level errors are correlated and an i.i.d. bootstrap is too narrow. Why a
block length from the data: what sets the dependence is how long regimes last, not h; the
Politis-White (2004, corrected 2009) estimate is computed on the statistic's own per-day series and is
never shorter than h. The interval reflects sampling noise of the evaluation days (and, where seeds
are given, of the training seed); it does not reflect the selection of the configuration.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

Kind = Literal["stationary", "circular"]
N_RESAMPLES = 1000
LEVEL = 0.95
KIND: Kind = "stationary"
MIN_BLOCKS = 4  # a resample holds at least this many blocks on average


def optimal_block_length(x: Any, kind: Kind = KIND) -> float:
    """Politis-White automatic block length of one day-ordered series (port of `arch`'s
    `optimal_block_length`, which the tests use as the oracle). 1.0 for a constant or tiny series."""
    x = np.asarray(x, dtype=np.float64)
    nobs = x.shape[0]
    if nobs < 8 or not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return 1.0
    eps = x - x.mean()
    b_max = math.ceil(min(3 * math.sqrt(nobs), nobs / 3))
    kn = max(5, int(math.log10(nobs)))
    m_max = math.ceil(math.sqrt(nobs)) + kn
    cv = 2 * math.sqrt(math.log10(nobs) / nobs)
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    opt_m: int | None = None
    for i in range(min(m_max + 1, nobs - 1)):
        v1 = eps[i + 1 :] @ eps[i + 1 :]
        v2 = eps[: -(i + 1)] @ eps[: -(i + 1)]
        cross = eps[i:] @ eps[: nobs - i]
        acv[i] = cross / nobs
        abs_acorr[i] = abs(cross) / math.sqrt(v1 * v2) if v1 > 0 and v2 > 0 else 0.0
        if i >= kn and opt_m is None and np.all(abs_acorr[i - kn : i] < cv):
            opt_m = i - kn
    m = min(2 * max(opt_m, 1) if opt_m is not None else m_max, m_max)
    g, lr_acv = 0.0, acv[0]
    for k in range(1, m + 1):
        lam = 1.0 if k / m <= 0.5 else 2 * (1 - k / m)
        g += 2 * lam * k * acv[k]
        lr_acv += 2 * lam * acv[k]
    if lr_acv <= 0:
        return 1.0
    d = (2.0 if kind == "stationary" else 4.0 / 3.0) * lr_acv**2
    return float(min(((2 * g**2) / d) ** (1 / 3) * nobs ** (1 / 3), b_max))


def auc_influence(y: Any, score: Any) -> np.ndarray:
    """Per-day placement values of an AUC (DeLong's structural components): the series whose
    autocorrelation sets the AUC's variance, so the one to choose its block length from."""
    y, score = np.asarray(y) > 0.5, np.asarray(score, dtype=np.float64)
    pos, neg = score[y], score[~y]
    out = np.zeros(len(score))
    if len(pos) == 0 or len(neg) == 0:
        return out
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    # share of negatives a positive beats (ties half), share of positives a negative loses to
    below = np.searchsorted(neg_sorted, pos, "left") + np.searchsorted(neg_sorted, pos, "right")
    above = (
        2 * len(pos) - np.searchsorted(pos_sorted, neg, "left") - np.searchsorted(pos_sorted, neg, "right")
    )
    out[y] = below / (2 * len(neg))
    out[~y] = above / (2 * len(pos))
    return out


def block_length(n: int, horizon: int, series: Sequence[Any] = ()) -> int:
    """max(h, Politis-White of each series), at most n // 4 (so a resample holds several blocks)."""
    est = max([optimal_block_length(s) for s in series], default=1.0)
    return int(max(1, min(max(int(horizon), math.ceil(est)), max(1, n // MIN_BLOCKS))))


def block_indices(n: int, block: int, n_resamples: int, seed: int = 0, kind: Kind = KIND) -> np.ndarray:
    """(n_resamples, n) day indices. Circular: blocks of exactly `block` days wrapping around the end;
    stationary (Politis-Romano): geometric block lengths of mean `block`, wrapping."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample")
    block = max(1, min(int(block), n))
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "circular":
        n_blocks = math.ceil(n / block)
        starts = rng.integers(0, n, size=(n_resamples, n_blocks))
        idx = starts[:, :, None] + np.arange(block)[None, None, :]
        return (idx.reshape(n_resamples, -1)[:, :n]) % n
    if kind != "stationary":
        raise ValueError(f"bootstrap kind must be 'stationary' or 'circular', got {kind!r}")
    new = rng.random((n_resamples, n)) < 1.0 / block
    new[:, 0] = True
    begin = np.where(new, t[None, :], 0)
    np.maximum.accumulate(begin, axis=1, out=begin)  # position where the current block began
    starts = rng.integers(0, n, size=(n_resamples, n))
    start_of = np.take_along_axis(starts, begin, axis=1)
    return (start_of + (t[None, :] - begin)) % n


def auc_rows(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of every row of (R, n) labels and scores (ties count half); NaN where a row has one class."""
    y = np.asarray(y) > 0.5
    ranks = rankdata(score, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)


@dataclass(frozen=True)
class Fold:
    """One evaluation period: day-ordered labels and, per model, a (seeds, days) score matrix."""

    y: np.ndarray
    scores: dict[str, np.ndarray]


@dataclass(frozen=True)
class Resamples:
    """Day resamples per fold, drawn once so every model compared sees the same days (a paired
    comparison), and per model one standard normal per resample and fold for its seed effect."""

    days: list[np.ndarray]
    blocks: list[int]
    seeds: dict[str, np.ndarray]
    kind: Kind
    n_resamples: int


def draw(
    folds: Sequence[Fold],
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    kind: Kind = KIND,
    block: int | None = None,
) -> Resamples:
    """Resamples for `folds`: per fold a block length from the AUC placement series of every model's
    mean score (unless `block` is given); per model (R, folds) normals for the seed component."""
    days, blocks = [], []
    rng = np.random.default_rng(seed + 7919)
    for f, fold in enumerate(folds):
        n = len(fold.y)
        b = block or block_length(
            n, horizon, [auc_influence(fold.y, s.mean(axis=0)) for s in fold.scores.values()]
        )
        blocks.append(int(b))
        days.append(block_indices(n, b, n_resamples, seed + 1000 * f, kind))
    models = sorted({m for fold in folds for m in fold.scores})
    seeds = {m: rng.standard_normal((n_resamples, len(folds))) for m in models}
    return Resamples(days, blocks, seeds, kind, n_resamples)


def seed_variance(point: np.ndarray, per_seed: np.ndarray) -> float:
    """Variance of the seed effect on the AUC (between seeds, on the days scored), net of what the day
    resampling already carries. Seeds and days are crossed (every seed scored on the same days), so the
    seeds' spread holds the seed-by-day interaction that the day bootstrap also resamples: resampling
    seeds too would count it twice (Owen 2007, the pigeonhole bootstrap), and the interval over-covers.
    Method of moments: between-seed variance minus the interaction variance from the day replicates."""
    k = per_seed.shape[0]
    if k < 2:
        return 0.0
    between = float(np.nanvar(point, ddof=1))
    dev = per_seed - np.nanmean(per_seed, axis=0, keepdims=True)
    interaction = float(np.nanmean(np.nanvar(dev, axis=1, ddof=1))) * k / (k - 1)
    return max(0.0, between - interaction)


def _pairs(y: np.ndarray) -> np.ndarray:
    pos = (np.asarray(y) > 0.5).sum(axis=-1)
    return (pos * (np.asarray(y).shape[-1] - pos)).astype(np.float64)


def mean_auc(folds: Sequence[Fold], model: str, rs: Resamples) -> tuple[float | None, np.ndarray]:
    """(point, replicates): the model's AUC, the mean over its k seeds, pooled over folds with weights
    positives x negatives (the share of correctly ordered pairs within folds, so a fold with 3
    positives weighs what it knows). Replicates resample days within each fold; the seed effect is added
    as a normal with the variance `seed_variance` estimates / k (k = 1: not estimable, left out)."""
    num_p = den_p = 0.0
    num_r = np.zeros(rs.n_resamples)
    den_r = np.zeros(rs.n_resamples)
    for f, (fold, idx) in enumerate(zip(folds, rs.days, strict=True)):
        s = np.atleast_2d(np.asarray(fold.scores[model], dtype=np.float64))
        y = np.asarray(fold.y)
        point = auc_rows(np.broadcast_to(y, s.shape), s)
        w = float(_pairs(y))
        if np.isfinite(point).any() and w > 0:
            num_p += w * float(np.nanmean(point))
            den_p += w
        yr = y[idx]
        per_seed = np.stack([auc_rows(yr, row[idx]) for row in s])  # (k, R)
        k = s.shape[0]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample with one class is NaN for every seed
            rep = np.nanmean(per_seed, axis=0) if k > 1 else per_seed[0]
            rep = rep + math.sqrt(seed_variance(point, per_seed) / k) * rs.seeds[model][:, f]
        wr = _pairs(yr)
        ok = np.isfinite(rep) & (wr > 0)
        num_r += np.where(ok, wr * np.nan_to_num(rep), 0.0)
        den_r += np.where(ok, wr, 0.0)
    value = num_p / den_p if den_p > 0 else None
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.where(den_r > 0, num_r / den_r, np.nan)
    return value, reps


def percentile_interval(
    replicates: np.ndarray, level: float = LEVEL, centre: float | None = None, blocks: float | None = None
) -> tuple[float | None, float | None, float | None, int]:
    """(lo, hi, se, valid resamples); no interval with fewer than 20 finite replicates.

    With `centre` and `blocks` (the number of independent blocks the days hold) each half-width is
    widened by t(blocks - 1) / z: a block bootstrap of a few months of days sees only that many
    independent pieces, and its variance is biased low by as much (measured in simulation/comparisons.py)."""
    valid = replicates[np.isfinite(replicates)]
    if valid.size < 20:
        return None, None, None, int(valid.size)
    tail = (1 - level) / 2 * 100
    lo, hi = (float(v) for v in np.percentile(valid, [tail, 100 - tail]))
    if centre is not None and blocks is not None and blocks > 1:
        from scipy.stats import norm, t

        q = 1 - (1 - level) / 2
        widen = float(t.ppf(q, blocks - 1) / norm.ppf(q))
        lo, hi = centre - widen * (centre - lo), centre + widen * (hi - centre)
    return lo, hi, float(np.std(valid, ddof=1)), int(valid.size)


def effective_blocks(rs: Resamples, folds: Sequence[Fold]) -> float:
    """Independent pieces of evidence the resampled days hold: the sum over folds of days / block."""
    return float(sum(len(f.y) / b for f, b in zip(folds, rs.blocks, strict=True)))


def interval(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    *,
    series: Sequence[Any] = (),
    block: int | None = None,
    kind: Kind = KIND,
) -> dict[str, Any]:
    """A statistic of day-indexed data and its percentile interval over block resamples.

    `statistic(idx)` evaluates on the days `idx`; resamples where it is undefined (None, one class) are
    dropped and counted. The block is `block`, else chosen from `series` (never below h)."""
    value = statistic(np.arange(n))
    b = block or block_length(n, horizon, series)
    values = [statistic(i) for i in block_indices(n, b, n_resamples, seed, kind)]
    reps = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    lo, hi, se, valid = percentile_interval(reps, level)
    return {
        "value": value,
        "lo": lo,
        "hi": hi,
        "se": se,
        "level": level,
        "block": int(b),
        "kind": kind,
        "resamples": valid,
    }


def describe(block: int | Sequence[int], kind: Kind, resamples: int) -> str:
    """The noise an interval reflects, in words."""
    blocks = [block] if isinstance(block, int) else list(block)
    size = f"{blocks[0]}" if len(set(blocks)) == 1 else "/".join(str(b) for b in blocks)
    shape = "geometric blocks of mean" if kind == "stationary" else "blocks of"
    return f"{kind} block bootstrap over test days ({shape} {size} days, Politis-White length, >= h), {resamples} resamples"
