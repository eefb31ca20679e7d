"""No configuration is trained twice: TPE proposes, and a repeat is moved to the nearest untested one.

The steering happens inside the sampler (before any parameter is stored), so the trial's recorded
params are exactly what is trained, no fake value is ever told to Optuna, and the trial count is not
inflated. The skip is recorded on the trial (`duplicate_of`, `steered_from`) by the runner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from hpo_assets.search.space import Config, SearchSpace


@dataclass(frozen=True)
class Steer:
    """A proposal that repeated trial `duplicate_of` and the params the sampler first proposed."""

    duplicate_of: int
    steered_from: dict[str, Any]


def counts_as_tested(trial: FrozenTrial) -> bool:
    """COMPLETE, PRUNED and RUNNING trials, and diverged FAILs, have tested their configuration.

    A FAIL from an exception (or a killed run) has not: its configuration may be tried again.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("diverged"))


def tested_configs(
    space: SearchSpace, trials: Iterable[FrozenTrial], exclude: int | None = None
) -> dict[Config, int]:
    """Each tested configuration -> the number of the earliest trial that tested it."""
    out: dict[Config, int] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.number == exclude or not counts_as_tested(t):
            continue
        key = space.key(t.params)
        if key is not None and key not in out:
            out[key] = t.number
    return out


def repeated_trials(space: SearchSpace, trials: Iterable[FrozenTrial]) -> list[int]:
    """Trials that tested a configuration an earlier trial had already tested (the steering's own rule).

    Empty for a healthy study: the sampler steers repeats away and the runner skips enqueued ones.
    """
    trials = list(trials)
    first = tested_configs(space, trials)
    return [
        t.number
        for t in sorted(trials, key=lambda t: t.number)
        if counts_as_tested(t) and (key := space.key(t.params)) is not None and first[key] != t.number
    ]


class SteeringSampler(BaseSampler):
    """Wraps a sampler (TPE): takes its full proposal and steers repeats to untested configurations.

    Enqueued trials (forced extremes, retries) keep their fixed params; the runner checks those.
    Ties between equally near untested configurations are broken by an RNG seeded with
    (seed, trial number), so a resumed study steers exactly as an uninterrupted one would.
    """

    def __init__(self, base: BaseSampler, space: SearchSpace, seed: int) -> None:
        self._base = base
        self._space = space
        self._seed = seed
        self.steered: dict[int, Steer] = {}

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._space.distributions())

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if trial.system_attrs.get("fixed_params"):
            return {}
        proposal = self._propose(study, trial)
        tested = tested_configs(self._space, study.get_trials(deepcopy=False), exclude=trial.number)
        key = self._space.key(proposal)
        assert key is not None
        if key not in tested:
            return proposal
        rng = np.random.default_rng([self._seed, trial.number])
        new = self._space.nearest_untested(key, set(tested), rng)
        if new is None:  # nothing untested is left; the runner stops before asking in that case
            return proposal
        self.steered[trial.number] = Steer(duplicate_of=tested[key], steered_from=proposal)
        return self._space.params(new)

    def _propose(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        """The wrapped sampler's full proposal: its relative sample, completed independently."""
        dists = self._space.distributions()
        inner = self._base.infer_relative_search_space(study, trial)
        inner = {k: v for k, v in inner.items() if k in dists}
        proposal = dict(self._base.sample_relative(study, trial, inner)) if inner else {}
        for name, dist in dists.items():
            if name not in proposal:
                proposal[name] = self._base.sample_independent(study, trial, name, dist)
        return {name: proposal[name] for name in dists}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
