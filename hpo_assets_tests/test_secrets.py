"""A storage password never appears in dagster.yaml, metadata, logs, messages or the trial table."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import optuna
import polars as pl
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.assets import analysis, studies, trial_table
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.locations import mask_password, unmask
from hpo_assets.search.storage import dashboard_command, open_storage
from hpo_assets_tests.fixtures.contract_studies import build_contract_study

SECRET = "s3cr3t-pw"


def test_mask_password_in_urls_and_in_messages() -> None:
    url = f"postgresql+psycopg://hpo:{SECRET}@db.example:5432/optuna?sslmode=require"
    assert mask_password(url) == "postgresql+psycopg://hpo:***@db.example:5432/optuna?sslmode=require"
    line = f"storage URL '{url}' cannot be opened; also s3://key:{SECRET}@bucket/x"
    assert SECRET not in mask_password(line) and mask_password(line).count("***") == 2
    assert mask_password("postgresql://hpo@db/optuna") == "postgresql://hpo@db/optuna"
    assert mask_password("/home/me/.hpo") == "/home/me/.hpo"
    assert unmask(mask_password(url), ["sqlite:///x.db", url]) == url
    assert SECRET not in dashboard_command(url, "hpo-2M-h1")


def test_a_bad_password_url_fails_with_a_masked_message(isolated_dirs: Path) -> None:
    url = f"postgresql+psycopg://hpo:{SECRET}@127.0.0.1:1/optuna"
    result = dg.materialize(
        [studies.hpo_study],
        partition_key="2M|h1",
        resources={"paths": HpoPaths(), "gpu": GpuLeases(devices="")},
        run_config={"ops": {"hpo_study": {"config": {"storage": url}}}},
        raise_on_error=False,
    )
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "cannot be opened" in message and "hpo:***@127.0.0.1:1" in message and SECRET not in message


def test_trial_table_metadata_logs_and_files_hide_the_password(
    postgres_url: str, isolated_dirs: Path, monkeypatch
) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")  # the test server trusts any password
    build_contract_study(open_storage(url, "hpo-2M-h1"))
    monkeypatch.setenv("HPO_ASSETS_STORAGE", url)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [
            *dg.load_assets_from_modules([trial_table, analysis]),
            *dg.load_asset_checks_from_modules([trial_table, analysis]),
        ],
        resources={"paths": HpoPaths()},
        instance=instance,
    )
    assert result.success
    events = [str(e.event_specific_data) + str(e.message) for e in result.all_events]
    logs = [str(r.user_message) for r in instance.all_logs(result.run_id)]
    assert all(SECRET not in text for text in events + logs)
    out = isolated_dirs / "outputs"
    table = pl.read_parquet(out / "trials" / "trial_table.parquet")
    assert table.height == len(optuna.load_study(study_name="hpo-2M-h1", storage=url).trials)
    assert set(table["source_path"].to_list()) == {mask_password(url)} and "***" in mask_password(url)
    for file in [*(out / "trials").iterdir(), *(out / "summary").iterdir()]:
        assert SECRET.encode() not in file.read_bytes(), file
    assert json.loads((out / "trials" / "trial_table_report.json").read_text())["storage"] == mask_password(
        url
    )


def test_init_instance_writes_env_references_that_dagster_resolves(
    postgres_url: str, tmp_path: Path, monkeypatch
) -> None:
    # the Dagster instance speaks psycopg2 (init-instance refuses another driver)
    url = postgres_url.replace("+psycopg:", "+psycopg2:").replace("postgres@", f"postgres:{SECRET}@")
    monkeypatch.setenv("HPO_ASSETS_PG_URL", url)
    assert main(["init-instance", "--home", str(tmp_path / "a")]) == 0
    written = (tmp_path / "a" / "dagster.yaml").read_text()
    assert SECRET not in written
    assert yaml.safe_load(written)["storage"]["postgres"] == {"postgres_url": {"env": "HPO_ASSETS_PG_URL"}}

    monkeypatch.delenv("HPO_ASSETS_PG_URL")
    monkeypatch.setenv("HPO_ASSETS_PG_PASSWORD", SECRET)
    assert main(["init-instance", "--home", str(tmp_path / "b"), "--postgres-url", url]) == 0
    written = (tmp_path / "b" / "dagster.yaml").read_text()
    assert SECRET not in written
    db = yaml.safe_load(written)["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "HPO_ASSETS_PG_PASSWORD"} and db["username"] == "postgres"
    instance = dg.DagsterInstance.from_config(str(tmp_path / "b"))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs_count() == 0  # it connected with the password from the environment
    finally:
        instance.dispose()
