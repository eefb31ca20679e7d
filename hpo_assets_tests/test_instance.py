"""The instance config the Makefile writes is one Dagster accepts, limits only the gpu pool, and never clobbers a user's."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.instance import ensure_instance, gpu_limit, instance_config


def _pools(home: Path) -> dict[str, int]:
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        return {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    finally:
        instance.dispose()


def test_written_config_limits_only_the_gpu_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_ASSETS_GPU_LIMIT", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU-only machine: one study at a time
    ensure_instance(tmp_path)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    pool_config = instance.get_concurrency_config().pool_config
    assert pool_config.default_pool_limit is None, "other pools are not limited"
    assert pool_config.pool_granularity.value == "run", (
        "a backfill's runs wait in the queue, not as processes"
    )
    assert instance.auto_materialize_enabled and instance.auto_materialize_use_sensors
    instance.dispose()
    assert _pools(tmp_path) == {"gpu": 1}


def test_gpu_limit_from_gpus_env_and_cli_and_a_user_limit_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPO_ASSETS_GPU_LIMIT", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert gpu_limit() == 3 * 4, "3 GPUs x 4 slots (2M packs 4 trials per GPU in budgets.yaml)"
    monkeypatch.setenv("HPO_ASSETS_GPU_LIMIT", "8")  # a cluster: the limit is a setting, not local GPUs
    assert gpu_limit() == 8
    monkeypatch.setenv("HPO_ASSETS_GPU_LIMIT", "lots")
    with pytest.raises(ValueError, match="HPO_ASSETS_GPU_LIMIT"):
        gpu_limit()
    monkeypatch.delenv("HPO_ASSETS_GPU_LIMIT")
    assert main(["init-instance", "--home", str(tmp_path)]) == 0
    assert _pools(tmp_path) == {"gpu": 12}
    assert main(["init-instance", "--home", str(tmp_path), "--gpu-limit", "2"]) == 0
    assert _pools(tmp_path) == {"gpu": 2}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert main(["init-instance", "--home", str(tmp_path)]) == 0
    assert _pools(tmp_path) == {"gpu": 2}, "a limit already set is kept"


def test_postgres_url_is_used_and_its_password_never_written() -> None:
    plain = instance_config(postgres_url="postgresql://u@localhost:5432/dagster")
    assert plain["storage"]["postgres"]["postgres_url"] == "postgresql+psycopg2://u@localhost:5432/dagster"
    db = instance_config(postgres_url="postgresql://u:p4ss@db.example:6543/dagster")["storage"]["postgres"]
    assert db["postgres_db"] == {"username": "u", "password": {"env": "HPO_ASSETS_PG_PASSWORD"},
                                 "hostname": "db.example", "db_name": "dagster", "port": 6543,
                                 "scheme": "postgresql+psycopg2"}  # fmt: skip
    from_env = instance_config(postgres_url="postgresql+psycopg2://u:p4ss@db.example/d", from_env=True)
    assert from_env["storage"]["postgres"] == {"postgres_url": {"env": "HPO_ASSETS_PG_URL"}}


def test_existing_user_config_is_kept(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    ensure_instance(tmp_path)
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text()) == {"telemetry": {"enabled": True}}


def test_config_of_an_earlier_version_capping_every_pool_is_replaced(tmp_path: Path) -> None:
    old = {"concurrency": {"pools": {"default_limit": 1}}, "telemetry": {"enabled": False}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(old))
    ensure_instance(tmp_path)
    assert (
        "default_limit" not in yaml.safe_load((tmp_path / "dagster.yaml").read_text())["concurrency"]["pools"]
    )


def test_init_instance_without_home_is_one_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["init-instance"]) == 2
    err = capsys.readouterr().err
    assert "DAGSTER_HOME" in err and "Traceback" not in err


def test_library_log_records_reach_the_run_log(tmp_path: Path) -> None:
    import logging

    ensure_instance(tmp_path, gpu_pool_limit=1)

    @dg.asset
    def logs_through_the_library() -> None:
        logging.getLogger("hpo_assets.search.runner").info("library record 7f3a")

    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        result = dg.materialize([logs_through_the_library], instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any("library record 7f3a" in m for m in messages)
    finally:
        instance.dispose()


def test_run_retries_are_on_for_study_and_model_jobs_only(tmp_path: Path) -> None:
    from hpo_assets.defs.jobs import JOBS

    ensure_instance(tmp_path, gpu_pool_limit=1)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 0
        assert instance.run_retries_retry_on_asset_or_op_failure, "a preempted k8s step pod fails its step"
    finally:
        instance.dispose()
    retried = {job.name for job in JOBS if (job.tags or {}).get("dagster/max_retries") == "3"}
    assert retried == {"study_job", "study_demo_job", "calibrated_model_job", "cross_budget_job"}


def test_config_of_the_version_before_run_retries_is_replaced(tmp_path: Path) -> None:
    old = {k: v for k, v in instance_config().items() if k != "run_retries"}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(old))
    ensure_instance(tmp_path, gpu_pool_limit=1)
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text())["run_retries"]["enabled"] is True
