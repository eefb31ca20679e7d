"""Warm-started studies: begin a budget's search where smaller budgets' studies ended.

Under `mup`/`completep` (model/parametrization.py) the learning rate means the same thing at every
width, so a small budget's best training parameters are a good first guess at a large one. A
warm-started study therefore (1) enqueues each source study's best configuration mapped onto the
target's space (`map_onto`: the only function that knows both spaces' shapes), (2) then the same
with dropout and weight decay one grid step either side (they are regularisation, tied to data size
and model size, and do not transfer under muP), (3) forces fewer extremes, and (4) for its first
sampled trials draws at random from the transferred region (`RegionSampler`) before TPE takes over.
Every transferred trial records its source (`transferred_from` = "study#trial"), and the study
records its sources in its metadata.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from hpo_assets.search.space import TRAIN_PARAMS, ArchChoice, SearchSpace
from hpo_assets.search.storage import open_storage

# Parameters that do not transfer under muP: tried one grid step either side of the source value.
WIDENED: tuple[str, ...] = ("dropout", "weight_decay")


class TransferError(ValueError):
    """A source study that cannot warm-start the target; the message names it."""


@dataclass(frozen=True)
class SourceBest:
    """The best COMPLETE trial of one source study."""

    study_name: str
    trial_number: int
    value: float
    params: dict[str, Any]
    arch: dict[str, int]  # d_model, n_layers, n_heads, d_ff of the source's best trial
    param_count: int | None

    @property
    def tag(self) -> str:
        return f"{self.study_name}#{self.trial_number}"


@dataclass(frozen=True)
class Transferred:
    """One configuration to enqueue, with the source it came from and why."""

    params: dict[str, Any]
    source: str  # "study#trial"
    kind: str  # "best" or e.g. "dropout+1"


@dataclass
class WarmStart:
    """Everything a study needs to start warm (built by `plan_warm_start`)."""

    sources: list[SourceBest]
    configs: list[Transferred]
    region: list[dict[str, Any]] = field(default_factory=list)  # configurations the first trials draw from

    def study_attrs(self) -> dict[str, Any]:
        return {
            "transferred_from": [s.study_name for s in self.sources],
            "transfer_sources": [
                {"study": s.study_name, "trial": s.trial_number, "value": s.value, "params": s.params}
                for s in self.sources
            ],
        }


def load_sources(
    storage: str, study_names: Sequence[str], parametrization: str, direction: str
) -> list[SourceBest]:
    """The best COMPLETE trial of each source study, refusing any it cannot transfer from.

    One message per refusal: a missing study, one without a COMPLETE trial, one optimising in the other
    direction, or one trained in a different parametrisation (its learning rate means something else).
    """
    out = []
    for name in study_names:
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(storage, name))
        except KeyError:
            raise TransferError(
                f"transfer_from: source study {name!r} does not exist in this storage"
            ) from None
        source_kind = study.user_attrs.get("parametrization", "standard")
        if source_kind != parametrization:
            raise TransferError(
                f"transfer_from: source study {name!r} was trained with parametrization {source_kind!r}, "
                f"the target uses {parametrization!r}; a learning rate does not carry over between them"
            )
        if study.direction.name.lower() != direction:
            raise TransferError(
                f"transfer_from: source study {name!r} optimises {study.direction.name.lower()}, "
                f"the target {direction}; use the same objective"
            )
        complete = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
        ]
        if not complete:
            raise TransferError(f"transfer_from: source study {name!r} has no COMPLETE trial to transfer")
        best = (
            max(complete, key=lambda t: t.value)
            if direction == "maximize"
            else min(complete, key=lambda t: t.value)
        )
        arch = {
            k: int(best.user_attrs[k])
            for k in ("d_model", "n_layers", "n_heads", "d_ff")
            if k in best.user_attrs
        }
        out.append(
            SourceBest(
                name,
                best.number,
                float(best.value),
                dict(best.params),
                arch,
                best.user_attrs.get("param_count"),
            )
        )
    return out


def _nearest_value(values: Sequence[Any], value: Any) -> Any:
    """The choice closest to `value` (log scale for positive numbers, so lr 2e-4 -> 3e-4 not 1e-4)."""
    if value in values:
        return value
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*values, value]):
        return values[0]  # a category the target does not offer: its first (default) choice
    nums = np.asarray(values, dtype=float)
    v = float(value)
    if v > 0 and np.all(nums > 0):
        return values[int(np.argmin(np.abs(np.log(nums) - np.log(v))))]
    return values[int(np.argmin(np.abs(nums - v)))]


def _target_arch(space: SearchSpace, source_arch: Mapping[str, int]) -> ArchChoice:
    """The target architecture with the source's depth, head size and FFN ratio, as near as the space has.

    muP transfers across width: the target keeps the source's shape in every other dimension and
    takes the width its budget allows. Distance in log2 units; ties go to the wider architecture.
    """
    if not source_arch:
        return space.archs[space.middle_arch()]
    want = np.log2(
        [
            source_arch["n_layers"],
            source_arch["d_model"] // source_arch["n_heads"],
            source_arch["d_ff"] / source_arch["d_model"],
        ]
    )
    have = np.log2([[a.n_layers, a.d_model // a.n_heads, a.d_ff / a.d_model] for a in space.archs])
    dist = ((have - want) ** 2).sum(axis=1)
    candidates = np.flatnonzero(np.isclose(dist, dist.min()))
    return max((space.archs[i] for i in candidates), key=lambda a: (a.d_model, a.param_count))


def _arch_params(arch: ArchChoice) -> dict[str, Any]:
    """How a study's params name an architecture: one label today; separate dimensions if the space has them."""
    by_dims = getattr(arch, "arch_params", None)
    return dict(by_dims()) if callable(by_dims) else {"arch": arch.label}


def map_onto(source: SourceBest, space: SearchSpace) -> dict[str, Any]:
    """A source's best configuration expressed in the target's space (the one place that maps spaces).

    Architecture: chosen in the target's space (`_target_arch`). Training parameters: each snapped to
    the nearest value the target's space offers (e.g. a target budget that stops at a lower lr).
    """
    params: dict[str, Any] = _arch_params(_target_arch(space, source.arch))
    for name in TRAIN_PARAMS:
        values = space.values(name)
        params[name] = (
            _nearest_value(values, source.params[name])
            if name in source.params
            else space.middle_choice(name)
        )
    return params


def _step(space: SearchSpace, params: Mapping[str, Any], name: str, delta: int) -> dict[str, Any] | None:
    values = space.values(name)
    i = values.index(params[name]) + delta
    return {**params, name: values[i]} if 0 <= i < len(values) else None


def plan_warm_start(sources: Sequence[SourceBest], space: SearchSpace, max_configs: int) -> WarmStart:
    """The configurations to enqueue, in order, and the region the first sampled trials draw from.

    Order: every source's mapped best (the largest source budget first: nearest in scale), then, around
    the first one, dropout and weight decay one step down/up. Repeats are dropped; at most `max_configs`.
    """
    ordered = sorted(sources, key=lambda s: -(s.param_count or 0))
    configs: list[Transferred] = []
    seen: set[tuple] = set()

    def add(params: Mapping[str, Any] | None, source: str, kind: str) -> None:
        if params is None or len(configs) >= max_configs:
            return
        key = space.key(params)
        if key in seen:
            return
        seen.add(key)
        configs.append(Transferred(dict(params), source, kind))

    mapped = [(s, map_onto(s, space)) for s in ordered]
    for s, params in mapped:
        add(params, s.tag, "best")
    if mapped:
        s, params = mapped[0]
        for name in WIDENED:
            for delta in (-1, 1):
                add(_step(space, params, name, delta), s.tag, f"{name}{delta:+d}")
    region = _region(space, [p for _, p in mapped])
    return WarmStart(list(sources), configs, region)


def _region(space: SearchSpace, centres: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every configuration within one grid step of a centre in each training parameter, same architecture."""
    out: dict[tuple, dict[str, Any]] = {}
    for centre in centres:
        options = []
        for name in TRAIN_PARAMS:
            values = space.values(name)
            i = values.index(centre[name])
            options.append(values[max(0, i - 1) : i + 2])
        arch = {k: v for k, v in centre.items() if k not in TRAIN_PARAMS}
        for combo in itertools.product(*options):
            params = {**arch, **dict(zip(TRAIN_PARAMS, combo, strict=True))}
            out.setdefault(space.key(params), params)
    return list(out.values())


class RegionSampler(BaseSampler):
    """For the first `n_region` sampled trials, a uniform draw from the transferred region; then `base`.

    Enqueued trials keep their fixed params (Optuna applies them before asking the sampler). Draws use
    an RNG seeded with (seed, trial number), so a resumed study draws as an uninterrupted one would.
    """

    def __init__(
        self, base: BaseSampler, region: Sequence[Mapping[str, Any]], n_region: int, seed: int
    ) -> None:
        self._base = base
        self._region = [dict(p) for p in region]
        self._n_region = n_region
        self._seed = seed

    def _in_region_phase(self, study: Study, trial: FrozenTrial) -> bool:
        if not self._region or trial.system_attrs.get("fixed_params"):
            return False
        sampled_before = sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.number < trial.number and not t.system_attrs.get("fixed_params")
        )
        return sampled_before < self._n_region

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._in_region_phase(study, trial):
            rng = np.random.default_rng([self._seed, trial.number, 7])
            pick = self._region[int(rng.integers(len(self._region)))]
            return {k: v for k, v in pick.items() if k in search_space}
        return self._base.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if self._in_region_phase(study, trial):
            rng = np.random.default_rng([self._seed, trial.number, 7])
            return self._region[int(rng.integers(len(self._region)))][param_name]
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
