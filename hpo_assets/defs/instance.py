"""The Dagster instance's dagster.yaml: the `gpu` pool sized to the GPUs found, optional PostgreSQL storage."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def instance_config(n_gpus: int, postgres_url: str | None = None) -> dict:
    """One step per GPU at a time in the `gpu` pool (one at a time on a CPU-only machine)."""
    config: dict = {
        "concurrency": {"pools": {"default_limit": max(1, n_gpus)}},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
        "telemetry": {"enabled": False},
    }
    if postgres_url:
        config["storage"] = {"postgres": {"postgres_url": postgres_url}}
    return config


def ensure_instance(home: str | os.PathLike[str], postgres_url: str | None = None) -> Path:
    """Write dagster.yaml into DAGSTER_HOME unless the user already has one (theirs is never overwritten)."""
    home_path = Path(home)
    home_path.mkdir(parents=True, exist_ok=True)
    target = home_path / "dagster.yaml"
    if not target.exists():
        target.write_text(yaml.safe_dump(instance_config(gpu_count(), postgres_url), sort_keys=False))
    return target
