"""Shared fixtures: paths to the bundled data and the real exports, and an isolated outputs/storage area."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo_assets import settings

EXPORTS_DIR = settings.DATA_DIR / "examples" / "phase6c_a50"
SP500 = settings.DATA_DIR / "sp500_daily.csv.gz"


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point outputs and study storage at a temporary folder so tests never touch the user's."""
    monkeypatch.setenv("HPO_ASSETS_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("HPO_ASSETS_STORAGE", str(tmp_path / "hpo"))
    return tmp_path
