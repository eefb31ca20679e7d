"""Learning-rate schedule shared by the trainer and the search space (no torch: the space needs it).

Warm-up is a fraction of the run's optimiser steps, so every searched value changes training; the
space uses `warmup_steps_for` to see when two fractions give the same number of steps (an effective
repeat) on a given training set.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def total_steps(n_train: int, batch_size: int, max_epochs: int) -> int:
    """Optimiser steps of a full run (the last batch of an epoch may be short)."""
    return math.ceil(n_train / batch_size) * max_epochs


def warmup_steps_for(warmup_frac: float, steps: int) -> int:
    """Warm-up steps for a fraction of `steps`: 0 for 0, else at least 1 and at most steps - 1."""
    if warmup_frac <= 0 or steps <= 1:
        return 0
    return min(max(1, math.ceil(warmup_frac * steps)), steps - 1)


def lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base lr at optimiser step `s`: linear warm-up, then cosine decay to 0."""
    warmup = min(warmup_steps, max(total_steps - 1, 0))

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f
