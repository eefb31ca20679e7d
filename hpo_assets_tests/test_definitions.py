"""The code location loads the way `dagster dev` loads it, and every definition is described for the UI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from hpo_assets import settings
from hpo_assets.definitions import defs

EXPECTED_ASSETS = {
    "market_data": "market",
    "features": "market",
    "hpo_study": "studies",
    "imported_studies": "trials",
    "trial_table": "trials",
    "hpo_summary": "analysis",
    "diverged_analysis": "analysis",
}


def _dagster_bin() -> str:
    return str(Path(sys.executable).with_name("dagster"))


def test_workspace_validates_with_dagster_cli(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [_dagster_bin(), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "hpo_assets" in out


def test_expected_assets_in_their_groups_with_descriptions() -> None:
    graph = defs.resolve_asset_graph()
    found = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    for name, group in EXPECTED_ASSETS.items():
        assert name in found, f"asset {name} missing from the code location"
        node = found[name]
        assert node.group_name == group, f"{name} is in group {node.group_name}, expected {group}"
        assert node.description and len(node.description.strip()) > 10, f"{name} has no description"


def test_study_asset_is_partitioned_budget_by_horizon() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("hpo_study"))
    keys = set(node.partitions_def.get_partition_keys())
    assert len(keys) == 15  # 5 budgets (model/budgets.yaml) x 3 horizons
    assert "2M|h1" in keys and "2B|h5" in keys


def test_every_asset_check_is_described() -> None:
    graph = defs.resolve_asset_graph()
    checks = list(graph.asset_check_keys)
    assert len(checks) >= 3, "the code location defines too few asset checks"
    for key in checks:
        assert graph.get_check_spec(key).description, f"check {key.to_user_string()} has no description"
