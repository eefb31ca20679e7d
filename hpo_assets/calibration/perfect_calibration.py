"""What a perfectly calibrated predictor would score on the same predictions: the ECE's noise level.

Plug-in ECE is biased upward: with a few hundred days even labels drawn from the predictions
themselves leave every bin's observed rate off its mean confidence, so a perfectly calibrated
predictor at n ~ 500 scores 0.024-0.05. Reading an ECE needs that reference: labels are simulated
y ~ Bernoulli(p) many times on the very predictions evaluated (same bins), and the observed ECE is
set against the simulated mean and 95% range. For h > 1 neighbouring labels share h - 1 days of
their h-day windows; the simulation keeps that dependence with a Gaussian copula whose latent
noise is an h-day moving sum (latent correlation (h - k) / h at lag k), so each label is still
Bernoulli(p) given its prediction. `simulation/calibration.py` measures the rule's false
"miscalibrated" rate with known truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtri

from hpo_assets.calibration.metrics import Strategy, expected_calibration_error, maximum_calibration_error

N_SIMS = 1000
LEVEL = 0.95
WITHIN = "within what perfect calibration scores"
ABOVE = "above what perfect calibration scores"


def calibrated_labels(p: Any, horizon: int, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """(n_sims, n) 0/1 labels with P(y_t = 1 | p_t) = p_t, dependent over h-day windows like the labels."""
    p = np.asarray(p, dtype=np.float64)
    h = max(1, int(horizon))
    z = rng.standard_normal((n_sims, p.size + h - 1))
    if h > 1:
        c = np.cumsum(z, axis=1)
        latent = (c[:, h - 1 :] - np.pad(c, ((0, 0), (1, 0)))[:, : p.size]) / np.sqrt(h)
    else:
        latent = z
    return (latent < ndtri(np.clip(p, 1e-12, 1 - 1e-12))[None, :]).astype(np.float64)


def _bin_ids(p: np.ndarray, n_bins: int, strategy: Strategy) -> np.ndarray:
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    else:
        edges = np.percentile(p, np.linspace(0, 100, int(n_bins) + 1))
    return np.searchsorted(edges[1:-1], p)  # as metrics.reliability_bins assigns them


def ece_rows(
    y: np.ndarray, p: np.ndarray, n_bins: int = 10, strategy: Strategy = "uniform"
) -> tuple[np.ndarray, np.ndarray]:
    """(ECE, MCE) of every row of (R, n) labels against the fixed predictions p (bins depend on p only)."""
    ids = _bin_ids(p, n_bins, strategy)
    onehot = np.zeros((p.size, int(ids.max()) + 1))
    onehot[np.arange(p.size), ids] = 1.0
    count = onehot.sum(axis=0)
    keep = count > 0
    gaps = np.abs((np.atleast_2d(y) - p[None, :]) @ onehot[:, keep])  # (R, non-empty bins)
    return gaps.sum(axis=1) / p.size, (gaps / count[keep][None, :]).max(axis=1)


def reference(
    y: Any,
    p: Any,
    horizon: int = 1,
    n_bins: int = 10,
    strategy: Strategy = "uniform",
    n_sims: int = N_SIMS,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Observed ECE and MCE next to what perfect calibration scores on the same predictions.

    Keys: ece, perfect_mean, perfect_lo, perfect_hi (the central `level` range of the simulated ECE),
    p_value (share of simulations at least as large), excess (ece - perfect_mean, a debiased ECE),
    verdict (`WITHIN` or `ABOVE`: above only when the ECE exceeds the range's upper end), and the
    same for MCE under mce_*.
    """
    y, p = np.asarray(y, dtype=np.float64).reshape(-1), np.asarray(p, dtype=np.float64).reshape(-1)
    ece = expected_calibration_error(y, p, n_bins, strategy)
    mce = maximum_calibration_error(y, p, n_bins, strategy)
    out: dict[str, Any] = {
        "strategy": strategy,
        "n_bins": int(n_bins),
        "n_sims": int(n_sims),
        "level": level,
        "horizon": int(horizon),
    }
    if ece is None or mce is None:
        return {
            **out,
            "ece": None,
            "perfect_mean": None,
            "perfect_lo": None,
            "perfect_hi": None,
            "p_value": None,
            "excess": None,
            "verdict": None,
            "mce": None,
            "mce_perfect_mean": None,
            "mce_perfect_hi": None,
        }
    sims = calibrated_labels(p, horizon, n_sims, np.random.default_rng(seed))
    e_sim, m_sim = ece_rows(sims, p, n_bins, strategy)
    tail = (1 - level) / 2 * 100
    lo, hi = (float(v) for v in np.percentile(e_sim, [tail, 100 - tail]))
    m_hi = float(np.percentile(m_sim, 100 - tail))
    return {
        **out,
        "ece": ece,
        "perfect_mean": float(e_sim.mean()),
        "perfect_lo": lo,
        "perfect_hi": hi,
        "p_value": float((1 + np.sum(e_sim >= ece - 1e-12)) / (1 + n_sims)),
        "excess": float(ece - e_sim.mean()),
        "verdict": ABOVE if ece > hi else WITHIN,
        "mce": mce,
        "mce_perfect_mean": float(m_sim.mean()),
        "mce_perfect_hi": m_hi,
    }


def text(ref: dict[str, Any]) -> str:
    """'0.0412: within what perfect calibration scores (mean 0.0350, 95% range [0.0201, 0.0537])'."""
    if ref.get("ece") is None:
        return "–"
    return (
        f"{ref['ece']:.4f}: {ref['verdict']} (perfect calibration on these predictions: mean "
        f"{ref['perfect_mean']:.4f}, {ref['level']:.0%} range [{ref['perfect_lo']:.4f}, {ref['perfect_hi']:.4f}]; "
        f"p = {ref['p_value']:.3f})"
    )
