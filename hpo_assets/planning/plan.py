"""The compute plan of a backfill: predicted hours of each budget x horizon study before it is launched.

Each partition's remaining trials (the study resumes to its target) x the epochs a trial trains (its
settings' maximum, shortened by the pruning and early stopping seen so far) x seconds per epoch (mean
over the budget's architectures, from FLOPs and a calibration; see cost.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hpo_assets.data.dataset import PreparedData
from hpo_assets.model.budgets import budget_space
from hpo_assets.model.params import Arch
from hpo_assets.planning import cost
from hpo_assets.planning.probe import probe_epoch
from hpo_assets.search.build import StudyRunner
from hpo_assets.search.partition import StudyPartition, parse_partition, study_budgets, study_horizons
from hpo_assets.search.space import load_training_choices
from hpo_assets.search.study_settings import StudySettings, study_settings
from hpo_assets.settings import model_shape


def budget_archs(budget: str, data: PreparedData) -> list[Arch]:
    """Every architecture of the budget's whole space for this data's shape."""
    shape = model_shape()
    entries = budget_space(
        budget,
        n_features=data.n_features,
        context=data.context,
        patch_len=shape.patch_len,
        stride=shape.stride,
    )
    return [e.arch for e in entries]


def plan_backfill(
    targets: Sequence[StudyPartition],
    settings: StudySettings,
    history: cost.StudyHistory,
    device: str,
    data_for: Callable[[StudyPartition], PreparedData],
    probe: Callable[[PreparedData, Arch], cost.Calibration] | None = None,
    archs_for: Callable[[StudyPartition, PreparedData], list[Arch]] | None = None,
    batch_sizes: Sequence[int] | None = None,
) -> cost.Plan:
    """Predicted compute of every target with these settings (n_trials, max_epochs).

    Calibrated by `history` (trials in storage on this device type), else by `probe` (measured epochs of
    the first target's median architecture). `data_for` gives each target's prepared data; `archs_for`
    its architectures (default: the budget's whole space).
    """
    shape = model_shape()
    archs_for = archs_for or (lambda t, d: budget_archs(t.budget, d))
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
            data, cost.median_arch(archs_for(first, data), cost.shape_of(data, shape.patch_len, shape.stride))
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
                cost.shape_of(data, shape.patch_len, shape.stride),
                settings.n_trials - history.counted.get(t.study_name, 0),
                settings.max_epochs,
                calibration,
                epochs,
                batch_sizes,
            )
        )
    return cost.Plan(estimates, calibration, epochs, device, notes)


@dataclass(frozen=True)
class StudyEstimate:
    """The compute one study run will take, predicted before it starts."""

    hours: float
    trials_to_run: int
    basis: str
    seconds_per_epoch: float


def estimate_study(runner: StudyRunner) -> StudyEstimate:
    """The plan of one built study: its own architectures and batch sizes, calibrated by its storage."""
    shape = model_shape()
    settings, space, device = runner.settings, runner.space, runner.device
    plan = plan_backfill(
        [runner.part],
        settings,
        cost.read_history(runner.storage),
        device,
        lambda _: runner.data,
        probe=lambda d, arch: probe_epoch(
            d, arch, device, shape.patch_len, shape.stride, settings.cpu_threads or None
        ),
        archs_for=lambda *_: [Arch(a.d_model, a.n_layers, a.n_heads, a.d_ff) for a in space.archs],
        batch_sizes=_batch_sizes(space),
    )
    (row,) = plan.partitions
    return StudyEstimate(
        row.hours,
        row.trials_remaining,
        f"{plan.calibration.basis}; {plan.epochs.basis}",
        row.seconds_per_epoch,
    )


def _batch_sizes(space: Any) -> list[int]:
    """The batch sizes trials draw from (a categorical choice); 64 when the space has no such list."""
    try:
        return [int(b) for b in space.values("batch_size")]
    except (AttributeError, KeyError, TypeError, ValueError):
        return [64]


def plan_targets(text: str) -> list[StudyPartition]:
    """`2M|h1,20M|h3`, `all`, or one dimension with a star (`2M|*`, `*|h1`) -> the partitions, checked."""
    budgets, horizons = study_budgets(), study_horizons()
    keys: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "all":
            part = "*|*"
        budget, sep, horizon = part.partition("|")
        if not sep:
            raise ValueError(f"partition {part!r} must read budget|horizon, e.g. '2M|h1' (or 'all')")
        for value, valid, what in ((budget, budgets, "budget"), (horizon, horizons, "horizon")):
            if value != "*" and value not in valid:
                raise ValueError(f"partition {part!r}: {what} {value!r} is not one of {valid}")
        keys += [f"{b}|{h}" for b in budgets if budget in ("*", b) for h in horizons if horizon in ("*", h)]
    if not keys:
        raise ValueError("no partitions given, e.g. '2M|h1,2M|h3' or 'all'")
    return [parse_partition(k) for k in dict.fromkeys(keys)]


@dataclass(frozen=True)
class BackfillPlan:
    """`hpo-assets plan`: the plan, and what it was made for."""

    plan: cost.Plan
    targets: list[StudyPartition]
    settings: StudySettings
    device: str
    storage: str


def plan_partitions(
    text: str,
    profile: str,
    storage: str,
    device: str,
    probe: bool = True,
    say: Callable[[str], Any] = print,
) -> BackfillPlan:
    """The plan of the partitions `text` names under `profile`, calibrated by `storage` (else a probe, if
    allowed), on the data the studies would train on (the features file, else the bundled market data)."""
    import optuna

    from hpo_assets.outputs import FEATURES_FILE
    from hpo_assets.search.build import prepared_for
    from hpo_assets.settings import outputs_dir

    targets = plan_targets(text)
    settings = study_settings(profile)  # an unknown profile fails here, naming the choices
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    history = cost.read_history(storage)
    features = outputs_dir().joinpath(*FEATURES_FILE)
    if features.is_file():
        from hpo_assets.data.dataset import load_features

        frame = load_features(features)
    else:
        from hpo_assets.data.features import build_features
        from hpo_assets.data.market import default_market_path, load_market

        frame = build_features(load_market(default_market_path()))

    def measure(data: PreparedData, arch: Arch) -> cost.Calibration:
        say(f"probing: one epoch of {arch.label} on {device} (no trials to calibrate by) ...")
        return probe_epoch(data, arch, device, num_threads=settings.cpu_threads or None)

    plan = plan_backfill(
        targets,
        settings,
        history,
        device,
        lambda t: prepared_for(frame, t.horizon_days, settings),
        measure if probe else None,
    )
    return BackfillPlan(plan, targets, settings, device, storage)
