"""Known-truth simulations of the paired comparisons (budget vs budget, model vs baseline): how often the
rule "95% interval excludes 0" fires when two models are equal, how often it detects a true difference,
and how often the interval covers the true difference.

The world: a market regime z_t (AR(1), phi 0.97: regimes of about a month) drives the label
y_t = 1[z_t + e_t > c] (base rate ~0.12, as at h1). A model of budget m and training seed s (retrained per fold) scores
beta_{m,s} z_t + u_t + 0.5 w_{s,t}: u_t is noise every model shares (they read the same inputs, so their
AUCs correlate), w_{s,t} the seed's own, and beta_{m,s} = beta_m + tau xi_s makes the seed change the
model's true AUC (seed SD ~0.012 AUC). The truth of a model is E_xi of its AUC within test folds of the same
length, pooled by positives x negatives (the rule's estimand), from a 400,000-day sample. Sizes follow the project: K walk-forward test folds of n days, k seeds per model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from hpo_assets.stats.bootstrap import KIND, Fold, Kind, auc_rows
from hpo_assets.stats.paired import paired_on_folds

PHI, CUT, SHARED, OWN = 0.97, 1.55, 1.0, 0.5


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson 95% interval of a Monte Carlo rate."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=n) * math.sqrt(1 - phi * phi)
    x = np.empty(n)
    x[0] = rng.normal()
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@lru_cache(maxsize=1)
def _population() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    n = 400_000
    z = _ar1(rng, n, PHI)
    y = (z + rng.normal(size=n) > CUT).astype(int)
    return z, y, _ar1(rng, n, 0.9), rng.normal(size=n)


@lru_cache(maxsize=512)
def pop_auc(beta: float, days: int) -> float:
    """What the rule estimates for one seed's beta: the AUC within test folds of `days` days, pooled by
    positives x negatives, on the large sample cut into such folds. Within a few months the regime
    varies less than over decades, so this is below the AUC of the whole series: the truth must be
    the estimand's, not the population's."""
    z, y, u, w = _population()
    f = len(y) // days
    score = (beta * z + SHARED * u + OWN * w)[: f * days].reshape(f, days)
    yy = y[: f * days].reshape(f, days)
    auc = auc_rows(yy, score)
    pos = yy.sum(axis=1)
    wt = pos * (days - pos)
    ok = np.isfinite(auc) & (wt > 0)
    return float(np.sum(wt[ok] * auc[ok]) / np.sum(wt[ok]))


def true_auc(beta: float, tau: float, days: int) -> float:
    """E over seeds of `pop_auc` (Gauss-Hermite over xi ~ N(0, 1))."""
    if tau == 0:
        return pop_auc(round(beta, 6), days)
    x, wts = np.polynomial.hermite_e.hermegauss(9)
    return float(
        sum(wt * pop_auc(round(beta + tau * xi, 6), days) for xi, wt in zip(x, wts, strict=True))
        / math.sqrt(2 * math.pi)
    )


def beta_for(target: float, tau: float, days: int) -> float:
    return float(brentq(lambda b: true_auc(b, tau, days) - target, 0.05, 4.0, xtol=1e-4))


@dataclass(frozen=True)
class Scenario:
    name: str
    auc_a: float  # true mean-over-seeds AUC of model a (the smaller budget, or the baseline)
    diff: float  # true AUC(b) - AUC(a)
    folds: int = 4
    days: int = 125
    seeds_a: int = 5
    seeds_b: int = 5
    tau_a: float = 0.09
    tau_b: float = 0.09


def simulate(
    sc: Scenario, n_sims: int, n_resamples: int = 1000, seed: int = 0, horizon: int = 1, kind: Kind = KIND
) -> dict:
    """Rates of the paired rule on `n_sims` simulated test sets: fires (lo > 0 or hi < 0), fires in the
    true direction, and covers the true difference; each with a Wilson Monte Carlo interval."""
    beta_a, beta_b = beta_for(sc.auc_a, sc.tau_a, sc.days), beta_for(sc.auc_a + sc.diff, sc.tau_b, sc.days)
    truth = true_auc(beta_b, sc.tau_b, sc.days) - true_auc(beta_a, sc.tau_a, sc.days)
    rng = np.random.default_rng(seed)
    fired = right = covered = valid = 0
    n = sc.folds * sc.days
    ses: list[float] = []
    for i in range(n_sims):
        z = _ar1(rng, n + 200, PHI)[200:]
        y = (z + rng.normal(size=n) > CUT).astype(int)
        u = _ar1(rng, n, 0.9)

        def scores(beta: float, tau: float, k: int, z: np.ndarray = z, u: np.ndarray = u) -> np.ndarray:
            # each fold retrains its own k seeds: the seed effect is drawn per seed and fold
            xi = np.repeat(rng.normal(size=(k, sc.folds)), sc.days, axis=1) if tau else np.zeros((k, n))
            return (beta + tau * xi) * z[None, :] + SHARED * u[None, :] + OWN * rng.normal(size=(k, n))

        sa, sb = scores(beta_a, sc.tau_a, sc.seeds_a), scores(beta_b, sc.tau_b, sc.seeds_b)
        folds = [
            Fold(
                y[f * sc.days : (f + 1) * sc.days],
                {"a": sa[:, f * sc.days : (f + 1) * sc.days], "b": sb[:, f * sc.days : (f + 1) * sc.days]},
            )
            for f in range(sc.folds)
        ]
        if any(f.y.min() == f.y.max() for f in folds):
            continue
        p = paired_on_folds(folds, "a", "b", horizon, n_resamples, seed=seed * 100_003 + i, kind=kind)
        if p.lo is None or p.hi is None:
            continue
        valid += 1
        ses.append(float(p.se or 0.0))
        fire = p.lo > 0 or p.hi < 0
        fired += fire
        right += fire and (p.lo > 0) == (truth > 0)
        covered += p.lo <= truth <= p.hi
    return {
        "scenario": sc.name,
        "true_diff": truth,
        "sims": valid,
        "resamples": n_resamples,
        "folds": sc.folds,
        "days_per_fold": sc.days,
        "seeds": (sc.seeds_a, sc.seeds_b),
        "fires": fired / max(valid, 1),
        "fires_ci": wilson(fired, valid),
        "right_direction": right / max(valid, 1),
        "right_direction_ci": wilson(right, valid),
        "coverage": covered / max(valid, 1),
        "coverage_ci": wilson(covered, valid),
        "median_se": float(np.median(ses)) if ses else None,
        "seed_sd_auc": seed_sd(beta_a, sc.tau_a, sc.days),
    }


def seed_sd(beta: float, tau: float, days: int) -> float:
    """SD over seeds of `pop_auc` (what "seed SD" means in the scenario)."""
    x, wts = np.polynomial.hermite_e.hermegauss(9)
    vals = np.array([pop_auc(round(beta + tau * xi, 6), days) for xi in x])
    w = wts / wts.sum()
    m = float(np.sum(w * vals))
    return float(math.sqrt(np.sum(w * (vals - m) ** 2)))


def scenarios(profile: str = "full") -> list[Scenario]:
    """Budget pairs at equal truth, +0.02 and +0.05 AUC; the model against a one-seed baseline."""
    size = {
        "full": {"folds": 4, "days": 125, "seeds_a": 5, "seeds_b": 5},
        "demo": {"folds": 2, "days": 280, "seeds_a": 2, "seeds_b": 2},
    }[profile]
    base = {"folds": size["folds"], "days": size["days"]}
    return [
        Scenario(f"{profile}: budgets equal", 0.66, 0.0, **size),
        Scenario(f"{profile}: budgets +0.02", 0.66, 0.02, **size),
        Scenario(f"{profile}: budgets +0.05", 0.66, 0.05, **size),
        Scenario(
            f"{profile}: model vs baseline equal",
            0.66,
            0.0,
            seeds_a=1,
            seeds_b=size["seeds_b"],
            tau_a=0.0,
            **base,
        ),
        Scenario(
            f"{profile}: model vs baseline -0.05",
            0.66,
            -0.05,
            seeds_a=1,
            seeds_b=size["seeds_b"],
            tau_a=0.0,
            **base,
        ),
    ]


__all__ = ["Scenario", "beta_for", "scenarios", "seed_sd", "simulate", "true_auc", "wilson"]
