"""Did the methodology help? The seed's search vs random search vs ours, with real training at demo scale.

The real-training half of the methodology A/B (issue #9; the surrogate half is benchmarks/search_ab.py,
whose method definitions this script reuses). Every trial really trains the budget's model with the
project's trainer (search/objective.py TorchTrainer) under the `demo` profile of defaults.yaml (window,
split dates, epochs, patience, one CPU thread), objective validation AUC, horizon h1. No pruner: every
trial trains to its end, so the methods differ only in what they propose.

Methods, `--seeds` independent studies each (study seed s = sampler seed = model-init seed of every
trial, as the project's studies use one seed for both):
- seed: flat categorical TPE, repeats allowed and re-trained (they cost a trial), the forced extremes
  trained first but never told to TPE;
- random: uniform over valid configurations (repeats possible);
- ours: SpaceSampler (search/steering.py) with the forced extremes enqueued as ordinary trials and the
  demo profile's TPE start-up count.

Score after n trials: the incumbent (best observed val AUC so far), i.e. what the method would hand on.
Its own observed val AUC is optimistic (the maximum of noisy runs), so each method's incumbent at each
checkpoint is also re-trained with a second seed (s + 1000) and that value reported ("re-evaluated").
Reported: medians over the study seeds with 95% bootstrap intervals (noise: sampler seed and model-init
seed together, i.e. what another study would give); trials each method needs until its observed
incumbent reaches the seed method's median best; trials wasted on exact or effective repeats.

Runs are cached in benchmarks/.cache/ by (effective configuration, training seed, settings): a killed
run resumes, and a configuration two methods both train with one seed (the forced extremes) is
trained once. That relies on CPU training with one thread being deterministic, which the script
checks by training one configuration twice and prints.

    .venv/bin/python benchmarks/search_ab_real.py [--seeds 4] [--trials 25] [--budget 2M] [--horizon 1]

Measured (`--seeds 4 --trials 50`, 2M|h1: 598 runs, median 3.3 s each, wall 2070 s, load average 0.7-1.0
on 2 CPUs): median observed incumbent val AUC after 10 / 25 / 50 trials seed 0.6493 / 0.6968 / 0.6998,
random 0.6891 / 0.6989 / 0.7115, ours 0.6771 / 0.7085 / 0.7141; re-evaluated with a second seed
seed 0.6759 / 0.5685 / 0.5769, random 0.6542 / 0.6114 / 0.6337, ours 0.6468 / 0.6536 / 0.5883; every
interval pair overlaps (inconclusive); trials to the seed's 50-trial median 43 / 22.5 / 17; the seed's
flat TPE trained 8 exact repeats of 200, random and ours none; the 50-trial incumbents lost a median
0.102 val AUC when re-trained (seed noise dominates at 3 epochs).
Intervals and the full report: README, "Search methodology".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_ab import median_ci, ours_method, random_method, seed_method  # noqa: E402

from hpo_assets.data.market import default_market_path, load_market  # noqa: E402
from hpo_assets.search.build import prepared_for, study_space, torch_trainer  # noqa: E402
from hpo_assets.search.objective import plain  # noqa: E402
from hpo_assets.search.space import TRAIN_PARAMS, SearchSpace  # noqa: E402
from hpo_assets.search.study_settings import StudySettings, study_settings  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
CHECKPOINTS = (10, 25, 50)
METHODS = ("seed", "random", "ours")
REEVAL_SEED = 1000  # second training seed of an incumbent: study seed + this
Runs = list[tuple[dict[str, Any], "float | None"]]


class RealRuns:
    """Validation AUC of (configuration, training seed), trained once by the project's trainer, cached."""

    def __init__(self, data: Any, space: SearchSpace, cfg: StudySettings, tag: str) -> None:
        self.data, self.space, self.cfg = data, space, cfg
        self.path = CACHE / f"search_ab_real_{tag}.jsonl"
        self.cache: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.cache[rec["key"]] = rec
        self.trained = 0

    def _key(self, params: dict[str, Any], seed: int) -> str:
        return json.dumps([list(self.space.effective_key(params)), seed])  # type: ignore[arg-type]

    def train(self, params: dict[str, Any], seed: int) -> dict[str, Any]:
        """One real training run (no cache): val AUC or the reason there is none."""
        cfg = self.cfg.model_copy(update={"objective": "val_auc", "cpu_threads": self.cfg.cpu_threads or 1})
        trainer = torch_trainer(self.data, cfg, "cpu", seed=seed)
        arch = self.space.arch_of(params)
        assert arch is not None, params
        rec: dict[str, Any] = {"params": plain(params), "seed": seed, "val_auc": None, "reason": None}
        t0 = time.perf_counter()
        try:
            res = trainer(arch, {k: params[k] for k in TRAIN_PARAMS}, lambda _record: None)
        except Exception as exc:  # a failed run is a failed trial, with its reason
            rec["reason"] = f"{type(exc).__name__}: {exc}"
        else:
            value = res.metrics.get("val_auc")
            if res.status == "diverged":
                rec["reason"] = f"diverged at epoch {res.diverge_epoch}: {res.diverged_reason}"
            elif not isinstance(value, float | int) or not math.isfinite(value):
                rec["reason"] = f"val_auc is {value!r}"
            else:
                rec["val_auc"] = float(value)
        rec["seconds"] = time.perf_counter() - t0
        return rec

    def __call__(self, params: dict[str, Any], seed: int) -> float | None:
        key = self._key(params, seed)
        if key not in self.cache:
            rec = {**self.train(params, seed), "key": key}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            self.cache[key] = rec
            self.trained += 1
        return self.cache[key]["val_auc"]


def incumbents(runs: Runs) -> tuple[np.ndarray, list[int | None]]:
    """After each trial: the best observed value so far (nan before the first success) and its trial index."""
    best, idx, curve, where = -math.inf, None, [], []
    for i, (_, v) in enumerate(runs):
        if v is not None and v > best:
            best, idx = v, i
        curve.append(best if idx is not None else math.nan)
        where.append(idx)
    return np.asarray(curve), where


def repeats(space: SearchSpace, runs: Runs) -> tuple[int, int]:
    """Trials that repeat an earlier trial of the same study: (exact configuration, effective only)."""
    exact = effective = 0
    keys, eff = set(), set()
    for p, _ in runs:
        k, e = space.key(p), space.effective_key(p)
        if k in keys:
            exact += 1
        elif e in eff:
            effective += 1
        keys.add(k)
        eff.add(e)
    return exact, effective


def _fmt(m: float, lo: float, hi: float) -> str:
    return f"{m:.4f} [{lo:.4f}, {hi:.4f}]"


def _verdict(a: tuple[float, float, float], b: tuple[float, float, float], n_seeds: int) -> str:
    if n_seeds < 3:
        return "no verdict (fewer than 3 study seeds)"
    if a[1] > b[2]:
        return "higher"
    if a[2] < b[1]:
        return "lower"
    return "inconclusive (intervals overlap)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4, help="independent studies per method")
    ap.add_argument("--trials", type=int, default=25, help="trials per study")
    ap.add_argument("--budget", default="2M")
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--profile", default="demo", help="profile of defaults.yaml for window, epochs, threads")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    wall0, load0 = time.perf_counter(), os.getloadavg()
    cfg = study_settings(args.profile)
    data = prepared_for(load_market(default_market_path()), args.horizon, cfg)
    space = study_space(args.budget, data, cfg)
    fingerprint = json.dumps([args.budget, args.horizon, cfg.model_dump(), len(data.split.train),
                              len(data.split.val), space.size], sort_keys=True, default=str)  # fmt: skip
    tag = f"{args.budget}_h{args.horizon}_{hashlib.sha1(fingerprint.encode()).hexdigest()[:10]}"
    runs = RealRuns(data, space, cfg, tag)
    print(f"{args.budget}|h{args.horizon}, profile {args.profile}: window {cfg.start}..{cfg.end}, val from "
          f"{cfg.val_start}, test from {cfg.test_start} (not read); {len(data.split.train)} train / "
          f"{len(data.split.val)} val windows; {cfg.max_epochs} epochs, patience {cfg.patience}, "
          f"{cfg.cpu_threads or 1} thread(s), no pruner")  # fmt: skip
    print(f"space: {len(space.archs)} shapes, {space.size:,} configurations ({space.n_effective:,} effective); "
          f"{args.seeds} studies x {args.trials} trials per method; cache {runs.path}")  # fmt: skip

    by: dict[str, list[Runs]] = {m: [] for m in METHODS}
    for s in range(args.seeds):
        for name in METHODS:
            t0, before = time.perf_counter(), runs.trained

            def evaluate(p: dict[str, Any], s: int = s) -> float | None:
                return runs(p, s)

            if name == "seed":
                out = seed_method(space, args.trials, s, evaluate, cfg.n_forced)
            elif name == "random":
                out = random_method(space, args.trials, np.random.default_rng([s, 1]), evaluate)
            else:
                out = ours_method(space, args.trials, s, evaluate, cfg.tpe_startup_trials, cfg.n_forced)
            by[name].append(out)
            print(f"  study seed {s} {name}: {runs.trained - before} trained now, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip

    # Determinism: one configuration trained again outside the cache must give the cached value.
    p0 = by["ours"][0][0][0]
    again = runs.train(p0, 0)["val_auc"]
    cached = runs(p0, 0)
    same = again == cached
    print(
        f"determinism: a configuration re-trained with seed 0 gave {again} vs cached {cached}: "
        + ("identical" if same else "DIFFERENT: cache shares runs that are not reproducible")
    )

    checks = [k for k in CHECKPOINTS if k < args.trials] + [args.trials]
    observed = {m: np.stack([incumbents(r)[0] for r in by[m]]) for m in METHODS}
    reeval: dict[str, dict[int, np.ndarray]] = {m: {} for m in METHODS}
    for m in METHODS:
        for k in checks:
            vals = []
            for s, r in enumerate(by[m]):
                idx = incumbents(r)[1][k - 1]
                v = None if idx is None else runs(r[idx][0], s + REEVAL_SEED)
                vals.append(math.nan if v is None else v)
            reeval[m][k] = np.asarray(vals)

    rng = np.random.default_rng(0)
    n = args.trials
    print(f"\nval AUC of the incumbent, median over {args.seeds} study seeds [95% bootstrap interval]")
    for label, table in (
        (
            "observed (its own run: optimistic)",
            {m: {k: observed[m][:, k - 1] for k in checks} for m in METHODS},
        ),
        (f"re-evaluated (incumbent re-trained with seed s+{REEVAL_SEED})", reeval),
    ):
        print(f"{label}:")
        cis: dict[str, dict[int, tuple[float, float, float]]] = {}
        for m in METHODS:
            cis[m] = {k: median_ci(table[m][k][~np.isnan(table[m][k])], rng) for k in checks}
            print(f"  {m:<7}" + "   ".join(f"after {k:>2}: {_fmt(*cis[m][k])}" for k in checks))
        for other in ("seed", "random"):
            print(f"  ours vs {other}: " + ", ".join(f"after {k}: {_verdict(cis['ours'][k], cis[other][k], args.seeds)}"
                                                 for k in checks))  # fmt: skip

    gap = np.concatenate([observed[m][:, n - 1] - reeval[m][n] for m in METHODS])
    gap = gap[~np.isnan(gap)]
    print(f"optimism of the observed value: observed minus re-evaluated val AUC of the {n}-trial incumbents, "
          f"median over all {len(gap)} studies {_fmt(*median_ci(gap, rng))}, range {gap.min():+.4f}..{gap.max():+.4f}")  # fmt: skip

    target = float(np.nanmedian(observed["seed"][:, n - 1]))
    print(
        f"\ntrials until the observed incumbent reaches the seed method's {n}-trial median best {target:.4f}:"
    )
    for m in METHODS:
        hit = observed[m] >= target - 1e-12
        reach = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, n + 1)  # n + 1: not within n trials
        med, lo, hi = (f"{x:g}" if x <= n else f">{n}" for x in median_ci(reach.astype(float), rng))
        print(f"  {m:<7} median {med} [{lo}, {hi}], per study {[int(x) if x <= n else None for x in reach]}, "
              f"never within {n} in {int((reach > n).sum())}/{args.seeds}")  # fmt: skip

    print(
        f"\nwasted trials (of {args.seeds} x {n}): exact repeats / effective-only repeats / failed or diverged"
    )
    for m in METHODS:
        rep = [repeats(space, r) for r in by[m]]
        failed = sum(v is None for r in by[m] for _, v in r)
        print(f"  {m:<7} {sum(e for e, _ in rep)} / {sum(f for _, f in rep)} / {failed}")
    secs = [r["seconds"] for r in runs.cache.values() if r.get("seconds")]
    print(f"\n{len(runs.cache)} distinct runs cached ({runs.trained} trained by this invocation), median "
          f"{np.median(secs):.1f} s per run; wall {time.perf_counter() - wall0:.0f} s; load average "
          f"{load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} CPUs)")  # fmt: skip


if __name__ == "__main__":
    main()
