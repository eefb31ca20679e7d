"""Moving-block bootstrap intervals over consecutive test samples.

Neighbouring samples share days (an 80-day input window and an h-day label window), so their errors
are correlated and an i.i.d. bootstrap would give intervals that are too narrow. Resampling blocks of
consecutive samples keeps that dependence inside each block; the block is never shorter than the
horizon (overlapping label windows). SciPy's `bootstrap` resamples i.i.d. only, hence this module.

The interval reflects sampling noise of the evaluation period (which days happened to be tested)
for fixed fitted models; seed-to-seed noise is reported separately by the callers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95
MIN_BLOCK = 10  # two trading weeks


def block_length(n: int, horizon: int) -> int:
    """max(horizon, 10, n^(1/3)) samples, and never more than n."""
    return max(1, min(int(n), max(int(horizon), MIN_BLOCK, math.ceil(n ** (1 / 3)))))


def block_indices(n: int, block: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) indices: random starts of blocks of `block` consecutive samples, cut to n."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample")
    block = max(1, min(int(block), n))
    n_blocks = math.ceil(n / block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(n_resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_resamples, -1)
    return idx[:, :n]


def interval(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:
    """The statistic on all samples and its percentile interval over block-bootstrap resamples.

    `statistic(idx)` evaluates on the samples `idx`; resamples where it is undefined (None, e.g. one
    class only) are dropped and counted. With fewer than 20 valid resamples the interval is None.
    """
    value = statistic(np.arange(n))
    block = block_length(n, horizon)
    values = [statistic(i) for i in block_indices(n, block, n_resamples, seed)]
    valid = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    lo = hi = None
    if valid.size >= 20:
        tail = (1 - level) / 2 * 100
        lo, hi = (float(v) for v in np.percentile(valid, [tail, 100 - tail]))
    return {
        "value": value,
        "lo": lo,
        "hi": hi,
        "level": level,
        "block": block,
        "resamples": int(valid.size),
    }


def metric_intervals(
    y: np.ndarray,
    p: np.ndarray,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float | None]],
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """`interval` of each metric(y, p); the same resamples (same seed) for every metric."""
    y, p = np.asarray(y), np.asarray(p)

    def on(fn: Callable[[np.ndarray, np.ndarray], float | None]) -> Callable[[np.ndarray], float | None]:
        return lambda i: fn(y[i], p[i])

    return {name: interval(on(fn), len(y), horizon, n_resamples, seed) for name, fn in metrics.items()}
