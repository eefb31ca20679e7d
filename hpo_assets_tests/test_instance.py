"""The instance config the Makefile writes is one Dagster accepts, sizes the gpu pool, and never clobbers a user's."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.instance import ensure_instance, instance_config


def test_written_config_loads_as_a_dagster_instance(tmp_path: Path) -> None:
    ensure_instance(tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().pool_config.default_pool_limit >= 1


def test_pool_limit_follows_gpu_count_and_postgres_url_is_used() -> None:
    assert instance_config(0)["concurrency"]["pools"]["default_limit"] == 1
    assert instance_config(4)["concurrency"]["pools"]["default_limit"] == 4
    cfg = instance_config(1, postgres_url="postgresql://u:p@localhost:5432/dagster")
    assert cfg["storage"]["postgres"]["postgres_url"].startswith("postgresql://")


def test_existing_user_config_is_kept(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    ensure_instance(tmp_path)
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text()) == {"telemetry": {"enabled": True}}


def test_init_instance_without_home_is_one_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["init-instance"]) == 2
    err = capsys.readouterr().err
    assert "DAGSTER_HOME" in err and "Traceback" not in err
