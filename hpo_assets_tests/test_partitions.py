"""Budgets and horizons are listed once, in the YAML: adding a budget there adds its partitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpo_assets import settings
from hpo_assets.model.budgets import BUDGETS_FILE, named_budgets
from hpo_assets.search.partition import parse_partition, study_horizons
from hpo_assets.search.runner import StudyConfigError

PRINT_KEYS = (
    "from hpo_assets.definitions import defs; import dagster as dg;"
    "print(sorted(defs.resolve_asset_graph().get(dg.AssetKey('hpo_study')).partitions_def.get_partition_keys()))"
)


def _budgets_with(tmp_path: Path, label: str) -> Path:
    raw = yaml.safe_load(BUDGETS_FILE.read_text())
    raw["budgets"][label] = {}
    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_budgets_and_horizons_come_from_the_yaml() -> None:
    assert named_budgets() == ["200K", "2M", "20M", "200M", "2B"]
    assert (
        study_horizons() == [f"h{h}" for h in settings.settings()["data"]["horizons"]] == ["h1", "h3", "h5"]
    )


def test_a_budget_added_to_the_yaml_gets_partitions_with_no_code_change(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HPO_ASSETS_BUDGETS": str(_budgets_with(tmp_path, "500K")),
        "DAGSTER_HOME": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", PRINT_KEYS], env=env, capture_output=True, text=True, timeout=300, check=True
    ).stdout
    keys = set(yaml.safe_load(out.strip().replace("'", '"')))
    assert len(keys) == 18 and {"500K|h1", "500K|h3", "500K|h5", "2M|h1"} <= keys


def test_partition_outside_the_yaml_is_refused_with_the_choices(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(
        StudyConfigError, match=r"budget '500K' is not one of \['200K', '2M', '20M', '200M', '2B'\]"
    ):
        parse_partition("500K|h1")
    monkeypatch.setenv("HPO_ASSETS_BUDGETS", str(_budgets_with(tmp_path, "500K")))
    part = parse_partition("500K|h3")
    assert (part.budget, part.horizon_days, part.study_name) == ("500K", 3, "hpo-500K-h3")
