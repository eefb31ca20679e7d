"""What a study costs before it runs: compute-hours from FLOPs per epoch, calibrated by measured time.

A trial's epoch costs FLOPs fixed by its architecture (exact parameter shapes) and the window shape
(patches per sample) times the samples it sees. Seconds per FLOP are machine-specific, so they are
calibrated: by trials already in storage (each records its architecture, epochs trained and duration,
its study the data shape) with a least-squares fit `seconds/epoch = overhead + FLOPs/throughput`, or,
with no history on this device, by a short measured probe (see probe.py). The epochs a trial
really trains (pruning, early stopping) come from the stored trials too; without any, every trial is
assumed to run all its epochs (an upper bound, said so in the estimate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import nnls

from hpo_assets.model.params import Arch, n_patches

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Shape:
    """The data a trial trains on: inputs per time step, window and patching, samples per split."""

    n_features: int
    context: int
    patch_len: int
    stride: int
    n_train: int
    n_val: int


def forward_flops(arch: Arch, shape: Shape) -> float:
    """FLOPs of one sample's forward pass: 2 per multiply-add of every matmul, attention scores included."""
    t = n_patches(shape.context, shape.patch_len, shape.stride)
    d, layers = arch.d_model, arch.n_layers
    per_token = shape.patch_len * shape.n_features * d + layers * (4 * d * d + 2 * d * arch.d_ff)
    attention = layers * 2 * t * t * d  # Q.K^T and A.V, each t*t*d multiply-adds
    head = t * d
    return 2.0 * (per_token * t + attention + head)


def epoch_flops(arch: Arch, shape: Shape) -> float:
    """One epoch: forward + backward (3x forward) on the training samples, a forward pass on validation."""
    f = forward_flops(arch, shape)
    return 3.0 * f * shape.n_train + f * shape.n_val


@dataclass(frozen=True)
class Observation:
    """One finished trial as the cost model sees it."""

    arch: Arch
    shape: Shape
    epochs_trained: int
    epochs_config: int | None
    duration_sec: float
    device: str
    pruned: bool
    batch_size: int = 64

    @property
    def seconds_per_epoch(self) -> float:
        return self.duration_sec / self.epochs_trained


def layer_steps(arch: Arch, shape: Shape, batch_size: int) -> float:
    """Layer passes per epoch (training batches x layers): what per-kernel launch overhead scales with."""
    return arch.n_layers * math.ceil(shape.n_train / batch_size)


@dataclass(frozen=True)
class Calibration:
    """seconds/epoch = overhead_s + FLOPs / flops_per_s + layer_steps x s_per_layer_step, on one device type."""

    overhead_s: float
    flops_per_s: float
    basis: str
    n_trials: int = 0
    s_per_layer_step: float = 0.0

    def seconds_per_epoch(self, arch: Arch, shape: Shape, batch_size: float = 64) -> float:
        steps = arch.n_layers * math.ceil(shape.n_train / batch_size)
        return self.overhead_s + epoch_flops(arch, shape) / self.flops_per_s + steps * self.s_per_layer_step


def device_type(device: str | None) -> str:
    return (device or "cpu").split(":")[0]


def calibrate(observations: Sequence[Observation], device: str) -> Calibration | None:
    """Fit overhead and throughput by non-negative least squares on the trials run on `device`'s type.

    None when no trial of that device type has a duration: the caller probes instead.
    """
    kind = device_type(device)
    usable = [
        o
        for o in observations
        if device_type(o.device) == kind and o.epochs_trained > 0 and o.duration_sec > 0
    ]
    if not usable:
        return None
    x = np.array([epoch_flops(o.arch, o.shape) for o in usable])
    z = np.array([layer_steps(o.arch, o.shape, o.batch_size) for o in usable])
    y = np.array([o.seconds_per_epoch for o in usable])
    a = c = 0.0
    b = float(y.sum() / x.sum())  # too few trials to separate terms: all time scales with FLOPs
    if len(usable) >= 4 and np.ptp(x) > 0.05 * x.mean():
        # Scaled columns so the solver sees numbers of one size; non-negative: no term saves time.
        cols = np.column_stack([np.ones_like(x), x / x.mean(), z / max(z.mean(), 1.0)])
        coef, _ = nnls(cols, y)
        if coef[1] > 0:  # otherwise keep the ratio: bigger models must cost more
            a, b, c = float(coef[0]), float(coef[1] / x.mean()), float(coef[2] / max(z.mean(), 1.0))
    basis = f"{len(usable)} trials in storage on {kind}"
    return Calibration(a, 1.0 / b, basis, len(usable), c)


@dataclass(frozen=True)
class EpochFraction:
    """The share of `max_epochs` a trial really trains, and the pruning rate, as seen so far."""

    fraction: float
    pruning_rate: float | None
    n_trials: int

    @property
    def basis(self) -> str:
        if not self.n_trials:
            return "no finished trials yet: every trial assumed to train all its epochs (upper bound)"
        return (
            f"{self.n_trials} finished trials trained {self.fraction:.0%} of their epochs"
            f" (pruned {self.pruning_rate:.0%})"
        )


def epoch_fraction(observations: Iterable[Observation]) -> EpochFraction:
    done = [o for o in observations if o.epochs_config and o.epochs_trained > 0]
    if not done:
        return EpochFraction(1.0, None, 0)
    fraction = float(np.mean([min(1.0, o.epochs_trained / (o.epochs_config or 1)) for o in done]))
    return EpochFraction(fraction, float(np.mean([o.pruned for o in done])), len(done))


@dataclass
class PartitionEstimate:
    """Predicted compute of one partition's remaining trials."""

    partition: str
    trials_remaining: int
    max_epochs: int
    epochs_per_trial: float
    seconds_per_epoch: float  # mean over the budget's architectures and batch sizes
    n_architectures: int

    @property
    def hours(self) -> float:
        return self.trials_remaining * self.epochs_per_trial * self.seconds_per_epoch / 3600.0


@dataclass
class Plan:
    partitions: list[PartitionEstimate]
    calibration: Calibration
    epochs: EpochFraction
    device: str
    notes: list[str] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return sum(p.hours for p in self.partitions)

    def rows(self) -> list[dict]:
        return [
            {
                "partition": p.partition,
                "architectures": p.n_architectures,
                "trials_left": p.trials_remaining,
                "epochs_per_trial": round(p.epochs_per_trial, 2),
                "sec_per_epoch": round(p.seconds_per_epoch, 3),
                "hours": round(p.hours, 4),
            }
            for p in self.partitions
        ]


def estimate_partition(
    partition: str,
    archs: Sequence[Arch],
    shape: Shape,
    trials_remaining: int,
    max_epochs: int,
    calibration: Calibration,
    epochs: EpochFraction,
    batch_sizes: Sequence[int] = (64,),
) -> PartitionEstimate:
    """Trials are spread over the budget's architectures and batch sizes (forced extremes, then TPE): mean cost."""
    if not archs:
        raise ValueError(f"{partition}: the budget's space holds no architecture")
    per_epoch = float(
        np.mean([calibration.seconds_per_epoch(a, shape, b) for a in archs for b in batch_sizes])
    )
    return PartitionEstimate(
        partition,
        max(0, trials_remaining),
        max_epochs,
        epochs.fraction * max_epochs,
        per_epoch,
        len(archs),
    )


def observations_from_study(study: optuna.Study) -> list[Observation]:
    """Finished trials of an Optuna study that carry what the cost model needs (others are skipped)."""
    from optuna.trial import TrialState

    attrs = study.user_attrs
    try:
        shape = Shape(
            int(attrs["n_features"]),
            int(attrs["context"]),
            int(attrs["patch_len"]),
            int(attrs["stride"]),
            int(attrs["n_train"]),
            int(attrs["n_val"]),
        )
    except (KeyError, TypeError, ValueError):
        return []
    out = []
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=finished):
        u = t.user_attrs
        curve = u.get("learning_curve") or []
        epochs = u.get("epochs_trained") or len(curve)
        if not epochs or not u.get("duration_sec") or u.get("skipped_duplicate"):
            continue
        try:
            arch = Arch(int(u["d_model"]), int(u["n_layers"]), int(u["n_heads"]), int(u["d_ff"]))
        except (KeyError, TypeError, ValueError):
            continue
        out.append(
            Observation(
                arch,
                shape,
                int(epochs),
                u.get("epochs_config"),
                float(u["duration_sec"]),
                str(u.get("device") or "cpu"),
                t.state == TrialState.PRUNED,
                int(u.get("batch_size") or 64),
            )
        )
    return out


@dataclass(frozen=True)
class StudyHistory:
    """What storage says about the studies: cost observations and trials already counted per study."""

    observations: list[Observation]
    counted: dict[str, int]


def read_history(storage_spec: str) -> StudyHistory:
    """Every study in the storage (journal folder or URL); a storage with no studies is an empty history."""
    import optuna

    from hpo_assets.search.runner import counts_toward_target
    from hpo_assets.search.storage import list_studies, open_storage

    observations: list[Observation] = []
    counted: dict[str, int] = {}
    for name in list_studies(storage_spec):
        study = optuna.load_study(study_name=name, storage=open_storage(storage_spec, name))
        observations += observations_from_study(study)
        counted[name] = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return StudyHistory(observations, counted)


def median_arch(archs: Sequence[Arch], shape: Shape) -> Arch:
    """The architecture of median FLOPs: what a probe trains, typical of the budget."""
    ranked = sorted(archs, key=lambda a: epoch_flops(a, shape))
    return ranked[(len(ranked) - 1) // 2]


def shape_of(data: Any, patch_len: int, stride: int) -> Shape:
    """The Shape of prepared data (hpo_assets.data.dataset.PreparedData)."""
    return Shape(data.n_features, data.context, patch_len, stride, len(data.split.train), len(data.split.val))
