"""The finite, structured search space of one study: a budget's valid architectures x training choices.

Width, depth, heads and feed-forward ratio are separate ordinal parameters (Optuna int distributions
on a log scale), so TPE can learn "wider is better" instead of one label per shape; lr, dropout,
warm-up fraction and batch size are ordinal too, weight decay (it holds 0) and input normalization
are categories. Every parameter takes values from a finite list, so a configuration is an exact
tuple and "already tried" is an exact test. Only the budget's valid architectures (exact parameter
count within its band, see model/budgets.py) are ever proposed: the sampler projects TPE's draws
onto that set (search/sampler.py), so an invalid combination is never trained nor recorded.

Two configurations whose training runs are identical (e.g. warm-up fractions that round to the same
number of steps on this training set) share one `effective_key`: they are the same trial.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpo_assets.model.params import NORMALIZATIONS
from hpo_assets.training.schedule import total_steps, warmup_steps_for

if TYPE_CHECKING:
    from hpo_assets.model.params import Arch
    from hpo_assets.training.trainer import TrainConfig

TRAINING_FILE = Path(__file__).resolve().parents[1] / "model" / "training.yaml"
ARCH_PARAMS: tuple[str, ...] = ("d_model", "n_layers", "n_heads", "d_ff_ratio")
TRAIN_PARAMS: tuple[str, ...] = (
    "lr",
    "dropout",
    "weight_decay",
    "warmup_frac",
    "batch_size",
    "normalization",
)
PARAM_NAMES: tuple[str, ...] = (*ARCH_PARAMS, *TRAIN_PARAMS)
# Ordinal on a log scale (all values > 0); the other numeric ones are ordinal on a linear scale.
LOG_PARAMS = frozenset({"d_model", "n_layers", "n_heads", "d_ff_ratio", "lr", "batch_size"})
INT_PARAMS = frozenset({"d_model", "n_layers", "n_heads", "d_ff_ratio", "batch_size"})
# Categories: weight decay holds 0 (no log scale; its 4 values are 0 and three decades), normalization.
CATEGORICAL_PARAMS = frozenset({"weight_decay", "normalization"})
MAX_ENUMERATED = 2_000_000

Config = tuple[Any, ...]  # values in PARAM_NAMES order


class SearchSpaceError(ValueError):
    """A search space that cannot be searched (empty, repeated or out-of-range choices)."""


@dataclass(frozen=True)
class ArchChoice:
    """One valid architecture of a budget, with its exact parameter count."""

    label: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    param_count: int

    @property
    def d_ff_ratio(self) -> int:
        return self.d_ff // self.d_model

    def dims(self) -> dict[str, int]:
        return {
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "d_ff": self.d_ff,
        }

    def arch_params(self) -> dict[str, int]:
        """The four architecture parameters as the study records them."""
        return {
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "d_ff_ratio": self.d_ff_ratio,
        }


def arch_choices(entries: Iterable[Any]) -> list[ArchChoice]:
    """ArchChoices from budget-space entries (objects with `.arch` and `.param_count`)."""
    out = []
    for e in entries:
        a = e.arch
        out.append(ArchChoice(a.label, a.d_model, a.n_layers, a.n_heads, a.d_ff, int(e.param_count)))
    return out


def restrict_archs(archs: list[ArchChoice], labels: Sequence[str], budget: str) -> list[ArchChoice]:
    """Only the architectures named (in the given order, repeats dropped); [] keeps them all.

    A label outside the budget's space is a SearchSpaceError naming it and a few valid ones.
    """
    if not labels:
        return archs
    known = {a.label: a for a in archs}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise SearchSpaceError(
            f"architectures: {unknown} are not in the {budget} budget's space ({len(archs)} architectures, "
            f"e.g. {sorted(known)[:3]})"
        )
    return [known[label] for label in dict.fromkeys(labels)]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SearchSpaceError(f"training ranges file {str(path)!r} cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("default"), dict):
        raise SearchSpaceError(
            f"training ranges file {str(path)!r} needs a 'default:' mapping of parameter -> list of values"
        )
    if not isinstance(raw.get("budgets") or {}, dict):
        raise SearchSpaceError(f"training ranges file {str(path)!r}: 'budgets' must be a mapping")
    return raw


def load_training_choices(
    budget: str | int | None = None, path: str | Path | None = None
) -> dict[str, list[Any]]:
    """A budget's training-parameter lists from `model/training.yaml` (or a file of the same shape).

    The `default` lists, each replaced by the budget's own list when its section names one; a budget's
    list must be a subset of the default's (budgets narrow the ranges, they do not invent values).
    """
    from hpo_assets.model.budgets import parse_budget

    path = Path(path) if path else TRAINING_FILE
    raw = _read_yaml(path)
    default = dict(raw["default"])
    if budget is None:
        return default
    n = parse_budget(budget)
    named: dict[str, Any] = {}
    for label, section in (raw.get("budgets") or {}).items():
        if parse_budget(label) == n:
            named = section or {}
    if not isinstance(named, dict):
        raise SearchSpaceError(f"training ranges file {str(path)!r}: budgets.{budget} must be a mapping")
    unknown = sorted(set(named) - set(TRAIN_PARAMS))
    if unknown:
        raise SearchSpaceError(
            f"training ranges file {str(path)!r}: budgets.{budget} names unknown parameters {unknown}; "
            f"valid: {list(TRAIN_PARAMS)}"
        )
    for name, values in named.items():
        if not isinstance(values, list) or not set(values) <= set(default.get(name) or []):
            raise SearchSpaceError(
                f"training ranges file {str(path)!r}: budgets.{budget}.{name} = {values!r} must be a list "
                f"of values from default.{name} = {default.get(name)!r} (a budget may only narrow a range)"
            )
    return {**default, **named}


def _unit(values: np.ndarray) -> np.ndarray:
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (values - lo) / span, 0.5)


@dataclass(frozen=True)
class SearchSpace:
    """A budget's valid architectures x training choices, and the Optuna distributions TPE models.

    `n_train` (training samples) and `max_epochs` let the space tell effective repeats apart: with
    them, warm-up fractions are compared as optimiser steps and batch sizes above n_train as one.
    """

    archs: tuple[ArchChoice, ...]
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    n_train: int | None = None
    max_epochs: int | None = None

    @classmethod
    def build(
        cls,
        archs: Sequence[ArchChoice],
        choices: Mapping[str, Sequence[Any]],
        *,
        n_train: int | None = None,
        max_epochs: int | None = None,
    ) -> SearchSpace:
        """A validated space; `choices` must hold exactly TRAIN_PARAMS, numeric lists sorted low -> high."""
        if not archs:
            raise SearchSpaceError("search space has no architectures (is the budget's space empty?)")
        labels = [a.label for a in archs]
        if len(set(labels)) != len(labels):
            raise SearchSpaceError(f"search space repeats an architecture label: {labels}")
        missing = [k for k in TRAIN_PARAMS if k not in choices]
        extra = [k for k in choices if k not in TRAIN_PARAMS]
        if missing or extra:
            raise SearchSpaceError(
                f"training choices must name exactly {list(TRAIN_PARAMS)}; missing {missing}, unknown {extra}"
            )
        clean: dict[str, tuple[Any, ...]] = {}
        for name in TRAIN_PARAMS:
            values = choices[name]
            if not isinstance(values, list | tuple) or not values:
                raise SearchSpaceError(f"training choice {name!r} must be a non-empty list, got {values!r}")
            if len(set(values)) != len(values):
                raise SearchSpaceError(f"training choice {name!r} repeats a value: {list(values)}")
            if name == "normalization":
                bad = [v for v in values if v not in NORMALIZATIONS]
                if bad:
                    raise SearchSpaceError(
                        f"training choice 'normalization' has unknown values {bad}; choose from {list(NORMALIZATIONS)}"
                    )
                clean[name] = tuple(values)
                continue
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise SearchSpaceError(f"training choice {name!r} has a non-numeric value {v!r}")
                if name in INT_PARAMS and not float(v).is_integer():
                    raise SearchSpaceError(f"training choice {name!r} must hold whole numbers, got {v!r}")
                if name in LOG_PARAMS and v <= 0:
                    raise SearchSpaceError(f"training choice {name!r} must be > 0, got {v!r}")
            if list(values) != sorted(values):
                raise SearchSpaceError(f"training choice {name!r} must be sorted low -> high: {list(values)}")
            if name == "dropout" and not all(0 <= v < 1 for v in values):
                raise SearchSpaceError(f"training choice 'dropout' must lie in [0, 1): {list(values)}")
            if name == "warmup_frac" and not all(0 <= v < 1 for v in values):
                raise SearchSpaceError(f"training choice 'warmup_frac' must lie in [0, 1): {list(values)}")
            clean[name] = tuple(int(v) if name in INT_PARAMS else float(v) for v in values)
        for a in archs:
            if a.d_ff % a.d_model:
                raise SearchSpaceError(f"architecture {a.label}: d_ff must be a multiple of d_model")
        return cls(tuple(archs), clean, n_train, max_epochs)

    # --- Optuna view -------------------------------------------------------------------------
    def values(self, name: str) -> tuple[Any, ...]:
        """The allowed values of a parameter, low -> high (architecture values: those of valid shapes)."""
        if name in ARCH_PARAMS:
            return tuple(sorted({getattr(a, name) for a in self.archs}))
        return self.choices[name]

    def distributions(self) -> dict[str, BaseDistribution]:
        """Ordinal parameters as int/float distributions spanning their lists, categories as categorical."""
        out: dict[str, BaseDistribution] = {}
        for name in PARAM_NAMES:
            vals = self.values(name)
            if name in CATEGORICAL_PARAMS:
                out[name] = CategoricalDistribution(list(vals))
            elif name in INT_PARAMS:
                out[name] = IntDistribution(int(vals[0]), int(vals[-1]), log=name in LOG_PARAMS)
            else:
                out[name] = FloatDistribution(float(vals[0]), float(vals[-1]), log=name in LOG_PARAMS)
        return out

    @property
    def size(self) -> int:
        return len(self.archs) * math.prod(len(v) for v in self.choices.values())

    @cached_property
    def _arch_by_dims(self) -> dict[tuple[int, int, int, int], int]:
        return {(a.d_model, a.n_layers, a.n_heads, a.d_ff_ratio): i for i, a in enumerate(self.archs)}

    def arch(self, label: str) -> ArchChoice:
        for a in self.archs:
            if a.label == label:
                return a
        raise SearchSpaceError(f"architecture {label!r} is not in this search space")

    def arch_of(self, params: Mapping[str, Any]) -> ArchChoice | None:
        """The valid architecture a trial's params name; None when they name none of this space's."""
        try:
            dims = tuple(int(params[k]) for k in ARCH_PARAMS)
        except (KeyError, TypeError, ValueError):
            return None
        i = self._arch_by_dims.get(dims)  # type: ignore[arg-type]
        return None if i is None else self.archs[i]

    def params(self, arch: ArchChoice, train: Mapping[str, Any]) -> dict[str, Any]:
        """A full parameter dict from an architecture and the training values."""
        return {**arch.arch_params(), **{k: train[k] for k in TRAIN_PARAMS}}

    def key(self, params: Mapping[str, Any]) -> Config | None:
        """The exact configuration tuple of a trial's params; None when a parameter is missing."""
        if any(name not in params for name in PARAM_NAMES):
            return None
        return tuple(params[name] for name in PARAM_NAMES)

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether params name a valid architecture and listed training values."""
        if self.arch_of(params) is None:
            return False
        return all(name in params and params[name] in self.choices[name] for name in TRAIN_PARAMS)

    def effective_key(self, params: Mapping[str, Any]) -> Config | None:
        """What training actually sees: two params with one effective key train identically."""
        key = self.key(params)
        if key is None:
            return None
        p = dict(zip(PARAM_NAMES, key, strict=True))
        d_model, ratio = int(p["d_model"]), int(p["d_ff_ratio"])
        batch, warmup = int(p["batch_size"]), p["warmup_frac"]
        if self.n_train is not None:
            batch = min(batch, self.n_train)
            if self.max_epochs is not None:
                warmup = warmup_steps_for(float(warmup), total_steps(self.n_train, batch, self.max_epochs))
        return (
            d_model,
            int(p["n_layers"]),
            int(p["n_heads"]),
            ratio * d_model,
            float(p["lr"]),
            float(p["dropout"]),
            float(p["weight_decay"]),
            warmup,
            batch,
            p["normalization"],
        )

    @cached_property
    def n_effective(self) -> int:
        """Number of distinct effective configurations (the space is exhausted when all are tested)."""
        combos = {
            self.effective_key({**self.archs[0].arch_params(), **dict(zip(TRAIN_PARAMS, c, strict=True))})
            for c in itertools.product(*(self.choices[k] for k in TRAIN_PARAMS))
        }
        return len(self.archs) * len(combos)

    # --- geometry ------------------------------------------------------------------------------
    @cached_property
    def arch_coords(self) -> np.ndarray:
        """(n_arch, 4) log2 of d_model, n_layers, n_heads, d_ff_ratio scaled to [0, 1]."""
        raw = np.array([[math.log2(getattr(a, d)) for d in ARCH_PARAMS] for a in self.archs], dtype=float)
        return _unit(raw)

    @cached_property
    def _log_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raw = np.array([[math.log2(getattr(a, d)) for d in ARCH_PARAMS] for a in self.archs], dtype=float)
        return raw.min(axis=0), raw.max(axis=0)

    def nearest_arch_indices(self, dims: np.ndarray) -> np.ndarray:
        """For each row (d_model, n_layers, n_heads, d_ff_ratio): index of the nearest valid architecture.

        Nearest in log2 coordinates scaled to [0, 1] per dimension. This is how a draw from TPE's model
        becomes a valid shape: the band constraint is a projection, never a rejected or fake-scored
        trial. Ties go to the earlier (smaller) architecture.
        """
        lo, hi = self._log_bounds
        span = np.where(hi > lo, hi - lo, 1.0)
        point = np.log2(np.maximum(np.atleast_2d(np.asarray(dims, dtype=float)), 1e-12))
        unit = np.where(hi > lo, (point - lo) / span, 0.5)
        dist = ((unit[:, None, :] - self.arch_coords[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(dist, axis=1)

    def nearest_arch(self, dims: Sequence[float]) -> ArchChoice:
        """The valid architecture nearest to (d_model, n_layers, n_heads, d_ff_ratio); see nearest_arch_indices."""
        return self.archs[int(self.nearest_arch_indices(np.asarray([dims]))[0])]

    def snap(self, name: str, value: Any) -> Any:
        """The listed value of a training parameter nearest to `value` (log scale for log parameters)."""
        vals = self.choices[name]
        if name in CATEGORICAL_PARAMS:
            return value if value in vals else vals[0]
        arr = np.asarray(vals, dtype=float)
        v = float(value)
        if name in LOG_PARAMS:
            arr, v = np.log(arr), math.log(max(v, 1e-300))
        return vals[int(np.argmin(np.abs(arr - v)))]

    def middle_arch(self, exclude_dim: str | None = None, among: Sequence[int] | None = None) -> int:
        """Index of the architecture closest to the centre of the space (optionally ignoring one dim)."""
        cols = [i for i, d in enumerate(ARCH_PARAMS) if d != exclude_dim]
        idx = np.arange(len(self.archs)) if among is None else np.asarray(among)
        dist = ((self.arch_coords[np.ix_(idx, cols)] - 0.5) ** 2).sum(axis=1)  # type: ignore[arg-type]
        return int(idx[int(np.argmin(dist))])

    def middle_choice(self, name: str) -> Any:
        """Middle entry of a training list; for normalization its first entry (the default)."""
        values = self.choices[name]
        return values[0] if name == "normalization" else values[(len(values) - 1) // 2]

    def middle(self) -> dict[str, Any]:
        """The middle configuration: the most central architecture, middle entry of each training list."""
        return self.params(self.archs[self.middle_arch()], {k: self.middle_choice(k) for k in TRAIN_PARAMS})

    def random_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random configuration: a valid architecture, then each training value."""
        arch = self.archs[int(rng.integers(len(self.archs)))]
        return self.params(arch, {k: v[int(rng.integers(len(v)))] for k, v in self.choices.items()})

    def random_untested(self, rng: np.random.Generator, tested: set[Config]) -> dict[str, Any] | None:
        """A uniformly random configuration whose effective key is not in `tested`; None when all are."""
        if len(tested) >= self.n_effective:
            return None
        for _ in range(200):
            p = self.random_params(rng)
            if self.effective_key(p) not in tested:
                return p
        if self.size > MAX_ENUMERATED:
            raise SearchSpaceError(f"search space of {self.size} configurations is too large to enumerate")
        sizes = [len(self.archs), *(len(self.choices[k]) for k in TRAIN_PARAMS)]
        for flat in rng.permutation(self.size):
            idx = np.unravel_index(int(flat), sizes)
            p = self.params(
                self.archs[int(idx[0])],
                {k: self.choices[k][int(i)] for k, i in zip(TRAIN_PARAMS, idx[1:], strict=True)},
            )
            if self.effective_key(p) not in tested:
                return p
        return None


def configs_from_params(params: Mapping[str, Any], **train: Any) -> tuple[Arch, TrainConfig]:
    """A trial's params -> the model shape and the TrainConfig that trains it (for retraining a trial).

    `train` sets the run's other fields (max_epochs, patience, seed, objective, device...). Accepts
    both this space's params and the flat-label studies' (`arch` label, `warmup_steps`).
    """
    from hpo_assets.model.params import Arch
    from hpo_assets.training.trainer import TrainConfig

    if "arch" in params and "d_model" not in params:
        arch = Arch.from_label(str(params["arch"]))
    else:
        d = int(params["d_model"])
        arch = Arch(d, int(params["n_layers"]), int(params["n_heads"]), int(params["d_ff_ratio"]) * d)
    hp: dict[str, Any] = {
        "lr": float(params["lr"]),
        "dropout": float(params["dropout"]),
        "weight_decay": float(params["weight_decay"]),
        "batch_size": int(params["batch_size"]),
    }
    if "warmup_frac" in params:
        hp["warmup_frac"] = float(params["warmup_frac"])
    elif "warmup_steps" in params:
        hp["warmup_steps"] = int(params["warmup_steps"])
    if "normalization" in params:
        hp["normalization"] = str(params["normalization"])
    return arch, TrainConfig(**{**hp, **train})
