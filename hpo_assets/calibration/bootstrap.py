"""Block-bootstrap intervals of test metrics: a thin adapter over the shared `hpo_assets.stats.bootstrap`.

There is one block bootstrap in the project (stationary blocks, Politis-White length from the data,
never shorter than h); this module only says which per-day series sets each metric's block:
AUC its placement values (`stats.bootstrap.auc_influence`), log loss / Brier / accuracy their per-day
losses, ECE / MCE the per-day residual y - p (what the bins sum). A caller that passes only a
statistic gets the block from the statistic's own jackknife influence series.

The interval reflects sampling noise of the evaluation period (which days happened to be tested)
for fixed fitted models; seed-to-seed noise is reported separately by the callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hpo_assets.stats import bootstrap as shared

N_RESAMPLES = shared.N_RESAMPLES
LEVEL = shared.LEVEL
KIND: shared.Kind = shared.KIND
SENSITIVITY_FACTORS = (0.5, 1.0, 2.0)
EPS = 1e-7

block_length = shared.block_length
block_indices = shared.block_indices


def jackknife_influence(statistic: Callable[[np.ndarray], float | None], n: int) -> np.ndarray:
    """(n,) leave-one-day-out influence of a statistic of day indices (0 where undefined): the per-day
    series whose autocorrelation sets the statistic's variance when no closed form is at hand."""
    full = statistic(np.arange(n))
    out = np.zeros(n)
    if full is None or n < 3:
        return out
    keep = np.ones(n, dtype=bool)
    for t in range(n):
        keep[t] = False
        v = statistic(np.flatnonzero(keep))
        keep[t] = True
        out[t] = 0.0 if v is None or not np.isfinite(v) else (n - 1) * (full - v)
    return out


def interval(
    statistic: Callable[[np.ndarray], float | None],
    n: int,
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    *,
    series: Sequence[Any] | None = None,
    block: int | None = None,
    kind: shared.Kind = KIND,
) -> dict[str, Any]:
    """The statistic on all days and its percentile interval over block resamples (`stats.bootstrap`).

    The block is `block`, else Politis-White on `series` (never below h), else on the statistic's
    jackknife influence. Keys: value, lo, hi, se, level, block, kind, resamples, block_from.
    """
    source = "given" if block else "per-day series" if series else "jackknife influence"
    if not block and not series:
        series = [jackknife_influence(statistic, n)]
    out = shared.interval(
        statistic, n, horizon, n_resamples, seed, level, series=series or (), block=block, kind=kind
    )
    return {**out, "block_from": source}


def metric_series(name: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The per-day series that sets metric `name`'s block length."""
    if name == "auc":
        return shared.auc_influence(y, p)
    if name == "log_loss":
        q = np.clip(p, EPS, 1 - EPS)
        return -(y * np.log(q) + (1 - y) * np.log1p(-q))
    if name == "brier":
        return (p - y) ** 2
    if name == "accuracy":
        return ((p >= 0.5) == (y == 1)).astype(np.float64)
    return y - p  # ECE/MCE: the bins sum residuals


def metric_intervals(
    y: np.ndarray,
    p: np.ndarray,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float | None]],
    horizon: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """`interval` of each metric(y, p), each with the block its own per-day series calls for."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)

    def on(fn: Callable[[np.ndarray, np.ndarray], float | None]) -> Callable[[np.ndarray], float | None]:
        return lambda i: fn(y[i], p[i])

    return {
        name: interval(on(fn), len(y), horizon, n_resamples, seed, series=[metric_series(name, y, p)])
        for name, fn in metrics.items()
    }


def auc_block_sensitivity(
    y: Any, p: Any, horizon: int, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """SE and interval of the AUC at half, one and twice the automatic block (block/2 never below h):
    how much the interval depends on the block length the data chose."""
    from hpo_assets.calibration.metrics import auc

    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    n = len(y)
    chosen = block_length(n, horizon, [shared.auc_influence(y, p)])
    rows = []
    for factor in SENSITIVITY_FACTORS:
        b = max(int(horizon), 1, int(round(chosen * factor)))
        iv = shared.interval(lambda i: auc(y[i], p[i]), n, horizon, n_resamples, seed, series=(), block=b)
        rows.append({"factor": factor, "block": b, "se": iv["se"], "lo": iv["lo"], "hi": iv["hi"]})
    return {"block": int(chosen), "kind": KIND, "resamples": n_resamples, "rows": rows}


def pooled_auc_sensitivity(
    folds: Sequence[shared.Fold], model: str, horizon: int, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """`auc_block_sensitivity` of the pooled AUC (mean over seeds, folds weighted by positives x negatives, seed effect carried
    with the days, `stats.bootstrap.mean_auc`): each fold's automatic block halved, kept, doubled."""
    base = shared.draw(folds, horizon, n_resamples, seed)
    rows = []
    for factor in SENSITIVITY_FACTORS:
        blocks = [max(int(horizon), 1, int(round(b * factor))) for b in base.blocks]
        days = [
            shared.block_indices(len(f.y), b, n_resamples, seed + 1000 * i)
            for i, (f, b) in enumerate(zip(folds, blocks, strict=True))
        ]
        rs = shared.Resamples(days, blocks, base.seeds, base.kind, n_resamples)
        lo, hi, se, _ = shared.percentile_interval(shared.mean_auc(folds, model, rs)[1])
        rows.append(
            {
                "factor": factor,
                "block": blocks[0] if len(blocks) == 1 else blocks,
                "se": se,
                "lo": lo,
                "hi": hi,
            }
        )
    chosen = base.blocks[0] if len(base.blocks) == 1 else list(base.blocks)
    return {"block": chosen, "kind": base.kind, "resamples": n_resamples, "rows": rows}


def sensitivity_text(sens: Mapping[str, Any]) -> str:
    """'SE of test AUC at blocks 5 / 10 / 20 days: 0.031 / 0.038 / 0.044' for the card (per-fold blocks
    joined by commas)."""
    rows = sens.get("rows") or []
    blocks = " / ".join(
        ",".join(map(str, r["block"])) if isinstance(r["block"], list) else str(r["block"]) for r in rows
    )
    ses = " / ".join("–" if r["se"] is None else f"{r['se']:.4f}" for r in rows)
    return f"SE of test AUC at blocks of {blocks} days (half, chosen, twice): {ses}"
