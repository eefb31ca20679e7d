"""Replay search methods on a shipped table of real runs (benchmarks/data/*.parquet): a benchmark whose
power is known before it runs.

Every arm searches exactly the table's space (its architectures x its lr/dropout lists). A proposal is
answered from the table: the seed replicate comes from a stream shared by every arm (common random
numbers: in replay r, configuration c answers its first proposal with seed perm[r, c, 0], a repeat with
perm[r, c, 1], ...; under the fixed-seed policy every configuration answers with seed r mod k). The
incumbent is chosen on what the arm observed (COMPLETE trials, repeats averaged) and scored on the mean of
the seeds it did not observe (held-out seeds), as normalised regret

    regret = (best mean - held-out score) / (best mean - mean of all configuration means)

so 0 is the table's best configuration and 1 a configuration drawn at random. Pruners are replayed from
the stored curves (Optuna's own pruners see the stored per-epoch val AUC); compute is counted in epochs
(full runs = epochs / max_epochs), not seconds, which were measured under contention.

    .venv/bin/python benchmarks/replay.py [--tables 2M_h1 2M_h5] [--replays 200] [--trials 50] [--workers 2]

Finished (table, arm) replays are cached in benchmarks/.cache/replay/ by the table's bytes, this
file's source and the worker split (rerun with the same --workers to reuse them).

Measured 2026-12-07 on the shipped tables (200 replays x 50 trials, GPSampler 6): about 18 CPU minutes
for both, 8 of them GPSampler's; results, signal-to-noise and decisions in docs/benchmarks.md.

Noise the intervals reflect: the arms' own randomness and which seed answered, over replays of one
fixed table (conditional on the table: another table of the same grid would move every arm together).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpo_assets.search.space import (  # noqa: E402
    ARCH_PARAMS,
    PARAM_NAMES,
    TRAIN_PARAMS,
    ArchChoice,
    SearchSpace,
)
from hpo_assets.stats.bootstrap import block_indices, percentile_interval  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
CACHE = Path(__file__).resolve().parent / ".cache" / "replay"  # finished (table, arm) replays; rerun-safe
STREAM = 7_919  # the common-random-numbers stream of seed replicates
CHECKPOINTS = (10, 25, 50)
EQUAL_COMPUTE = 25.0  # full-run equivalents (epochs / max_epochs) at which arms are compared
EPSILON = 0.1  # "within epsilon of the best": normalised regret at most this
LEVEL = 0.95
POWER = 0.8


# --- the table ---------------------------------------------------------------------------------
@dataclass
class Table:
    """A table's configurations, their per-seed objectives and curves, and the space they span."""

    name: str
    configs: list[dict[str, Any]]
    y: np.ndarray  # (n_configs, n_seeds) val AUC at the best epoch; NaN = no objective (failed/diverged)
    curves: np.ndarray  # (n_configs, n_seeds, max_epochs) val AUC per epoch; NaN past the last epoch
    epoch_seconds: np.ndarray  # (n_configs, n_seeds, max_epochs)
    space: SearchSpace
    index: dict[tuple[Any, ...], int] = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return int(self.y.shape[1])

    @property
    def max_epochs(self) -> int:
        return int(self.curves.shape[2])

    @cached_property
    def means(self) -> np.ndarray:
        """Each configuration's mean over its seeds (a seed without an objective scores the table's worst)."""
        return np.where(np.isfinite(self.y), self.y, self.worst).mean(axis=1)

    @cached_property
    def worst(self) -> float:
        return float(np.nanmin(self.y))

    @cached_property
    def best(self) -> float:
        return float(self.means.max())

    @cached_property
    def reference(self) -> float:
        return float(self.means.mean())

    def regret(self, score: float) -> float:
        return (self.best - score) / (self.best - self.reference)

    def lookup(self, params: dict[str, Any]) -> int:
        """The table row of a configuration of the space (projected there first if it is not one)."""
        key = tuple(params[k] for k in PARAM_NAMES)
        i = self.index.get(key)
        if i is not None:
            return i
        arch = self.space.nearest_arch([float(params[k]) for k in ARCH_PARAMS])
        snapped = self.space.params(arch, {k: self.space.snap(k, params[k]) for k in TRAIN_PARAMS})
        return self.index[tuple(snapped[k] for k in PARAM_NAMES)]


def table_from_frame(name: str, frame: pl.DataFrame) -> Table:
    """A Table from make_table's rows; one clear error when a configuration misses a seed or a column."""
    need = {"config_id", "seed", "arch", "param_count", "val_auc", "curve_val_auc", *PARAM_NAMES}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise ValueError(f"table {name}: missing columns {missing}")
    seeds = sorted(frame["seed"].unique().to_list())
    counts = frame.group_by("config_id").agg(pl.col("seed").n_unique().alias("n"))
    short = counts.filter(pl.col("n") != len(seeds))["config_id"].to_list()
    if short:
        raise ValueError(f"table {name}: configurations {short[:5]} lack some of the seeds {seeds}")
    frame = frame.sort("config_id", "seed")
    ids = frame["config_id"].unique(maintain_order=True).to_list()
    rows = {cid: i for i, cid in enumerate(ids)}
    n, k = len(ids), len(seeds)
    max_e = max(1, max(len(c) for c in frame["curve_val_auc"].to_list()))
    y = np.full((n, k), np.nan)
    curves = np.full((n, k, max_e), np.nan)
    secs = np.full((n, k, max_e), np.nan)
    configs: list[dict[str, Any]] = [{} for _ in ids]
    archs: dict[str, ArchChoice] = {}
    has_secs = "curve_seconds" in frame.columns
    for rec in frame.iter_rows(named=True):
        i, j = rows[rec["config_id"]], seeds.index(rec["seed"])
        y[i, j] = np.nan if rec["val_auc"] is None else float(rec["val_auc"])
        c = [np.nan if v is None else float(v) for v in rec["curve_val_auc"]]
        curves[i, j, : len(c)] = c
        if has_secs and rec["curve_seconds"]:
            s = [np.nan if v is None else float(v) for v in rec["curve_seconds"]]
            secs[i, j, : len(s)] = s
        configs[i] = {p: rec[p] for p in PARAM_NAMES}
        d, ratio = int(rec["d_model"]), int(rec["d_ff_ratio"])
        archs.setdefault(
            rec["arch"],
            ArchChoice(
                rec["arch"], d, int(rec["n_layers"]), int(rec["n_heads"]), ratio * d, int(rec["param_count"])
            ),
        )
    ordered = sorted(archs.values(), key=lambda a: (a.d_model, a.n_layers, a.n_heads, a.d_ff))
    choices = {p: sorted({c[p] for c in configs}, key=_order) for p in TRAIN_PARAMS}
    space = SearchSpace.build(ordered, choices, max_epochs=max_e)
    if space.size != n:
        raise ValueError(
            f"table {name}: {n} configurations do not fill the product of its {len(ordered)} architectures "
            f"and training lists ({space.size}); the replay needs the whole grid of its space"
        )
    table = Table(name, configs, y, curves, secs, space)
    table.index = {tuple(c[p] for p in PARAM_NAMES): i for i, c in enumerate(configs)}
    return table


def _order(v: Any) -> Any:
    return (0, v) if isinstance(v, int | float) else (1, str(v))


def load_table(name: str, data: Path = DATA) -> Table:
    path = Path(data) / f"{name}.parquet"
    if not path.exists():
        raise SystemExit(f"replay: no table {path} (build it with benchmarks/make_table.py --task {name})")
    return table_from_frame(name, pl.read_parquet(path))


# --- signal to noise ---------------------------------------------------------------------------
def snr(frame_or_table: pl.DataFrame | Table | np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """One-way random-effects variance components of the objective: configurations x seeds.

    Between-configuration variance of the true means vs within-configuration (seed) variance, the
    intraclass correlation ICC = between / (between + within) (the share of a single run's variance
    that is signal) and the reliability of a k-seed mean; exact F-based interval for the ICC
    (Searle; Shrout & Fleiss ICC(1)), which assumes normal effects. Only configurations with every
    seed finite enter.
    """
    if isinstance(frame_or_table, Table):
        y = frame_or_table.y
    elif isinstance(frame_or_table, np.ndarray):
        y = np.asarray(frame_or_table, dtype=float)
    else:
        t = frame_or_table.pivot(on="seed", index="config_id", values="val_auc", aggregate_function="first")
        y = t.drop("config_id").to_numpy().astype(float)
    y = y[np.all(np.isfinite(y), axis=1)]
    n, k = y.shape
    if n < 2 or k < 2:
        raise ValueError(f"signal-to-noise needs >= 2 configurations with >= 2 seeds each, got {n} x {k}")
    msb = k * y.mean(axis=1).var(ddof=1)
    msw = y.var(axis=1, ddof=1).mean()
    s2b, s2w = max((msb - msw) / k, 0.0), float(msw)
    f = msb / msw
    a = 1 - level
    fl = f / stats.f.ppf(1 - a / 2, n - 1, n * (k - 1))
    fu = f * stats.f.ppf(1 - a / 2, n * (k - 1), n - 1)
    icc, lo, hi = (f - 1) / (f + k - 1), (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)
    return {"n_configs": n, "n_seeds": k, "sd_between": math.sqrt(s2b), "sd_within": math.sqrt(s2w),
            "ratio": s2b / s2w if s2w > 0 else math.inf, "icc": max(icc, 0.0), "icc_lo": max(lo, 0.0),
            "icc_hi": min(hi, 1.0), "reliability_k": k * icc / (1 + (k - 1) * icc) if icc > 0 else 0.0,
            "range_of_means": float(np.ptp(y.mean(axis=1))), "level": level}  # fmt: skip


def format_snr(name: str, s: dict[str, Any]) -> str:
    return (
        f"{name}: signal-to-noise over {s['n_configs']} configurations x {s['n_seeds']} seeds: "
        f"SD between configurations {s['sd_between']:.4f} vs SD within (seeds) {s['sd_within']:.4f} AUC; "
        f"variance ratio {s['ratio']:.2f}; ICC (signal share of one run's variance) {s['icc']:.3f} "
        f"[{s['icc_lo']:.3f}, {s['icc_hi']:.3f}] ({s['level']:.0%} F interval); reliability of a "
        f"{s['n_seeds']}-seed mean {s['reliability_k']:.3f}; configuration means span {s['range_of_means']:.4f}"
    )


# --- replays -----------------------------------------------------------------------------------
@dataclass
class Stream:
    """The seed replicate each (replay, configuration, visit) is answered with, shared by all arms."""

    perm: np.ndarray  # (n_configs, n_seeds) seed indices in visiting order
    fixed: int  # the one seed of the fixed-seed policy

    @classmethod
    def of(cls, table: Table, replay: int) -> Stream:
        rng = np.random.default_rng([STREAM, replay])
        perm = rng.permuted(np.tile(np.arange(table.n_seeds), (len(table.configs), 1)), axis=1)
        return cls(perm, replay % table.n_seeds)


@dataclass
class Trial:
    config: int
    seed: int
    value: float | None  # the objective told (None: pruned or failed)
    epochs: int


@dataclass
class Observer:
    """What one arm saw in one replay, and its regret after each trial."""

    table: Table
    stream: Stream
    fixed_seed: bool = False
    trials: list[Trial] = field(default_factory=list)
    visits: dict[int, list[int]] = field(default_factory=dict)

    def seed_for(self, c: int) -> int:
        n = len(self.visits.get(c, []))
        if self.fixed_seed:
            return int((self.stream.fixed + n) % self.table.n_seeds)
        return int(self.stream.perm[c, n % self.table.n_seeds])

    def observe(self, c: int) -> tuple[int, np.ndarray]:
        """Seed index and curve answering configuration c (recorded by `record`)."""
        s = self.seed_for(c)
        return s, self.table.curves[c, s]

    def record(self, c: int, s: int, value: float | None, epochs: int) -> None:
        self.visits.setdefault(c, []).append(s)
        self.trials.append(Trial(c, s, value, epochs))

    def regret_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(regret after each trial, cumulative compute in full runs after each trial); after trial t the
        incumbent is scored on the seeds not observed for it by trial t (pruned runs count as observed)."""
        t = self.table
        sums: dict[int, list[float]] = {}
        seen: dict[int, set[int]] = {}
        best_c = -1
        out, cost, spent = [], [], 0.0
        worst = t.regret(t.worst)
        for tr in self.trials:
            spent += tr.epochs / t.max_epochs
            seen.setdefault(tr.config, set()).add(tr.seed)
            if tr.value is not None:
                sums.setdefault(tr.config, []).append(tr.value)
                best_c = max(sums, key=lambda c: float(np.mean(sums[c])))
            out.append(worst if best_c < 0 else t.regret(self.heldout(best_c, seen[best_c])))
            cost.append(spent)
        return np.asarray(out), np.asarray(cost)

    def heldout(self, c: int, seen: set[int] | None = None) -> float:
        """Mean of the seeds not observed for c (`seen`, default all this arm's visits; every seed when
        all were observed); a seed without an objective counts as the table's worst run."""
        seen = set(self.visits.get(c, [])) if seen is None else seen
        rest = [j for j in range(self.table.n_seeds) if j not in seen] or list(range(self.table.n_seeds))
        vals = self.table.y[c, rest]
        vals = np.where(np.isfinite(vals), vals, self.table.worst)
        return float(vals.mean())


def arm_random(table: Table, obs: Observer, n: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 1])
    for _ in range(n):
        c = table.lookup(table.space.random_params(rng))
        s = obs.seed_for(c)
        obs.record(c, s, *_value(table, c, s))


def _value(table: Table, c: int, s: int) -> tuple[float | None, int]:
    y = table.y[c, s]
    epochs = int(np.sum(np.isfinite(table.curves[c, s]))) or table.max_epochs
    return (None if not math.isfinite(y) else float(y)), epochs


def _optuna_study(sampler: Any, pruner: Any = None) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna.create_study(
        direction="maximize", sampler=sampler, pruner=pruner or optuna.pruners.NopPruner()
    )


def _run_trial(table: Table, obs: Observer, study: Any, trial: Any, params: dict[str, Any]) -> None:
    """Answer one asked trial from the table: epoch-by-epoch reports (so a pruner can act), then tell."""
    from optuna.trial import TrialState

    c = table.lookup(params)
    s, curve = obs.observe(c)
    value, epochs = _value(table, c, s)
    for e in range(epochs):
        v = curve[e]
        if math.isfinite(v):
            trial.report(float(v), e + 1)
            if e + 1 < epochs and trial.should_prune():
                obs.record(c, s, None, e + 1)
                study.tell(trial, state=TrialState.PRUNED)
                return
    obs.record(c, s, value, epochs)
    if value is not None:
        study.tell(trial, value)
    else:  # diverged (finite epochs before) is PRUNED, as search/objective.py tells it; else FAIL
        study.tell(trial, state=TrialState.PRUNED if np.isfinite(curve).any() else TrialState.FAIL)


def _structured(trial: Any, space: SearchSpace) -> dict[str, Any]:
    from hpo_assets.search.objective import _suggest

    return _suggest(trial, space)


def arm_ours(table: Table, obs: Observer, n: int, seed: int, *, n_forced: int = 6, pruner: str = "none",
             startup: int | None = None) -> None:  # fmt: skip
    """This project's search: forced extremes enqueued as ordinary trials, then SpaceSampler (no repeats)."""
    from hpo_assets.search.extremes import forced_extremes
    from hpo_assets.search.steering import SpaceSampler

    opts = _study_options(pruner)
    sampler = SpaceSampler(
        table.space, seed=seed, n_startup_trials=opts.tpe_startup_trials if startup is None else startup
    )
    study = _optuna_study(sampler, opts.make_pruner())
    for ext in forced_extremes(table.space, n_forced):
        study.enqueue_trial(ext.params)
    for _ in range(n):
        trial = study.ask()
        _run_trial(table, obs, study, trial, _structured(trial, table.space))


def _study_options(pruner: str) -> Any:
    """The project's default study options; pruner settings of the demo profile (the tables' 3 epochs)."""
    from hpo_assets.search.runner import StudyOptions
    from hpo_assets.search.study_settings import study_settings

    base, demo = study_settings(), study_settings("demo")
    return StudyOptions(
        n_trials=base.n_trials, seed=base.seed, n_forced=base.n_forced, pruner=pruner,
        pruner_startup_trials=demo.pruner_startup_trials, pruner_warmup_epochs=demo.pruner_warmup_epochs,
        tpe_startup_trials=base.tpe_startup_trials,
    )  # fmt: skip


def arm_seed(table: Table, obs: Observer, n: int, seed: int) -> None:
    """The seed's search: its six extremes evaluated but never told to TPE, then flat categorical TPE
    (independent, Optuna's defaults); a repeat is trained again and costs a trial."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    from hpo_assets.search.extremes import forced_extremes

    space = table.space
    for ext in forced_extremes(space, 6)[:n]:
        c = table.lookup(ext.params)
        s = obs.seed_for(c)
        obs.record(c, s, *_value(table, c, s))
    dists = {"arch": CategoricalDistribution([a.label for a in space.archs]),
             **{k: CategoricalDistribution(list(space.choices[k])) for k in TRAIN_PARAMS}}  # fmt: skip
    study = _optuna_study(optuna.samplers.TPESampler(seed=seed))
    while len(obs.trials) < n:
        trial = study.ask(dists)
        a = space.arch(trial.params["arch"])
        _run_trial(table, obs, study, trial, space.params(a, trial.params))


def arm_sampler(table: Table, obs: Observer, n: int, seed: int, make: Callable[[int], Any]) -> None:
    """A stock Optuna sampler on the structured distributions; each draw projected onto the space."""
    study = _optuna_study(make(seed))
    for _ in range(n):
        trial = study.ask()
        _run_trial(table, obs, study, trial, _structured(trial, table.space))


def arm_parallel(table: Table, obs: Observer, n: int, seed: int, workers: int = 4) -> None:
    """Multivariate TPE with constant_liar on `workers` asynchronous workers: each trial takes its stored
    epochs' seconds; a worker asks as soon as its trial ends; trials are counted in completion order."""
    import heapq

    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                         n_startup_trials=_study_options("none").tpe_startup_trials)  # fmt: skip
    study = _optuna_study(sampler)
    running: list[tuple[float, int, Any, int, int]] = []
    clock, asked = 0.0, 0
    while len(obs.trials) < n:
        while len(running) < workers and asked < n:
            trial = study.ask()
            c = table.lookup(_structured(trial, table.space))
            s = obs.seed_for(c)
            obs.visits.setdefault(c, []).append(s)  # running: the next visit of c gets the next seed
            secs = float(np.nansum(table.epoch_seconds[c, s])) or 1.0
            heapq.heappush(running, (clock + secs, asked, trial, c, s))
            asked += 1
        clock, _, trial, c, s = heapq.heappop(running)
        value, epochs = _value(table, c, s)
        obs.trials.append(Trial(c, s, value, epochs))
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)


def _gp(seed: int) -> Any:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)


def _qmc(seed: int) -> Any:
    import optuna

    return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)


ARMS: dict[str, tuple[str, Callable[..., None], dict[str, Any], bool]] = {
    # name: (description, function, keyword arguments, fixed-seed policy)
    "random": ("random search (uniform over the space, repeats possible)", arm_random, {}, False),
    "seed": ("the seed's method: 6 extremes untold, then flat categorical TPE", arm_seed, {}, False),
    "qmc": ("QMC (scrambled Sobol, Optuna QMCSampler), projected", arm_sampler, {"make": _qmc}, False),
    "ours": ("this project's default: SpaceSampler, 6 true extremes, steering", arm_ours, {}, False),
    "ours_no_extremes": ("ours without the forced extremes", arm_ours, {"n_forced": 0}, False),
    "ours_fixed_seed": ("ours, every trial trained with one seed (study.seed policy)", arm_ours, {}, True),
    "gp": ("Optuna GPSampler, projected", arm_sampler, {"make": _gp}, False),
    "tpe_cl4": ("multivariate TPE, constant_liar, 4 async workers", arm_parallel, {}, False),
    "ours_median": ("ours + MedianPruner (demo profile settings)", arm_ours, {"pruner": "median"}, False),
    "ours_hyperband": (
        "ours + HyperbandPruner (demo profile settings)",
        arm_ours,
        {"pruner": "hyperband"},
        False,
    ),
}


def replay_one(table: Table, arm: str, replay: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(regret after each of n trials, cumulative compute in full runs) of one arm in one replay."""
    _, fn, kwargs, fixed = ARMS[arm]
    obs = Observer(table, Stream.of(table, replay), fixed_seed=fixed)
    fn(table, obs, n, replay, **kwargs)
    return obs.regret_curve()


def _job(args: tuple[str, str, list[int], int, Path]) -> tuple[str, str, np.ndarray, np.ndarray, float]:
    """One arm's replays on one table; cached by (table bytes, this file, arm, replays, trials)."""
    import hashlib

    name, arm, replays, n, data = args
    digest = hashlib.sha1((Path(data) / f"{name}.parquet").read_bytes() + Path(__file__).read_bytes())
    digest.update(json.dumps([arm, replays, n]).encode())
    cache = CACHE / f"{name}.{arm}.{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        got = np.load(cache)
        return name, arm, got["regret"], got["cost"], float(got["cpu"])
    table = load_table(name, data)
    t0 = time.process_time()
    curves = [replay_one(table, arm, r, n) for r in replays]
    regret, cost = np.stack([c[0] for c in curves]), np.stack([c[1] for c in curves])
    cpu = time.process_time() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, regret=regret, cost=cost, cpu=cpu)
    tmp.replace(cache)
    return name, arm, regret, cost, cpu


# --- endpoints and statistics ------------------------------------------------------------------
def endpoints(regret: np.ndarray, cost: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per replay: regret after 10/25/50 trials and at equal compute, area under the regret curve, trials
    and compute until within EPSILON (n + 1 / inf when never)."""
    out: dict[str, np.ndarray] = {}
    for k in CHECKPOINTS:
        if k <= n:
            out[f"regret@{k}"] = regret[:, k - 1]
    idx = np.array([max(0, int(np.searchsorted(c, EQUAL_COMPUTE, side="right")) - 1) for c in cost])
    reached = cost[:, -1] >= EQUAL_COMPUTE - 1e-9
    out[f"regret@{EQUAL_COMPUTE:g}runs"] = np.where(reached, regret[np.arange(len(idx)), idx], np.nan)
    out["aurc"] = regret[:, :n].mean(axis=1)
    hit = regret <= EPSILON
    out["trials_to_eps"] = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, n + 1).astype(float)
    out["compute_to_eps"] = np.where(hit.any(axis=1), cost[np.arange(len(cost)), hit.argmax(axis=1)], np.inf)
    return out


def mean_interval(
    x: np.ndarray, seed: int = 0, resamples: int = 2000
) -> tuple[float, float | None, float | None]:
    """Mean and percentile bootstrap interval over independent replays (lead's bootstrap, blocks of 1)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, None, None
    idx = block_indices(x.size, 1, resamples, seed)
    lo, hi, _, _ = percentile_interval(x[idx].mean(axis=1), LEVEL)
    return float(x.mean()), lo, hi


def paired(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """a - b over the same replays: mean, bootstrap interval, Wilcoxon signed-rank p (zeros split)."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    m, lo, hi = mean_interval(d, seed)
    p = float(stats.wilcoxon(d, zero_method="zsplit").pvalue) if d.size and np.any(d != 0) else 1.0
    return {"mean": m, "lo": lo, "hi": hi, "p": p, "n": int(d.size)}


def holm(ps: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family: the arms compared with one reference on one endpoint)."""
    order = np.argsort(ps)
    adj = np.empty(len(ps))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adj[i] = running
    return adj.tolist()


def verdict(d: dict[str, Any], p_adj: float, lower_is_better: bool = True) -> str:
    """'better'/'worse' only when the interval excludes 0 and the Holm-adjusted Wilcoxon p < 0.05."""
    if d["lo"] is None or d["hi"] is None or p_adj >= 0.05 or d["lo"] <= 0 <= d["hi"]:
        return "inconclusive"
    return "better" if (d["hi"] < 0) == lower_is_better else "worse"


def detectable(sd_diff: float, n: int, level: float = LEVEL, power: float = POWER) -> float:
    """Smallest true mean paired difference a two-sided test at `level` detects with `power` (normal)."""
    return float((stats.norm.ppf(1 - (1 - level) / 2) + stats.norm.ppf(power)) * sd_diff / math.sqrt(n))


def null_sd(table: Table, replays: int, n: int) -> dict[str, float]:
    """SD of paired differences between two random-search arms on the same stream (the null's noise)."""
    a: list[tuple[np.ndarray, np.ndarray]] = []
    b: list[tuple[np.ndarray, np.ndarray]] = []
    for r in range(replays):
        for out, off in ((a, 0), (b, 10**6)):
            obs = Observer(table, Stream.of(table, r))
            arm_random(table, obs, n, r + off)
            out.append(obs.regret_curve())
    ea = endpoints(np.stack([x[0] for x in a]), np.stack([x[1] for x in a]), n)
    eb = endpoints(np.stack([x[0] for x in b]), np.stack([x[1] for x in b]), n)
    res = {}
    for k in ea:
        if k == "compute_to_eps":  # infinite when never reached: no SD
            continue
        d = ea[k] - eb[k]
        d = d[np.isfinite(d)]
        res[k] = float(d.std(ddof=1)) if d.size > 1 else math.nan
    return res


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", nargs="+", default=["2M_h1", "2M_h5"])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), help=f"of {list(ARMS)}")
    ap.add_argument("--replays", type=int, default=200)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--gp-replays",
        type=int,
        default=6,
        help="replays of the GPSampler arm (about 55 CPU s each at 50 trials on 2M_h1: 200 take 3 CPU hours)",
    )
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the tables")
    ap.add_argument("--json", type=Path, default=None, help="also write every endpoint's numbers here")
    args = ap.parse_args(argv)
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"replay: unknown arms {unknown}; choose from {list(ARMS)}")
    wall0, load0 = time.perf_counter(), os.getloadavg()[0]
    n, R = args.trials, args.replays
    tables = {name: load_table(name, args.data) for name in args.tables}
    for name, t in tables.items():
        print(format_snr(name, snr(t)))
        print(f"  {len(t.configs)} configurations ({len(t.space.archs)} architectures x lr {list(t.space.choices['lr'])}"
              f" x dropout {list(t.space.choices['dropout'])}), {t.n_seeds} seeds, {t.max_epochs} epochs; best mean "
              f"{t.best:.4f}, mean of means {t.reference:.4f} (regret 0 / 1), runs without objective "
              f"{int(np.isnan(t.y).sum())}")  # fmt: skip
    print(f"\npower, before the results ({R} paired replays, two-sided {LEVEL:.0%}, power {POWER:.0%}; SD of the "
          "paired difference of two random-search arms sharing the seed stream):")  # fmt: skip
    for name, t in tables.items():
        sd = null_sd(t, R, n)
        print(f"  {name}: " + ", ".join(f"{k} SD {v:.3f} -> detectable {detectable(v, R):.3f}"
                                        for k, v in sd.items()))  # fmt: skip

    chunks = max(1, args.workers)
    counts = {arm: min(R, args.gp_replays) if arm == "gp" else R for arm in args.arms}
    jobs = [(name, arm, list(range(counts[arm]))[i::chunks], n, args.data)
            for name in tables for arm in args.arms for i in range(chunks)]  # fmt: skip
    got: dict[tuple[str, str], list[Any]] = {}
    with ProcessPoolExecutor(
        max_workers=args.workers, mp_context=mp.get_context("spawn")
    ) as pool:  # polars' threads: no fork
        for name, arm, reg, cost, cpu in pool.map(_job, [j for j in jobs if j[2]]):
            got.setdefault((name, arm), []).append((reg, cost, cpu))
    results: dict[str, Any] = {}
    verdicts: dict[tuple[str, str, str], str] = {}  # (table, comparison, endpoint) -> verdict
    shown = [k for k in ("regret@10", "regret@25", "regret@50", f"regret@{EQUAL_COMPUTE:g}runs", "aurc",
                         "trials_to_eps")]  # fmt: skip
    for name in tables:
        ends: dict[str, dict[str, np.ndarray]] = {}
        print(f"\n{name}: normalised held-out regret (0 = the table's best mean, 1 = a random configuration), "
              f"mean over replays [{LEVEL:.0%} bootstrap interval]; trials_to_eps: trials until regret <= "
              f"{EPSILON} ({n + 1} = never within {n}); compute in full runs")  # fmt: skip
        print(f"  {'arm':<17}{'replays':>7}  " + "  ".join(f"{k:<22}" for k in shown if k.startswith("regret") or
              k in ("aurc", "trials_to_eps")) + "  compute_to_eps(median)  compute@n  CPU s/replay")  # fmt: skip
        for arm in args.arms:
            parts = got[(name, arm)]
            m = counts[arm]
            order = np.argsort(np.concatenate([list(range(m))[i::chunks] for i in range(chunks)]))
            reg = np.concatenate([p[0] for p in parts])[order]
            cost = np.concatenate([p[1] for p in parts])[order]
            ends[arm] = endpoints(reg, cost, n)
            cells = []
            for k in shown:
                if k not in ends[arm]:
                    cells.append(f"{'-':<22}")
                    continue
                mean, lo, hi = mean_interval(ends[arm][k])
                digits = 1 if k == "trials_to_eps" else 3
                cells.append(f"{mean:.{digits}f} [{_f(lo, '', digits)}, {_f(hi, '', digits)}]".ljust(22))
            cpu = sum(p[2] for p in parts)
            print(
                f"  {arm:<17}{m:>7}  "
                + "  ".join(cells)
                + f"  {float(np.median(ends[arm]['compute_to_eps'])):>22.1f}  {cost[:, -1].mean():>9.1f}  {cpu / m:>12.2f}"
            )
        results[name] = {arm: {k: v.tolist() for k, v in e.items()} for arm, e in ends.items()}
        for ref in ("random", "ours"):
            if ref not in ends:
                continue
            print(f"  paired differences arm - {ref} over common replays (negative = lower regret); Wilcoxon "
                  "signed-rank p Holm-adjusted over the arms; verdict: interval excludes 0 and p_adj < 0.05, "
                  "else inconclusive")  # fmt: skip
            for k in shown[:-1]:
                others = [a for a in ends if a != ref and k in ends[a]]
                if not others or k not in ends[ref]:
                    continue
                ds = [paired(*_common(ends[a][k], ends[ref][k])) for a in others]
                adj = holm([d["p"] for d in ds])
                cells = []
                for a, d, pa in zip(others, ds, adj, strict=True):
                    v = verdict(d, pa)
                    verdicts[(name, f"{a} vs {ref}", k)] = v
                    cells.append(f"{a} {d['mean']:+.3f} [{_f(d['lo'], '+')}, {_f(d['hi'], '+')}] p_adj {pa:.2g}"
                                 + ("" if v == "inconclusive" else f" {v.upper()}"))  # fmt: skip
                print(f"    {k}: " + "; ".join(cells))
    print("\ndecisions (a change needs 'better' on its endpoint in every table):")
    rules = [("n_forced 6 -> 0", "ours_no_extremes vs ours", "aurc"),
             ("per-trial seeds fixed (vs varied)", "ours_fixed_seed vs ours", "aurc"),
             ("pruner median (vs none)", "ours_median vs ours", f"regret@{EQUAL_COMPUTE:g}runs"),
             ("pruner hyperband (vs none)", "ours_hyperband vs ours", f"regret@{EQUAL_COMPUTE:g}runs"),
             *((f"sampler {a} (vs ours)", f"{a} vs ours", "aurc") for a in ("random", "seed", "qmc", "gp", "tpe_cl4")),
             *((f"{a} beats random search", f"{a} vs random", "aurc") for a in args.arms if a != "random")]  # fmt: skip
    for label, comp, k in rules:
        vs = [verdicts.get((name, comp, k)) for name in tables]
        if any(v is None for v in vs):
            continue
        win = all(v == "better" for v in vs)
        print(
            f"  {label}: {', '.join(f'{t} {v}' for t, v in zip(tables, vs, strict=True))} on {k} -> "
            + ("WINS on every table" if win else "no change")
        )
    if args.json:
        args.json.write_text(json.dumps(results))
    print(f"\nwall {time.perf_counter() - wall0:.0f} s with {args.workers} worker process(es); load average "
          f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} CPUs)")  # fmt: skip


def _common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The replays both arms ran (replay r is row r of each)."""
    m = min(len(a), len(b))
    return a[:m], b[:m]


def _f(x: float | None, sign: str = "", digits: int = 3) -> str:
    return "None" if x is None else f"{x:{sign}.{digits}f}"


if __name__ == "__main__":
    main()
