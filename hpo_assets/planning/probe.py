"""A short measured probe for a cost estimate on a device with no trial history: real epochs.

Trains one architecture for one epoch with the project's trainer on the real prepared data and times the
whole call (model build, batching, validation metrics and the final evaluation included, so the probe
sees the same overheads a trial has), and turns its wall time into FLOP/s with the FLOP count the
estimate uses.
"""

from __future__ import annotations

import time

from hpo_assets.data.dataset import PreparedData
from hpo_assets.model.params import Arch
from hpo_assets.planning.cost import Calibration, epoch_flops, shape_of
from hpo_assets.settings import model_shape
from hpo_assets.training.trainer import TrainConfig, train_prepared


def probe_epoch(
    data: PreparedData,
    arch: Arch,
    device: str = "cpu",
    patch_len: int | None = None,
    stride: int | None = None,
    num_threads: int | None = None,
    batch_size: int = 64,
) -> Calibration:
    """Measured FLOP/s of one training epoch of `arch` (overhead folded in: a probe cannot separate it).

    `patch_len` / `stride` default to the `model:` shape."""
    patch_len = model_shape().patch_len if patch_len is None else patch_len
    stride = model_shape().stride if stride is None else stride
    cfg = TrainConfig(
        max_epochs=1,
        patience=1,
        batch_size=batch_size,
        warmup_steps=0,
        device=device,
        num_threads=num_threads,
    )
    started = time.perf_counter()
    train_prepared(data, arch, cfg, patch_len=patch_len, stride=stride)
    seconds = time.perf_counter() - started
    flops = epoch_flops(arch, shape_of(data, patch_len, stride))
    return Calibration(0.0, flops / seconds, f"probe: one epoch of {arch.label} on {device.split(':')[0]}")
