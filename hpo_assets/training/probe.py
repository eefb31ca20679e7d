"""A short measured probe for a cost estimate on a device with no trial history: real epochs.

Trains one architecture for two epochs with the project's trainer and times the second on the real prepared data (batching,
validation metrics and the final evaluation included, so the probe sees the same overheads a trial
has), and turns its wall time into FLOP/s with the FLOP count the estimate uses.
"""

from __future__ import annotations

import time

from hpo_assets.data.dataset import PreparedData
from hpo_assets.model.params import Arch
from hpo_assets.search.cost import Calibration, epoch_flops, shape_of
from hpo_assets.training.trainer import TrainConfig, train_prepared


def probe_epoch(
    data: PreparedData,
    arch: Arch,
    device: str = "cpu",
    patch_len: int = 16,
    stride: int = 8,
    num_threads: int | None = None,
    batch_size: int = 64,
) -> Calibration:
    """Measured FLOP/s of one training epoch of `arch` (overhead folded in: a probe cannot separate it)."""
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
    return Calibration(
        0.0, flops / seconds, f"probe: the 2nd epoch of {arch.label} on {device.split(':')[0]}"
    )
