"""The Dagster instance itself on a real PostgreSQL server (dagster-postgres): `init-instance` writes it, a
study partition is materialized into it, and the materialization event and the gpu pool are read back."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.assets.studies import hpo_study
from hpo_assets.defs.resources import GpuLeases, HpoPaths

TINY = {"profile": "demo", "n_trials": 1, "max_epochs": 1, "n_forced": 1, "start": "2014-10-01",
        "architectures": ["d384-L1-H8-F1536"]}  # fmt: skip


def test_instance_on_postgres_records_a_partition(
    postgres_url: str, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = isolated_dirs / "home"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("HPO_ASSETS_GPU_LIMIT", raising=False)
    monkeypatch.setenv(
        "HPO_ASSETS_PG_URL", postgres_url
    )  # postgresql+psycopg://: not what dagster-postgres speaks
    assert main(["init-instance", "--home", str(home)]) == 2, "refused with the fix, not a late NOTIFY error"
    assert not (home / "dagster.yaml").exists()
    monkeypatch.delenv("HPO_ASSETS_PG_URL")
    assert main(["init-instance", "--home", str(home), "--postgres-url", postgres_url]) == 0
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written["storage"]["postgres"]["postgres_url"].startswith("postgresql+psycopg2://")

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == {"gpu": 1}

        paths = HpoPaths()
        assert dg.materialize([market_data, features], resources={"paths": paths}, instance=instance).success
        result = dg.materialize(
            [hpo_study],
            partition_key="2M|h3",
            resources={"paths": paths, "gpu": GpuLeases()},
            run_config={"ops": {"hpo_study": {"config": TINY}}},
            instance=instance,
        )
        assert result.success

        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("hpo_study"), asset_partitions=["2M|h3"]), limit=5
        ).records
        assert len(records) == 1 and records[0].run_id == result.run_id
        mat = records[0].asset_materialization
        assert mat is not None and mat.partition == "2M|h3"
        assert mat.metadata["study_name"].value == "hpo-2M-h3"
        assert mat.metadata["trials_counted"].value == 1
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_materialized_partitions(dg.AssetKey("hpo_study")) == {"2M|h3"}
    finally:
        instance.dispose()
