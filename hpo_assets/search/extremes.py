"""Forced extremes: the corners of the architecture space, tried first so TPE learns the range.

Each extreme is an ordinary configuration of the space (enqueued with `study.enqueue_trial`), so it is
a real parameter set the sampler learns from, unlike the old workflow's invisible forced trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo_assets.search.space import TRAIN_PARAMS, SearchSpace

# Order in which extremes are enqueued; `n_forced` keeps the first n that exist.
EXTREME_ORDER: tuple[tuple[str, str], ...] = (
    ("min", "d_model"),
    ("max", "d_model"),
    ("min", "n_layers"),
    ("max", "n_layers"),
    ("min", "n_heads"),
    ("max", "n_heads"),
)


@dataclass(frozen=True)
class ForcedExtreme:
    extreme_type: str  # e.g. "min_d_model"
    params: dict[str, Any]


def forced_extremes(space: SearchSpace, n_forced: int = 6) -> list[ForcedExtreme]:
    """Up to `n_forced` distinct extremes, none equal to the middle configuration.

    For "min d_model": among the architectures with the smallest d_model, the one closest to the
    centre of the space in the other dimensions; training parameters at the middle of their lists.
    An extreme that would repeat the middle architecture or an earlier extreme falls to the next
    candidate at the same extreme value, and is dropped when none is left (e.g. a dimension with
    a single value has no extremes).
    """
    if n_forced <= 0:
        return []
    middle = space.middle()
    train = {k: middle[k] for k in TRAIN_PARAMS}
    used = {space.middle_arch()}
    out: list[ForcedExtreme] = []
    for kind, dim in EXTREME_ORDER:
        values = np.array([getattr(a, dim) for a in space.archs])
        if values.min() == values.max():  # one value only: this dimension has no extremes
            continue
        target = values.min() if kind == "min" else values.max()
        candidates = [i for i in np.flatnonzero(values == target).tolist() if i not in used]
        if not candidates:
            continue
        pick = space.middle_arch(exclude_dim=dim, among=candidates)
        used.add(pick)
        out.append(ForcedExtreme(f"{kind}_{dim}", {"arch": space.archs[pick].label, **train}))
        if len(out) == n_forced:
            break
    return out
