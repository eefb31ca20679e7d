"""The compute plan of a backfill: predicted hours of each budget x horizon study before it is launched.

Each partition's remaining trials (the study resumes to its target) x the epochs a trial trains (its
profile's maximum, shortened by the pruning and early stopping seen so far) x seconds per epoch
(mean over the budget's architectures, from FLOPs and a calibration; see cost.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from hpo_assets import settings as project_settings
from hpo_assets.data.dataset import PreparedData, prepare_dataset
from hpo_assets.model.budgets import budget_space
from hpo_assets.model.params import Arch
from hpo_assets.search import cost
from hpo_assets.search.space import load_training_choices


@dataclass(frozen=True)
class Target:
    """One partition to plan: budget label, horizon label (h1) and its days."""

    budget: str
    horizon: str

    @property
    def days(self) -> int:
        return int(self.horizon[1:])

    @property
    def key(self) -> str:
        return f"{self.budget}|{self.horizon}"

    @property
    def study_name(self) -> str:
        return f"hpo-{self.budget}-{self.horizon}"


def study_values(profile: str | None) -> dict[str, Any]:
    """The `study:` settings of a profile (None / "" = the defaults)."""
    return project_settings.settings(profile or None)["study"]


def prepared_for(frame: pl.DataFrame, horizon_days: int, study: dict[str, Any]) -> PreparedData:
    """The exact data a study of this profile trains on (same window and split cuts as hpo_study)."""
    split = {k: study[k] for k in ("val_start", "test_start") if study.get(k)}
    return prepare_dataset(
        frame, horizon_days, start=study.get("start") or None, end=study.get("end") or None, **split
    )


def budget_archs(budget: str, data: PreparedData, patch_len: int, stride: int) -> list[Arch]:
    entries = budget_space(
        budget, n_features=data.n_features, context=data.context, patch_len=patch_len, stride=stride
    )
    return [e.arch for e in entries]


def plan_backfill(
    targets: Sequence[Target],
    study: dict[str, Any],
    history: cost.StudyHistory,
    device: str,
    data_for: Callable[[Target], PreparedData],
    probe: Callable[[PreparedData, Arch], cost.Calibration] | None = None,
    archs_for: Callable[[Target, PreparedData], list[Arch]] | None = None,
    batch_sizes: Sequence[int] | None = None,
) -> cost.Plan:
    """Predicted compute of every target with the `study` settings (n_trials, max_epochs).

    Calibrated by `history` (trials in storage on this device type), else by `probe` (measured epochs of
    the first target's median architecture). `data_for` gives each target's prepared data; `archs_for`
    its architectures (default: the budget's whole space).
    """
    model = project_settings.settings()["model"]
    patch_len, stride = int(model["patch_len"]), int(model["stride"])
    archs_for = archs_for or (lambda t, d: budget_archs(t.budget, d, patch_len, stride))
    if batch_sizes is None:
        batch_sizes = [int(b) for b in load_training_choices(None)["batch_size"]]
    prepared = {t.key: data_for(t) for t in targets}
    calibration = cost.calibrate(history.observations, device)
    notes = []
    if calibration is None:
        if probe is None:
            raise ValueError(
                f"no trials on {cost.device_type(device)} in storage and no probe allowed: nothing to calibrate by"
            )
        first = targets[0]
        data = prepared[first.key]
        calibration = probe(
            data, cost.median_arch(archs_for(first, data), cost.shape_of(data, patch_len, stride))
        )
        notes.append("no trials on this device type in storage: calibrated by a measured probe")
    epochs = cost.epoch_fraction(history.observations)
    estimates = []
    for t in targets:
        data = prepared[t.key]
        estimates.append(
            cost.estimate_partition(
                t.key,
                archs_for(t, data),
                cost.shape_of(data, patch_len, stride),
                int(study["n_trials"]) - history.counted.get(t.study_name, 0),
                int(study["max_epochs"]),
                calibration,
                epochs,
                batch_sizes,
            )
        )
    return cost.Plan(estimates, calibration, epochs, device, notes)
