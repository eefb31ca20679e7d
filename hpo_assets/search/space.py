"""The finite search space of one study: the budget's valid architectures x training-parameter choices.

Every parameter is categorical, so a configuration is an exact tuple and "already tried" is an exact
test. Geometry (for the middle configuration, the extremes and steering away from repeats) uses log2
of the architecture dimensions and the index of each training choice, each scaled to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from optuna.distributions import CategoricalDistribution

SPACE_FILE = Path(__file__).with_name("space.yaml")
TRAIN_PARAMS: tuple[str, ...] = ("lr", "dropout", "weight_decay", "warmup_steps", "batch_size")
PARAM_NAMES: tuple[str, ...] = ("arch", *TRAIN_PARAMS)
ARCH_DIMS: tuple[str, ...] = ("d_model", "n_layers", "n_heads", "d_ff")
# Enumerate the whole grid when steering only up to this many configurations (memory bound).
MAX_ENUMERATED = 2_000_000

Config = tuple[Any, ...]  # values in PARAM_NAMES order


class SearchSpaceError(ValueError):
    """A search space that cannot be searched (empty, repeated or non-numeric choices)."""


@dataclass(frozen=True)
class ArchChoice:
    """One valid architecture of a budget, with its exact parameter count."""

    label: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    param_count: int

    def dims(self) -> dict[str, int]:
        return {d: getattr(self, d) for d in ARCH_DIMS}


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


def load_training_choices(path: str | Path | None = None) -> dict[str, list[Any]]:
    """Training-parameter choice lists from `space.yaml` (or another file of the same shape)."""
    path = Path(path) if path else SPACE_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SearchSpaceError(f"search space file {str(path)!r} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise SearchSpaceError(f"search space file {str(path)!r} must map parameter names to lists")
    return raw


def _unit(values: np.ndarray) -> np.ndarray:
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (values - lo) / span, 0.5)


@dataclass(frozen=True)
class SearchSpace:
    """Architectures x training choices; the Optuna distributions and the geometry used to steer."""

    archs: tuple[ArchChoice, ...]
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, archs: Sequence[ArchChoice], choices: Mapping[str, Sequence[Any]]) -> SearchSpace:
        """A validated space; `choices` must hold exactly the training parameters, each a list of numbers."""
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
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise SearchSpaceError(f"training choice {name!r} has a non-numeric value {v!r}")
            if len(set(values)) != len(values):
                raise SearchSpaceError(f"training choice {name!r} repeats a value: {list(values)}")
            clean[name] = tuple(values)
        return cls(tuple(archs), clean)

    # --- Optuna view -------------------------------------------------------------------------
    def distributions(self) -> dict[str, CategoricalDistribution]:
        dists = {"arch": CategoricalDistribution([a.label for a in self.archs])}
        dists.update({k: CategoricalDistribution(list(v)) for k, v in self.choices.items()})
        return dists

    def values(self, name: str) -> tuple[Any, ...]:
        return tuple(a.label for a in self.archs) if name == "arch" else self.choices[name]

    @property
    def size(self) -> int:
        return len(self.archs) * math.prod(len(v) for v in self.choices.values())

    def arch(self, label: str) -> ArchChoice:
        try:
            return self._arch_by_label[label]
        except KeyError:
            raise SearchSpaceError(f"architecture {label!r} is not in this search space") from None

    @cached_property
    def _arch_by_label(self) -> dict[str, ArchChoice]:
        return {a.label: a for a in self.archs}

    def key(self, params: Mapping[str, Any]) -> Config | None:
        """The configuration tuple of a trial's params; None when a parameter is missing."""
        if any(name not in params for name in PARAM_NAMES):
            return None
        return tuple(params[name] for name in PARAM_NAMES)

    def params(self, config: Config) -> dict[str, Any]:
        return dict(zip(PARAM_NAMES, config, strict=True))

    # --- geometry ------------------------------------------------------------------------------
    @cached_property
    def arch_coords(self) -> np.ndarray:
        """(n_arch, 4) log2 of d_model, n_layers, n_heads, d_ff scaled to [0, 1]."""
        raw = np.array([[math.log2(getattr(a, d)) for d in ARCH_DIMS] for a in self.archs], dtype=float)
        return _unit(raw)

    def middle_arch(self, exclude_dim: str | None = None, among: Sequence[int] | None = None) -> int:
        """Index of the architecture closest to the centre of the space (optionally ignoring one dim).

        Ties go to the earlier entry, so the choice is deterministic.
        """
        cols = [i for i, d in enumerate(ARCH_DIMS) if d != exclude_dim]
        idx = np.arange(len(self.archs)) if among is None else np.asarray(among)
        dist = ((self.arch_coords[np.ix_(idx, cols)] - 0.5) ** 2).sum(axis=1)  # type: ignore[arg-type]
        return int(idx[int(np.argmin(dist))])

    def middle_choice(self, name: str) -> Any:
        values = self.choices[name]
        return values[(len(values) - 1) // 2]

    def middle(self) -> dict[str, Any]:
        """The middle configuration: the most central architecture, middle entry of each training list."""
        out: dict[str, Any] = {"arch": self.archs[self.middle_arch()].label}
        out.update({k: self.middle_choice(k) for k in TRAIN_PARAMS})
        return out

    def _index_vector(self, config: Config) -> list[int] | None:
        """Index of each value in its choice list; None when a value is not in this space."""
        try:
            idx = [self.values("arch").index(config[0])]
            idx += [self.choices[k].index(v) for k, v in zip(TRAIN_PARAMS, config[1:], strict=True)]
        except ValueError:
            return None
        return idx

    def contains(self, config: Config) -> bool:
        return self._index_vector(config) is not None

    def nearest_untested(
        self, config: Config, tested: set[Config], rng: np.random.Generator
    ) -> Config | None:
        """The untested configuration nearest to `config` (ties broken by `rng`); None if none is left.

        Distance: Euclidean over the scaled architecture coordinates and the scaled index of each
        training choice, so a repeat moves to a close neighbour, not to a random corner.
        """
        tested_idx = [v for v in (self._index_vector(c) for c in tested) if v is not None]
        here = self._index_vector(config)
        if len(set(map(tuple, tested_idx))) >= self.size:
            return None
        if self.size > MAX_ENUMERATED:
            raise SearchSpaceError(f"search space of {self.size} configurations is too large to steer in")
        sizes = [len(self.archs), *(len(self.choices[k]) for k in TRAIN_PARAMS)]
        grid = np.indices(sizes).reshape(len(sizes), -1).T  # (size, 6) index tuples
        # Position of each configuration in [0, 1]^(4 + 5).
        train_pos = [
            grid[:, j + 1] / (n - 1) if n > 1 else np.full(len(grid), 0.5) for j, n in enumerate(sizes[1:])
        ]
        pos = np.column_stack([self.arch_coords[grid[:, 0]], *train_pos])
        if here is None:  # not a point of this space: steer from the centre
            here_pos = np.full(pos.shape[1], 0.5)
        else:
            here_pos = np.concatenate(
                [
                    self.arch_coords[here[0]],
                    [i / (n - 1) if n > 1 else 0.5 for i, n in zip(here[1:], sizes[1:], strict=True)],
                ]
            )
        flat = np.ravel_multi_index(grid.T, sizes)
        tested_flat = [np.ravel_multi_index(v, sizes) for v in tested_idx]
        free = ~np.isin(flat, tested_flat)
        dist = ((pos - here_pos) ** 2).sum(axis=1)
        dist[~free] = np.inf
        best = dist.min()
        candidates = np.flatnonzero(np.isclose(dist, best, rtol=0, atol=1e-12))
        pick = grid[int(rng.choice(candidates))]
        return (
            self.archs[pick[0]].label,
            *(self.choices[k][i] for k, i in zip(TRAIN_PARAMS, pick[1:], strict=True)),
        )
