"""The arrows run one way: the library never imports Dagster, and the trial analysis never imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hpo_assets import settings

LIBRARY = ["data", "model", "training", "search", "trials", "calibration", "baselines", "analysis"]
NO_TORCH = ["trials", "calibration", "baselines", "analysis"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("hpo_assets.defs") or node.module == "hpo_assets.cli":
                names.add("hpo_assets.defs")
    return names


def _modules(package: str) -> list[Path]:
    return sorted((settings.PACKAGE_DIR / package).rglob("*.py"))


@pytest.mark.parametrize("package", LIBRARY)
def test_library_never_imports_dagster_or_the_dagster_layer(package: str) -> None:
    files = _modules(package)
    assert files, f"hpo_assets/{package} has no modules"
    offenders = [str(f) for f in files if {"dagster", "hpo_assets.defs"} & _imports(f)]
    assert offenders == []


@pytest.mark.parametrize("package", NO_TORCH)
def test_trial_analysis_never_imports_torch(package: str) -> None:
    offenders = [str(f) for f in _modules(package) if "torch" in _imports(f)]
    assert offenders == []
