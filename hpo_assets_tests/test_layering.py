"""The arrows run one way: every import (function-level ones included) points down the layers below, the
library never imports Dagster, the trial analysis never imports torch, and no modules import each other
round in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hpo_assets import settings

LIBRARY = [
    "data",
    "model",
    "training",
    "search",
    "planning",
    "trials",
    "calibration",
    "baselines",
    "analysis",
]
NO_TORCH = ["trials", "calibration", "baselines", "analysis"]

# Bottom to top. A module may import its own layer and the layers below it, never one above.
LAYERS: list[set[str]] = [
    {"settings", "objectives", "locations", "outputs"},  # the project's foundation: files, names, settings
    {"stats"},  # the shared block bootstrap
    {"data"},
    {"model"},
    {"calibration"},
    {"baselines"},
    {"training"},
    {"search"},
    {"planning"},  # what a backfill will cost: reads the trainer (probe) and the search (spaces, storage)
    {"trials"},
    {"analysis"},
    {"simulation"},  # known-truth simulations of the rules: they import what they check
    {"defs"},  # the Dagster layer: assets, resources, jobs, sensors
    {"definitions"},  # the code location
    {"local_runs"},  # the code location's jobs run in this process, pool waits, recover
    {"demo"},
    {"cli", "ui_process"},  # front doors: the console script; `make ui`'s process behind its pid file
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
# Arrows back up that exist in files of work still under way, each with its fix; the test fails when
# one more appears or when one listed here is gone (then strike it).
PENDING: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(settings.PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every module name `path` imports, anywhere in it (`from a import b` gives a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imports(path: Path) -> set[str]:
    """Top-level packages imported, plus "hpo_assets.defs" for the Dagster layer of this project."""
    names = {name.split(".")[0] for name in _imported(path)}
    if any(n.startswith("hpo_assets.defs") or n == "hpo_assets.cli" for n in _imported(path)):
        names.add("hpo_assets.defs")
    return names


def _unit(module: str) -> str | None:
    """The layer unit of a module of this package: its sub-package or its root module name."""
    parts = module.split(".")
    return parts[1] if parts[0] == "hpo_assets" and len(parts) > 1 else None


def _modules(package: str) -> list[Path]:
    return sorted((settings.PACKAGE_DIR / package).rglob("*.py"))


def _all_modules() -> list[Path]:
    return sorted(settings.PACKAGE_DIR.rglob("*.py"))


def back_arrows(root: Path = settings.PACKAGE_DIR) -> set[tuple[str, str]]:
    """(file, unit it imports) for every import pointing up the layers."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        unit = _unit(".".join(rel.with_suffix("").parts))
        if unit is None or unit == "__init__":
            continue
        for name in _imported(path):
            target = _unit(name)
            if target in RANK and target != unit and RANK[target] > RANK[unit]:
                found.add((str(rel), target))
    return found


def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {_unit(_module_name(p)) for p in _all_modules()} - {None}
    assert units - set(RANK) == set(), "give each new package or root module its place in LAYERS"


def test_no_import_runs_back_up_the_layers() -> None:
    found = back_arrows()
    assert found - PENDING == set(), "imports running back up the layers (file, layer imported)"
    assert PENDING - found == set(), "fixed: strike these from PENDING"


def test_no_modules_import_each_other_round_in_a_loop() -> None:
    modules = {_module_name(p): p for p in _all_modules()}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: set() for m in modules}
    for m, path in modules.items():
        for name in _imported(path):
            target = resolve(name)
            if target and target != m and not m.startswith(target + "."):  # a package's own __init__
                graph[m].add(target)
    loops, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state[n] == 1:
                loops.append(path[path.index(n) :] + [n])
            elif state[n] == 0:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if state[m] == 0:
            visit(m, [m])
    assert loops == []


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
