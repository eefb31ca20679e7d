"""A storage password never appears in dagster.yaml, metadata, logs, messages or the trial table."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import optuna
import polars as pl
import pytest
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.assets import analysis, studies, trial_table
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.locations import STORAGE_PASSWORD_ENV, mask_password, unmask
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


# --- issue 22, case 3: every form SQLAlchemy accepts, in every place a URL lands ------------------------------------

SLASH = "Sl/ash_Pw_55"  # about 30% of base64 passwords hold a `/`
QUERY = "Q_pw/77"


def test_mask_password_in_every_form_sqlalchemy_accepts() -> None:
    from sqlalchemy.engine import make_url

    forms = [
        f"postgresql://hpo:{SLASH}@db:5432/optuna",
        f"postgresql+psycopg://hpo:a:b/{SLASH}?x@db/optuna",  # `:`, `/` and `?` inside the password
        f"postgresql://hpo@db/optuna?sslmode=require&password={QUERY}",
        f"postgresql://hpo@db/optuna?PASSWORD={QUERY}&sslpassword={SLASH}",
    ]
    for url in forms:
        masked = mask_password(url)
        assert SLASH not in masked and QUERY not in masked, masked
        assert make_url(masked).host == make_url(url).host == "db"  # the rest of the URL is kept
        assert (
            mask_password(f"storage URL {url!r} cannot be opened")
            == f"storage URL {masked!r} cannot be opened"
        )
        assert unmask(masked, ["sqlite:///x.db", url]) == url
        assert SLASH not in dashboard_command(url, "s") and QUERY not in dashboard_command(url, "s")
    assert mask_password("postgresql://hpo:${PGPW}@db/optuna") == "postgresql://hpo:${PGPW}@db/optuna"


def _no_secret_under(root: Path, *secrets: str) -> list[str]:
    """Files under `root` whose bytes hold any of `secrets` (SQLite run/event databases, compute logs, JSON)."""
    return [
        str(f) for f in root.rglob("*") if f.is_file() and any(s.encode() in f.read_bytes() for s in secrets)
    ]


@pytest.mark.slow
def test_a_literal_password_in_set_storage_is_stored_nowhere(postgres_url: str, tmp_path: Path) -> None:
    """`hpo-assets study --set storage=URL` with a `/` in the password: nothing the run leaves (Dagster's run
    and event databases, compute logs, outputs/studies/*.json, printed lines) holds it; `studies` masks it."""
    import os
    import subprocess
    import sys

    from hpo_assets.defs.assets.market import features, market_data

    url = postgres_url.replace("postgres@", f"postgres:{SLASH}@")  # the test server trusts any password
    home, outputs = tmp_path / "dagster_home", tmp_path / "outputs"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HPO_ASSETS_OUTPUTS": str(outputs),
           "HPO_ASSETS_STORAGE": str(tmp_path / "unused")}  # fmt: skip
    env.pop(STORAGE_PASSWORD_ENV, None)
    assert dg.materialize(
        [market_data, features], resources={"paths": HpoPaths(outputs_dir=str(outputs))}
    ).success
    cmd = [sys.executable, "-m", "hpo_assets.cli", "study", "2M|h5", "--profile", "demo", "--set", f"storage={url}",
           "--set", "n_trials=1", "--set", "n_forced=1", "--set", "max_epochs=1",
           "--set", "architectures=[d192-L4-H8-F768]"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SLASH not in done.stdout + done.stderr
    assert _no_secret_under(home, SLASH) == [] and _no_secret_under(outputs, SLASH) == []
    summary = json.loads((outputs / "studies" / "hpo-2M-h5.json").read_text())
    assert summary["storage"] == mask_password(url).replace("***", "${" + STORAGE_PASSWORD_ENV + "}")
    assert len(optuna.load_study(study_name="hpo-2M-h5", storage=url).trials) >= 1  # it used that database
    with dg.DagsterInstance.from_config(str(home)) as instance:  # issue 22, case 8: the tag names its profile
        (record,) = instance.get_run_records()
        assert record.dagster_run.tags["hpo-assets/profile"] == "demo"

    query_url = postgres_url + f"?password={QUERY}"
    listed = subprocess.run([sys.executable, "-m", "hpo_assets.cli", "studies", "--storage", query_url],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert listed.returncode == 0 and "hpo-2M-h5: " in listed.stdout, listed.stderr[-2000:]
    assert QUERY not in listed.stdout + listed.stderr and "password=***" in listed.stdout
    for bad in (
        url.replace(postgres_url.rsplit(":", 1)[1].split("/")[0], "1"),
        query_url.replace("/postgres?", "/nodb?"),
    ):
        failed = subprocess.run([sys.executable, "-m", "hpo_assets.cli", "studies", "--storage", bad],
                                env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert failed.returncode == 2 and "cannot be opened" in failed.stderr, failed.stderr[-2000:]
        assert (
            SLASH not in failed.stderr and QUERY not in failed.stderr and len(failed.stderr.splitlines()) == 1
        )


def test_a_literal_password_is_moved_to_the_environment_in_either_form() -> None:
    import os

    from hpo_assets.locations import expand_env, password_to_env

    ref = "${" + STORAGE_PASSWORD_ENV + "}"
    for url, password in [
        (f"postgresql+psycopg://hpo:{SLASH}@db:5432/optuna", SLASH),
        (f"postgresql+psycopg://hpo@db/optuna?sslmode=require&password={QUERY}", QUERY),
    ]:
        stored, moved = password_to_env(url, STORAGE_PASSWORD_ENV)
        assert moved == password and password not in stored and ref in stored
        os.environ[STORAGE_PASSWORD_ENV] = moved
        try:
            assert expand_env(stored) == url  # what the run opens is the URL as given
        finally:
            del os.environ[STORAGE_PASSWORD_ENV]
    assert password_to_env("postgresql://hpo:${PGPW}@db/optuna", STORAGE_PASSWORD_ENV) == (
        "postgresql://hpo:${PGPW}@db/optuna",
        None,
    )
