"""Simulated studies with known truth, to measure the importance report's rule itself: how often it calls a
parameter "distinguishable from noise" when none matters (family-wise false rate, goal <= 5%), and how
often it finds a planted learning-rate effect.

Sizes are this project's: 50 trials of a structured space (width, depth, heads, ff width, lr, dropout,
weight decay, warm-up, batch size as ordinal levels), objective = planted effect + seed noise of SD 0.012
AUC (the measured seed SD). The sampler is random search or a TPE-like one (10 random trials, then half
the proposals perturb the best configuration so far by one level in one or two parameters), whose exact
repeats are dropped as `importance.prepare` drops them. Each rate comes with a Wilson 95% interval: it
reflects only the Monte Carlo noise of the number of simulated studies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest

from hpo_assets.analysis.importance import EVALUATORS, ImportanceSettings, array_importance

# parameter -> number of levels, as the structured space's grids (training.yaml, budgets.yaml)
SPACE: dict[str, int] = {
    "width": 4,
    "depth": 4,
    "heads": 3,
    "ff_width": 3,
    "lr": 6,
    "dropout": 5,
    "weight_decay": 4,
    "warmup_steps": 3,
    "batch_size": 3,
}
NOISE_SD = 0.012  # seed SD of validation AUC measured on the campaigns
N_TRIALS = 50
BASE_AUC = 0.70
LR_PEAK = 2  # planted lr optimum at the third level (1e-4 of 1e-5 .. 3e-3)


def lr_effect(position: np.ndarray, effect: float) -> np.ndarray:
    """Planted inverted U in log lr: 0 at the peak, -effect at the farthest level (AUC best minus worst)."""
    far = max(LR_PEAK, SPACE["lr"] - 1 - LR_PEAK)
    return -effect * ((position - LR_PEAK) / far) ** 2


def simulate_study(
    rng: np.random.Generator,
    effect: float = 0.0,
    n_trials: int = N_TRIALS,
    noise_sd: float = NOISE_SD,
    sampler: str = "tpe",
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct configurations as ordinal positions, objectives) of one simulated study."""
    if sampler not in ("tpe", "random"):
        raise ValueError(f"sampler must be 'tpe' or 'random', got {sampler!r}")
    levels = np.array(list(SPACE.values()))
    lr = list(SPACE).index("lr")
    seen: set[tuple[int, ...]] = set()
    xs: list[np.ndarray] = []
    ys: list[float] = []
    for t in range(n_trials):
        if sampler == "random" or t < 10 or rng.random() < 0.5 or not ys:
            row = rng.integers(0, levels)
        else:
            row = xs[int(np.argmax(ys))].copy()
            for j in rng.choice(len(levels), size=int(rng.integers(1, 3)), replace=False):
                row[j] = np.clip(row[j] + rng.choice([-1, 1]), 0, levels[j] - 1)
        y = BASE_AUC + float(lr_effect(np.asarray(row[lr]), effect)) + float(rng.normal(0, noise_sd))
        key = tuple(int(v) for v in row)
        if key in seen:  # an exact repeat: the report drops it (the sampler still learnt from it)
            continue
        seen.add(key)
        xs.append(np.asarray(row, dtype=np.int64))
        ys.append(y)
    return np.array(xs), np.array(ys)


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a binomial rate k / n."""
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _rate(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"rate": k / n, "lo": lo, "hi": hi, "k": k, "n": n}


def importance_rates(
    n_studies: int,
    seed: int,
    *,
    effect: float = 0.03,
    settings: ImportanceSettings | None = None,
    evaluators: Sequence[str] = EVALUATORS,
    sampler: str = "tpe",
    n_trials: int = N_TRIALS,
) -> dict:
    """Per evaluator: `fwer` (share of null studies with any parameter distinguishable), `detection` (share
    of studies with a planted lr effect of `effect` AUC best-minus-worst where lr is distinguishable) and
    `false_other` (share of those where another parameter is), each {rate, lo, hi, k, n} with a Wilson 95%
    interval over `n_studies` studies of each kind. Bootstrap intervals are skipped: they are not the test."""
    if n_studies < 1:
        raise ValueError(f"n_studies must be >= 1, got {n_studies}")
    s = settings or ImportanceSettings()
    s = ImportanceSettings(**{**s.to_dict(), "fanova_bootstrap": 0, "ped_bootstrap": 0})
    names = list(SPACE)
    lr = names.index("lr")
    rng = np.random.default_rng(seed)
    hits = {k: {"fwer": 0, "detection": 0, "false_other": 0} for k in evaluators}
    for _ in range(n_studies):
        for planted in (False, True):
            x, y = simulate_study(rng, effect if planted else 0.0, n_trials, sampler=sampler)
            # as prepare() does: positions among the values tried, constant parameters left out
            keep = [j for j in range(len(names)) if len(np.unique(x[:, j])) > 1]
            cols = [np.unique(x[:, j], return_inverse=True) for j in keep]
            xo = np.column_stack([inv for _, inv in cols])
            n_levels = [len(u) for u, _ in cols]
            for kind in evaluators:
                r = array_importance(kind, xo, y, "maximize", [names[j] for j in keep], n_levels, s, rng)
                found = np.asarray(r["p_adjusted"]) < s.alpha
                is_lr = np.array([j == lr for j in keep])
                if not planted:
                    hits[kind]["fwer"] += bool(found.any())
                else:
                    hits[kind]["detection"] += bool(found[is_lr].any())
                    hits[kind]["false_other"] += bool(found[~is_lr].any())
    out: dict = {
        "n_studies": n_studies,
        "seed": seed,
        "effect": effect,
        "noise_sd": NOISE_SD,
        "n_trials": n_trials,
        "sampler": sampler,
        "alpha": s.alpha,
        "space": dict(SPACE),
        "shuffles": {k: s.counts(k)[1] for k in evaluators},
    }
    for kind, h in hits.items():
        out[kind] = {name: _rate(k, n_studies) for name, k in h.items()}
    return out
