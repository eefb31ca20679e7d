"""Resources: where assets write files (a folder or an object-store URL), where Optuna studies are stored, GPU leases."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from hpo_assets import settings
from hpo_assets.locations import as_path, is_local
from hpo_assets.training import leases


class HpoPaths(dg.ConfigurableResource):
    """Locations shared by every asset; empty strings mean the project defaults (`outputs/`, `.hpo/`)."""

    outputs_dir: str = Field(
        default="",
        description="Folder or object-store URL (s3://bucket/prefix, gs://..., any fsspec protocol) for asset "
        'files; "" = HPO_ASSETS_OUTPUTS or `outputs/`. Under the k8s executor use a URL every pod can reach.',
    )
    storage: str = Field(
        default="",
        description="A folder for embedded journal files, or an Optuna storage URL (postgresql://, sqlite://); "
        '"" = HPO_ASSETS_STORAGE or `.hpo/`.',
    )

    def outputs(self, *parts: str) -> Any:
        """A file or folder under the outputs root: a local `Path` (parent folders made) or a `UPath`."""
        root = (
            as_path(self.outputs_dir, settings.PROJECT_ROOT) if self.outputs_dir else settings.outputs_dir()
        )
        path = root.joinpath(*parts)
        if is_local(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def storage_spec(self) -> str:
        """The storage as configured: a URL, or an absolute folder path for journal files."""
        return settings.storage_spec(self.storage)


class GpuLeases(dg.ConfigurableResource):
    """A share of one GPU per training step: file-lock slots under the instance folder, exported as
    CUDA_VISIBLE_DEVICES.

    The `gpu` pool bounds how many steps train at once (GPUs x slots); the lease decides which device
    each one gets and how much of it: a budget's `trials_per_gpu` (budgets.yaml) trials share a device,
    a step naming no budget gets a whole one. A step with no GPU to lease trains on "cpu".
    """

    lease_dir: str = Field(
        default="",
        description='Folder of the lease files; "" = $DAGSTER_HOME/gpu_leases (one per machine).',
    )
    devices: str = Field(
        default="auto",
        description='GPU ids to hand out, e.g. "0,1"; "auto" = CUDA_VISIBLE_DEVICES or nvidia-smi; "" = none.',
    )
    wait_timeout_s: float = Field(
        default=0.0, description="Give up waiting for a free GPU after this many seconds; 0 = wait."
    )
    slots_per_gpu: int = Field(
        default=0,
        description="Lease slots per GPU; 0 = the largest trials_per_gpu in budgets.yaml. Every step of a "
        "machine must use the same value.",
    )

    _lease: Any = PrivateAttr(default=None)
    _saved_env: Any = PrivateAttr(default=None)

    def folder(self) -> Path:
        if self.lease_dir:
            return Path(self.lease_dir)
        home = os.environ.get("DAGSTER_HOME")
        return Path(home) / "gpu_leases" if home else Path(tempfile.gettempdir()) / "hpo-assets-gpu-leases"

    def device_ids(self) -> list[str]:
        if self.devices.strip().lower() == "auto":
            return leases.visible_devices()
        return [part.strip() for part in self.devices.split(",") if part.strip()]

    def slots(self) -> int:
        from hpo_assets.model.budgets import gpu_slots

        return self.slots_per_gpu if self.slots_per_gpu > 0 else gpu_slots()

    def device_for(
        self, requested: str, holder: dict | None = None, log: Any = None, budget: str | None = None
    ) -> str:
        """The device a step trains on: an explicit "cpu"/"cuda:N" as asked; otherwise a leased GPU or "cpu".

        `budget` (the one the step trains) sets how many such steps may share the GPU; when None, the
        budget of the holder's "partition" ("2M|h1") is used, and a step of no one budget gets a whole GPU.
        """
        from hpo_assets.model.budgets import trials_per_gpu

        if requested.strip().lower() not in ("", "auto", "cuda"):
            return requested
        if budget is None:
            budget = _partition_budget((holder or {}).get("partition"))
        if self._lease is None:
            self._lease = leases.acquire(
                self.folder(),
                self.device_ids(),
                holder={**(holder or {}), **({"budget": budget} if budget else {})},
                timeout_s=self.wait_timeout_s or None,
                on_wait=log,
                share=trials_per_gpu(budget),
                slots=self.slots(),
            )
            self._saved_env = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = self._lease.cuda_visible_devices
        return self._lease.device

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A GPU step records its run's worker process, so a killed run's pool place can be freed."""
        from hpo_assets.defs.dead_runs import lease_run_worker

        if context.instance is not None and context.run is not None:
            lease_run_worker(context.instance, context.run.run_id)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
            if self._saved_env is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = self._saved_env


def _partition_budget(partition: Any) -> str | None:
    """The budget of a "budget|horizon" partition key; None for anything else (e.g. a horizon alone)."""
    from hpo_assets.search.partition import parse_partition

    if not partition:
        return None
    try:
        return parse_partition(partition).budget
    except ValueError:
        return None
