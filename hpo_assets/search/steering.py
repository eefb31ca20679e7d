"""The study's sampler: multivariate TPE on the structured space, restricted to valid, untested configurations.

How a proposal is made (after the random start-up trials):
1. TPE draws `n_ei_candidates` configurations from its model of good trials, l(x), as usual.
2. Each draw is projected onto the space: its (d_model, n_layers, n_heads, d_ff_ratio) onto the nearest
   valid architecture of the budget's band, each training value onto its nearest listed value.
3. TPE scores every projected candidate with its own acquisition, log l(x) - log g(x).
4. The best-scored candidate whose training run is not yet tested is the proposal. When the
   best-scored one of all was already tested, the trial is *steered*: it records `duplicate_of` and
   `steered_from` (what TPE wanted), and trains what TPE wanted next, not a neighbour of the incumbent.
If no candidate is untested (late in a small space), a uniformly random untested configuration is used.

The steering happens before any parameter is stored, so the trial's recorded params are exactly what
is trained, no fake value is told to Optuna and the trial count is not inflated. Each trial's draws
are seeded by (seed, trial number), so a resumed study proposes what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from hpo_assets.search.space import ARCH_PARAMS, TRAIN_PARAMS, Config, SearchSpace

N_EI_CANDIDATES = 128  # TPE's default is 24; more draws leave untested valid candidates late in a study


@dataclass(frozen=True)
class Steer:
    """A proposal whose best-scored candidate repeated trial `duplicate_of`; `steered_from` is that candidate."""

    duplicate_of: int
    steered_from: dict[str, Any]


def counts_as_tested(trial: FrozenTrial) -> bool:
    """COMPLETE, PRUNED (diverged trials included) and RUNNING trials have tested their configuration.

    A FAIL from an exception (or a killed run) has not: its configuration may be tried again. A
    diverged FAIL of a study written before divergence was told as PRUNED still counts as tested.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("diverged"))


def tested_configs(
    space: SearchSpace, trials: Iterable[FrozenTrial], exclude: int | None = None
) -> dict[Config, int]:
    """Each tested effective configuration -> the number of the earliest trial that tested it.

    Replicates (`replicate_of`: the incumbent re-trained with another seed on purpose) are not tests
    of a new configuration and are left out.
    """
    out: dict[Config, int] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.number == exclude or not counts_as_tested(t) or t.user_attrs.get("replicate_of") is not None:
            continue
        key = space.effective_key(t.params)
        if key is not None and key not in out:
            out[key] = t.number
    return out


def repeated_trials(space: SearchSpace, trials: Iterable[FrozenTrial]) -> list[int]:
    """Trials that trained a configuration an earlier trial had already tested (effective keys).

    Empty for a healthy study: the sampler steers repeats away and the runner skips enqueued ones;
    replicates (deliberate re-runs with another seed) are not repeats.
    """
    trials = list(trials)
    first = tested_configs(space, trials)
    return [
        t.number
        for t in sorted(trials, key=lambda t: t.number)
        if counts_as_tested(t)
        and t.user_attrs.get("replicate_of") is None
        and (key := space.effective_key(t.params)) is not None
        and first[key] != t.number
    ]


class SpaceSampler(TPESampler):
    """Multivariate TPE whose candidates are projected onto the space and never repeat a tested run.

    Enqueued trials (forced extremes, retries, replicates) keep their fixed params; the runner
    checks those. `steered` maps a trial number to its Steer until the runner records it.
    """

    def __init__(
        self, space: SearchSpace, *, seed: int, n_startup_trials: int, n_ei_candidates: int = N_EI_CANDIDATES
    ) -> None:
        super().__init__(
            seed=seed,
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=True,
        )
        self._space = space
        self._seed = seed
        self._startup = n_startup_trials
        self._dists = space.distributions()
        self._tested: dict[Config, int] = {}
        self._wanted: dict[str, Any] | None = None
        self.steered: dict[int, Steer] = {}

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._dists)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if trial.system_attrs.get("fixed_params"):
            return {}
        trials = study.get_trials(deepcopy=False)
        tested = tested_configs(self._space, trials, exclude=trial.number)
        rng = np.random.default_rng([self._seed, trial.number])
        n_done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        if n_done < self._startup:
            return self._space.random_untested(rng, set(tested)) or self._space.random_params(rng)
        modelled = {k: v for k, v in self._dists.items() if not v.single()}
        self._tested, self._wanted = tested, None
        self._rng.rng.seed(int(rng.integers(2**31)))  # per-trial draws: resume-stable
        proposal = self._sample(study, trial, modelled) if modelled else {}
        params = self._full(proposal)
        if not self._space.contains(params):  # TPE's scoring hook was not called: an Optuna API change
            raise RuntimeError(
                f"SpaceSampler: TPE proposed {params}, outside the space; this Optuna version's TPESampler "
                "no longer calls the acquisition hook the sampler overrides (see search/steering.py)"
            )
        if self._space.effective_key(params) in tested:  # every candidate was tested
            params = self._space.random_untested(rng, set(tested)) or params
        wanted = self._wanted
        if wanted is not None and self._space.effective_key(wanted) in tested and wanted != params:
            self.steered[trial.number] = Steer(tested[self._space.effective_key(wanted)], wanted)  # type: ignore[index]
        return params

    def _full(self, values: dict[str, Any]) -> dict[str, Any]:
        """Params for every name: the modelled values, the single value of the others."""
        return {name: values[name] if name in values else self._space.values(name)[0] for name in self._dists}

    def _project(self, samples: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Move every candidate onto the space (in place, in TPE's internal representation)."""
        n = len(next(iter(samples.values())))
        arch_vals = np.column_stack(
            [
                samples[d].astype(float) if d in samples else np.full(n, float(self._space.values(d)[0]))
                for d in ARCH_PARAMS
            ]
        )
        arch_idx = self._space.nearest_arch_indices(arch_vals)
        columns: dict[str, list[Any]] = {}
        for name in TRAIN_PARAMS:
            dist = self._dists[name]
            vals = self._space.values(name)
            if name not in samples:
                columns[name] = [vals[0]] * n
            elif isinstance(dist, CategoricalDistribution):
                columns[name] = [dist.to_external_repr(v) for v in samples[name]]
            else:  # nearest listed value, on the log scale for log parameters
                grid = np.asarray(vals, dtype=float)
                x = samples[name].astype(float)
                if getattr(dist, "log", False):
                    grid, x = np.log(grid), np.log(np.maximum(x, 1e-300))
                columns[name] = [vals[i] for i in np.abs(x[:, None] - grid[None, :]).argmin(axis=1)]
        out: list[dict[str, Any]] = []
        for i in range(n):
            params: dict[str, Any] = {
                **self._space.archs[int(arch_idx[i])].arch_params(),
                **{k: columns[k][i] for k in TRAIN_PARAMS},
            }
            out.append(params)
        for name in samples:
            dist = self._dists[name]
            samples[name] = np.asarray([dist.to_internal_repr(p[name]) for p in out], dtype=float)
        return out

    # Optuna 5 names the hook `_compute_acquisition_func`, some 4.x releases `_compute_acquisition_function`.
    def _compute_acquisition_func(
        self, samples: dict[str, np.ndarray], *args: Any, **kwargs: Any
    ) -> np.ndarray:
        return self._masked(super()._compute_acquisition_func, samples, *args, **kwargs)  # type: ignore[misc]

    def _compute_acquisition_function(
        self, samples: dict[str, np.ndarray], *args: Any, **kwargs: Any
    ) -> np.ndarray:
        return self._masked(super()._compute_acquisition_function, samples, *args, **kwargs)  # type: ignore[misc]

    def _masked(
        self, acquisition: Any, samples: dict[str, np.ndarray], *args: Any, **kwargs: Any
    ) -> np.ndarray:
        """TPE's acquisition on the projected candidates; tested ones get -inf (the best untested wins)."""
        candidates = self._project(samples)
        acq = np.asarray(acquisition(samples, *args, **kwargs), dtype=float)
        self._wanted = candidates[int(np.argmax(acq))]
        tested = np.array([self._space.effective_key(c) in self._tested for c in candidates])
        return np.where(tested, -np.inf, acq)
