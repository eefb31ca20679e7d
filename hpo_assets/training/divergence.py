"""The one divergence rule, shared by the trainer (live) and the trial table (live and imported).

No torch here: `hpo_assets.trials` applies the same rule to imported studies.

A loss diverged when it is not finite or exceeds `DIVERGED_LOSS` = 10 x ln 2 ~ 6.93: ten times the
binary cross-entropy of always predicting 0.5. It is absolute (not "10 x the first value") so that an
imported curve-less trial, which has no first value, is judged by the same number as a live one.
The trainer applies it to each epoch's mean training loss and its validation loss, and stops a run
early at the first non-finite batch loss or gradient (the epoch's mean would be non-finite anyway).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

DIVERGED_LOSS = 10.0 * math.log(2.0)
LOSS_KEYS = ("train_loss", "val_loss")


def loss_breaks(value: float | None) -> bool:
    """True when a recorded loss is diverged; None (not measured) is not."""
    if value is None:
        return False
    return not math.isfinite(value) or value > DIVERGED_LOSS


def why_broken(name: str, value: float) -> str:
    if not math.isfinite(value):
        return f"{name}={value!r} (not finite)"
    return f"{name}={value:.4g} > {DIVERGED_LOSS:.3g} (10 x ln 2)"


def first_divergence(curve: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """(epoch, reason) of the first epoch record whose train_loss or val_loss breaks the rule, else None."""
    for i, rec in enumerate(curve):
        for key in LOSS_KEYS:
            value = rec.get(key)
            if value is not None and loss_breaks(float(value)):
                epoch = int(rec.get("epoch") or i + 1)
                return epoch, f"{why_broken(key, float(value))} at epoch {epoch}"
    return None
