"""Forced extremes: six distinct trials at the corners of the space, tried first so TPE learns the range.

Narrowest and widest (d_model), shallowest and deepest (n_layers), lowest and highest learning rate;
every other value at the middle of its range. Each is an ordinary configuration of the space
(enqueued with `study.enqueue_trial`), so TPE learns from it, unlike the old workflow's invisible
forced trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo_assets.search.space import TRAIN_PARAMS, SearchSpace

# Order in which extremes are enqueued; `n_forced` keeps the first n.
EXTREME_ORDER: tuple[tuple[str, str], ...] = (
    ("min", "d_model"),
    ("max", "d_model"),
    ("min", "n_layers"),
    ("max", "n_layers"),
    ("min", "lr"),
    ("max", "lr"),
)


@dataclass(frozen=True)
class ForcedExtreme:
    extreme_type: str  # e.g. "min_d_model"
    params: dict[str, Any]


def forced_extremes(space: SearchSpace, n_forced: int = 6) -> list[ForcedExtreme]:
    """Up to `n_forced` distinct extremes, each at the bound it names when the space allows it.

    Architecture corners: among the valid architectures with the smallest (largest) d_model or
    n_layers, the one closest to the centre in the other dimensions; training values at the middle.
    Learning-rate corners: the middle architecture and training values, lr at its first/last entry.
    When a corner coincides with an earlier extreme (e.g. the narrowest shape is also the
    shallowest), the next candidate at the same bound is taken, then the next value inward, so the
    six are always distinct configurations. A dimension with one value has no extremes.
    """
    if n_forced <= 0:
        return []
    middle = space.middle()
    train_mid = {k: space.middle_choice(k) for k in TRAIN_PARAMS}
    used_keys = {space.effective_key(middle)}
    out: list[ForcedExtreme] = []

    def take(kind: str, name: str, params: dict[str, Any]) -> bool:
        key = space.effective_key(params)
        if key in used_keys:
            return False
        used_keys.add(key)
        out.append(ForcedExtreme(f"{kind}_{name}", params))
        return True

    for kind, name in EXTREME_ORDER:
        if len(out) == n_forced:
            break
        if name == "lr":
            lrs = list(space.choices["lr"])
            if len(lrs) < 2:
                continue
            order = lrs if kind == "min" else lrs[::-1]
            base = space.archs[space.middle_arch()]
            for lr in order[: len(order) // 2 or 1]:
                if take(kind, name, space.params(base, {**train_mid, "lr": lr})):
                    break
            continue
        values = np.array([getattr(a, name) for a in space.archs])
        levels = sorted(set(values.tolist()), reverse=kind == "max")
        if len(levels) < 2:
            continue
        for level in levels[: max(1, len(levels) // 2)]:
            remaining = np.flatnonzero(values == level).tolist()
            done = False
            while remaining:
                pick = space.middle_arch(exclude_dim=name, among=remaining)
                remaining.remove(pick)
                if take(kind, name, space.params(space.archs[pick], train_mid)):
                    done = True
                    break
            if done:
                break
    return out
