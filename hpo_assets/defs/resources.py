"""Resources: where assets write files and where Optuna studies are stored."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from hpo_assets import settings


class HpoPaths(dg.ConfigurableResource):
    """Locations shared by every asset; empty strings mean the project defaults (`outputs/`, `.hpo/`)."""

    outputs_dir: str = ""
    storage: str = (
        ""  # a folder for embedded journal files, or an Optuna storage URL (postgresql://, sqlite://)
    )

    def outputs(self, *parts: str) -> Path:
        root = settings.project_path(self.outputs_dir) if self.outputs_dir else settings.outputs_dir()
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def storage_spec(self) -> str:
        """The storage as configured: a URL, or an absolute folder path for journal files."""
        if self.storage and "://" in self.storage:
            return self.storage
        return str(settings.project_path(self.storage) if self.storage else settings.storage_dir())
