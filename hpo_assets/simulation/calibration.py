"""Known-truth simulation of the card's ECE reading: does "above what perfect calibration scores" fire
on a calibrated predictor no more than 5% of the time, and does it fire on a miscalibrated one?

At this project's sizes: a test fold of ~250 days, base rate ~0.12 at h1, predictions that drift
slowly (AR(1) logits, as a model's daily probabilities do). The predictor is calibrated by
construction (labels y ~ Bernoulli(p); at h > 1 dependent over h-day windows like overlapping
labels). Measured, each with a 95% Wilson Monte Carlo interval:

- `false_miscalibrated`: share of calibrated folds whose ECE the card calls miscalibrated (goal <= 5%);
- `perfect_range_coverage`: share whose ECE falls inside perfect calibration's 95% range (goal 93-97%);
- `bootstrap_interval_covers_zero`: share whose block-bootstrap interval of the plug-in ECE holds the
  true calibration error, 0: why the card reads ECE against perfect calibration and not by its interval;
- `power_shift_<d>`: share called miscalibrated when predictions are off by d in logit (over-prediction);
- `false_miscalibrated_h5` and `..._h5_read_as_h1`: with 5-day overlapping labels, read with the
  dependence (the card) and as if the labels were independent (what ignoring it costs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, logit
from scipy.stats import binomtest

from hpo_assets.calibration import perfect_calibration as pc

N_DAYS = 250
BASE_RATE = 0.12
AR_PHI = 0.9  # day-to-day persistence of the predicted logit
LOGIT_SD = 0.6  # spread of the predicted logit (p from about 0.04 to 0.3)
REFERENCE_SIMS = 400
BOOTSTRAP_RESAMPLES = 200
SHIFTS = (0.3, 0.6)


def ar1_probabilities(
    n: int, rng: np.random.Generator, phi: float = AR_PHI, sd: float = LOGIT_SD, base_rate: float = BASE_RATE
) -> np.ndarray:
    """Predicted probabilities with AR(1) logits of stationary sd `sd` centred on logit(base_rate)."""
    e = rng.standard_normal(n)
    z = np.empty(n)
    z[0] = e[0]
    for t in range(1, n):
        z[t] = phi * z[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return np.asarray(expit(logit(base_rate) + sd * z))


def rate(hits: int, n: int, goal: str) -> dict[str, Any]:
    """A Monte Carlo rate with its 95% Wilson interval."""
    ci = binomtest(int(hits), int(n)).proportion_ci(0.95, method="wilson")
    return {
        "rate": hits / n,
        "lo": float(ci.low),
        "hi": float(ci.high),
        "hits": int(hits),
        "n": int(n),
        "goal": goal,
    }


def ece_rates(
    n_sims: int,
    seed: int,
    *,
    n_days: int = N_DAYS,
    reference_sims: int = REFERENCE_SIMS,
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, Any]:
    """The rates above over `n_sims` simulated test folds (fixed `seed`); `bootstrap_resamples=0`
    skips the (slower) bootstrap-interval coverage."""
    from hpo_assets.calibration.bootstrap import interval
    from hpo_assets.calibration.metrics import expected_calibration_error

    rng = np.random.default_rng(seed)
    counts = {k: 0 for k in ("above", "above_mass", "inside", "boot_covers", "above_h5", "above_h5_as_h1")}
    power = dict.fromkeys(SHIFTS, 0)
    base = []
    for s in range(n_sims):
        p = ar1_probabilities(n_days, rng)
        y = pc.calibrated_labels(p, 1, 1, rng)[0]
        base.append(y.mean())
        ref = pc.reference(y, p, 1, 10, "uniform", reference_sims, seed=s)
        counts["above"] += ref["verdict"] == pc.ABOVE
        counts["inside"] += ref["perfect_lo"] <= ref["ece"] <= ref["perfect_hi"]
        counts["above_mass"] += (
            pc.reference(y, p, 1, 10, "quantile", reference_sims, seed=s)["verdict"] == pc.ABOVE
        )
        if bootstrap_resamples:

            def ece(i: np.ndarray, y: np.ndarray = y, p: np.ndarray = p) -> float | None:
                return expected_calibration_error(y[i], p[i])

            iv = interval(ece, n_days, 1, bootstrap_resamples, seed=s, series=[y - p])
            counts["boot_covers"] += iv["lo"] is not None and iv["lo"] <= 0.0
        for d in SHIFTS:  # the model says expit(z + d) where the truth is expit(z)
            shifted = np.asarray(expit(logit(p) + d))
            power[d] += (
                pc.reference(y, shifted, 1, 10, "uniform", reference_sims, seed=s)["verdict"] == pc.ABOVE
            )
        y5 = pc.calibrated_labels(p, 5, 1, rng)[0]
        counts["above_h5"] += (
            pc.reference(y5, p, 5, 10, "uniform", reference_sims, seed=s)["verdict"] == pc.ABOVE
        )
        counts["above_h5_as_h1"] += (
            pc.reference(y5, p, 1, 10, "uniform", reference_sims, seed=s)["verdict"] == pc.ABOVE
        )
    out: dict[str, Any] = {
        "settings": {
            "n_sims": n_sims,
            "seed": seed,
            "n_days": n_days,
            "base_rate": BASE_RATE,
            "observed_base_rate": float(np.mean(base)),
            "ar_phi": AR_PHI,
            "logit_sd": LOGIT_SD,
            "reference_sims": reference_sims,
            "bootstrap_resamples": bootstrap_resamples,
        },
        "false_miscalibrated": rate(counts["above"], n_sims, "<= 0.05"),
        "false_miscalibrated_mass": rate(counts["above_mass"], n_sims, "<= 0.05"),
        "perfect_range_coverage": rate(counts["inside"], n_sims, "0.93-0.97"),
        "false_miscalibrated_h5": rate(counts["above_h5"], n_sims, "<= 0.05"),
        "false_miscalibrated_h5_read_as_h1": rate(
            counts["above_h5_as_h1"], n_sims, "(what ignoring overlap costs)"
        ),
        **{f"power_shift_{d}": rate(power[d], n_sims, "(higher is better)") for d in SHIFTS},
    }
    if bootstrap_resamples:
        out["bootstrap_interval_covers_zero"] = rate(
            counts["boot_covers"], n_sims, "(0.95 if it were an interval of calibration error)"
        )
    return out
