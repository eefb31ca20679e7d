"""Did the methodology help? The seed's search vs random search vs ours, on a surrogate of real trial results.

Surrogate: a Gaussian process (scikit-learn, ARD RBF + white noise) fitted to the 150 real trials of
the seed campaign (`/work/shared/fixtures/real_hpo_exports`, = data/examples: 2M/20M/200M, h1, val AUC)
on log2 width/depth/heads, FFN ratio, log10 lr, dropout, log10 weight decay. A trial's observed value
is the GP mean at its configuration plus Gaussian noise with the fitted white-noise sd (the spread the
GP cannot explain by the parameters: realistic run-to-run noise plus misfit). Warm-up fraction, batch
size and normalization are not in those trials, so the surrogate ignores them (they are searched but
do not matter here). No divergence is simulated (the seed's exports hold no diverged trial).

Methods, each `--reps` times on the 2M space of this project (its valid shapes x model/training.yaml):
- seed: flat categorical TPE (one label per shape, categorical training values, Optuna defaults),
  repeats allowed and re-evaluated with fresh noise, 6 forced extremes evaluated first but never told
  to TPE (they only count toward the budget);
- random: uniform over valid configurations;
- ours: search/steering.py's SpaceSampler (multivariate TPE on ordinal parameters projected onto the
  valid shapes, no repeats) with the 6 forced extremes enqueued as ordinary trials.
Score after n trials: the surrogate's noise-free value of the incumbent (the trial with the best
*observed* value), i.e. what the method would hand on. Reported: median over repetitions with a 95%
bootstrap interval; trials each method needs until its incumbent reaches the seed's 50-trial median.

    .venv/bin/python benchmarks/search_ab.py [--reps 100] [--trials 50]

The methods are defined once here (seed_method, random_method, ours_method) and reused with real
training by benchmarks/search_ab_real.py.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from hpo_assets import settings
from hpo_assets.search.build import study_space
from hpo_assets.search.extremes import forced_extremes
from hpo_assets.search.objective import _suggest
from hpo_assets.search.space import TRAIN_PARAMS, SearchSpace
from hpo_assets.search.steering import SpaceSampler

EXPORTS = [
    Path("/work/shared/fixtures/real_hpo_exports/phase6c_a50"),
    settings.DATA_DIR / "examples" / "phase6c_a50",
]
CHECKPOINTS = (10, 25, 50)


ARCH = ("d_model", "n_layers", "n_heads")


def _unit(value: float, values: list[float]) -> float:
    """Position of a shape dimension inside its study's range, log2 scale, in [0, 1] (0.5 without range)."""
    lo, hi = math.log2(min(values)), math.log2(max(values))
    return 0.5 if hi == lo else (math.log2(value) - lo) / (hi - lo)


def _features(arch_unit: list[float], r: float, lr: float, dropout: float, wd: float) -> list[float]:
    return [*arch_unit, r, math.log10(lr), dropout, math.log10(wd + 1e-5)]


def fit_surrogate() -> tuple[GaussianProcessRegressor, float, int]:
    folder = next(p for p in EXPORTS if p.is_dir())
    x, y = [], []
    for path in sorted(folder.glob("*/trial_metrics.csv")):
        rows = list(csv.DictReader(path.open()))
        ranges = {k: [float(r[k]) for r in rows] for k in ARCH}
        for row in rows:  # a shape enters as its position inside that study's own range (the budgets differ)
            unit = [_unit(float(row[k]), ranges[k]) for k in ARCH]
            x.append(
                _features(
                    unit, *(float(row[k]) for k in ("d_ff_ratio", "learning_rate", "dropout", "weight_decay"))
                )
            )
            y.append(float(row["auc"]))
    kernel = ConstantKernel(1e-3) * RBF(
        length_scale=np.ones(7), length_scale_bounds=(0.25, 1e3)
    ) + WhiteKernel(0.1, (1e-2, 1.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0)
    gp.fit(np.asarray(x), np.asarray(y))
    noise_sd = math.sqrt(gp.kernel_.k2.noise_level) * float(np.std(y))  # normalize_y scales the kernel
    return gp, noise_sd, len(y)


class Surrogate:
    """Noise-free value of every configuration (cached by configuration) and noisy observations."""

    def __init__(self, gp: GaussianProcessRegressor, noise_sd: float, space: SearchSpace) -> None:
        self.gp, self.noise_sd, self.cache = gp, noise_sd, {}
        self.ranges = {k: [float(v) for v in space.values(k)] for k in ARCH}

    def true(self, p: dict) -> float:
        key = (
            p["d_model"],
            p["n_layers"],
            p["n_heads"],
            p["d_ff_ratio"],
            p["lr"],
            p["dropout"],
            p["weight_decay"],
        )
        if key not in self.cache:
            unit = [_unit(float(p[k]), self.ranges[k]) for k in ARCH]
            feats = _features(unit, p["d_ff_ratio"], p["lr"], p["dropout"], p["weight_decay"])
            self.cache[key] = float(self.gp.predict(np.asarray([feats]))[0])
        return self.cache[key]

    def observe(self, p: dict, rng: np.random.Generator) -> float:
        return self.true(p) + rng.normal(0.0, self.noise_sd)


def incumbent_curve(true_vals: list[float], observed: list[float]) -> np.ndarray:
    """After each trial: the true value of the trial with the best observed value so far."""
    out, best_obs, best_true = [], -math.inf, math.nan
    for t, o in zip(true_vals, observed, strict=True):
        if o > best_obs:
            best_obs, best_true = o, t
        out.append(best_true)
    return np.asarray(out)


Evaluate = Callable[[dict[str, Any]], "float | None"]  # observed objective of a configuration; None = failed


def random_method(
    space: SearchSpace, n: int, rng: np.random.Generator, evaluate: Evaluate
) -> list[tuple[dict, float | None]]:
    """Plain random search: n configurations drawn uniformly (repeats possible), each evaluated."""
    params = [space.random_params(rng) for _ in range(n)]
    return [(p, evaluate(p)) for p in params]


def seed_method(
    space: SearchSpace, n: int, seed: int, evaluate: Evaluate, n_forced: int = 6
) -> list[tuple[dict, float | None]]:
    """The seed's search: forced extremes evaluated but never told to TPE, then flat categorical TPE; a
    repeated configuration is evaluated again and costs a trial."""
    labels = [a.label for a in space.archs]
    dists = {
        "arch": CategoricalDistribution(labels),
        **{k: CategoricalDistribution(list(space.choices[k])) for k in TRAIN_PARAMS},
    }
    out: list[tuple[dict, float | None]] = []
    for ext in forced_extremes(space, n_forced)[:n]:  # evaluated and counted, never told to TPE
        out.append((ext.params, evaluate(ext.params)))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    while len(out) < n:
        trial = study.ask(dists)
        a = space.arch(trial.params["arch"])
        p = {**a.arch_params(), **{k: trial.params[k] for k in TRAIN_PARAMS}}
        value = evaluate(p)  # a repeat is trained again: one more trial spent
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        out.append((p, value))
    return out


def ours_method(
    space: SearchSpace, n: int, seed: int, evaluate: Evaluate, startup: int = 10, n_forced: int = 6
) -> list[tuple[dict, float | None]]:
    """This project's search: forced extremes enqueued as ordinary trials, then SpaceSampler (no repeats)."""
    study = optuna.create_study(
        direction="maximize", sampler=SpaceSampler(space, seed=seed, n_startup_trials=startup)
    )
    for ext in forced_extremes(space, n_forced):
        study.enqueue_trial(ext.params)
    out: list[tuple[dict, float | None]] = []
    while len(out) < n:
        trial = study.ask()
        p = _suggest(trial, space)
        value = evaluate(p)
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
        out.append((p, value))
    return out


def _surrogate_curve(f: Surrogate, runs: list[tuple[dict, float | None]]) -> np.ndarray:
    return incumbent_curve([f.true(p) for p, _ in runs], [float(v) for _, v in runs])  # type: ignore[arg-type]


def run_random(space: SearchSpace, f: Surrogate, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1])
    return _surrogate_curve(f, random_method(space, n, rng, lambda p: f.observe(p, rng)))


def run_seed(space: SearchSpace, f: Surrogate, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 2])
    return _surrogate_curve(f, seed_method(space, n, seed, lambda p: f.observe(p, rng)))


def run_ours(space: SearchSpace, f: Surrogate, n: int, seed: int, startup: int = 10) -> np.ndarray:
    rng = np.random.default_rng([seed, 3])
    return _surrogate_curve(f, ours_method(space, n, seed, lambda p: f.observe(p, rng), startup))


def median_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float, float]:
    boots = np.median(rng.choice(values, size=(n_boot, len(values))), axis=1)
    return float(np.median(values)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def trials_to_reach(curves: np.ndarray, target: float) -> np.ndarray:
    """Per repetition: first trial count whose incumbent reaches the target (inf when it never does)."""
    hit = curves >= target - 1e-12
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--budget", default="2M")
    ap.add_argument("--noise-sd", type=float, default=0.02,
                    help="observation noise (AUC sd) when larger than the GP's white noise; 0.02 ~ the seed-to-seed "
                    "spread measured by benchmarks/normalization.py at demo scale")  # fmt: skip
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    gp, noise_sd, n_fit = fit_surrogate()
    space = study_space(args.budget)
    print(f"GP white-noise sd {noise_sd:.4f} AUC (the exports repeat configurations with identical values)")
    noise_sd = max(noise_sd, args.noise_sd)
    f = Surrogate(gp, noise_sd, space)
    print(
        f"surrogate: GP on {n_fit} real trials, kernel {gp.kernel_}; observation noise sd {noise_sd:.4f} AUC"
    )
    print(f"space: {args.budget}, {len(space.archs)} shapes, {space.size:,} configurations; "
          f"{args.reps} repetitions x {args.trials} trials per method")  # fmt: skip
    curves: dict[str, np.ndarray] = {}
    for name, fn in (("seed", run_seed), ("random", run_random), ("ours", run_ours)):
        t0 = time.perf_counter()
        curves[name] = np.stack([fn(space, f, args.trials, rep) for rep in range(args.reps)])
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(0)
    target = float(np.median(curves["seed"][:, args.trials - 1]))
    print(f"\nmedian true AUC of the incumbent [95% bootstrap CI over repetitions]; target = seed's "
          f"{args.trials}-trial median {target:.4f}")  # fmt: skip
    print(
        "method  "
        + "  ".join(f"after {c:>2}" + " " * 20 for c in CHECKPOINTS if c <= args.trials)
        + "trials to target"
    )
    for name, c in curves.items():
        cells = []
        for k in CHECKPOINTS:
            if k <= args.trials:
                m, lo, hi = median_ci(c[:, k - 1], rng)
                cells.append(f"{m:.4f} [{lo:.4f}, {hi:.4f}]")
        reach = trials_to_reach(c, target)
        m, lo, hi = median_ci(reach, rng)
        never = int(np.isinf(reach).sum())
        print(
            f"{name:<7} "
            + "   ".join(cells)
            + f"   median {m:g} [{lo:g}, {hi:g}], never reached in {never}/{args.reps}"
        )


if __name__ == "__main__":
    main()
