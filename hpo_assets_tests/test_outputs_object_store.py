"""The demo chain of assets reads and writes every file through an S3 outputs root (a real moto server)."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import optuna
import polars as pl
import pytest

from hpo_assets import outputs
from hpo_assets.defs.assets import analysis, market, studies, trial_table
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.locations import as_path
from hpo_assets_tests.conftest import EXPORTS_DIR

optuna.logging.set_verbosity(optuna.logging.WARNING)
BUCKET = "hpo-outputs"
TINY_STUDY = {
    "n_trials": 2, "max_epochs": 1, "patience": 1, "n_forced": 1, "pruner": "none", "cpu_threads": 1,
    "start": "2014-01-01", "end": "2016-12-31", "val_start": "2015-10-01", "test_start": "2016-10-01",
    "architectures": ["d384-L1-H8-F1536", "d512-L1-H8-F1024"],
}  # fmt: skip


def _s3():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


def test_atomic_write_to_the_object_store_leaves_the_old_object_when_the_writer_fails(
    s3_endpoint: str,
) -> None:
    _s3().mkdir(BUCKET)
    target = as_path(f"s3://{BUCKET}/x/file.txt")
    outputs.write_text(target, "first")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        outputs.atomic_write(target, broken)
    assert _s3().cat(f"{BUCKET}/x/file.txt") == b"first"


@pytest.mark.slow  # ~1 min on a shared 2-core CPU: a real study and the whole chain
def test_demo_chain_runs_against_s3(s3_endpoint: str, isolated_dirs: Path, monkeypatch) -> None:
    fs = _s3()
    fs.mkdir(BUCKET)
    monkeypatch.setenv("HPO_ASSETS_OUTPUTS", f"s3://{BUCKET}/run1")
    resources = {"paths": HpoPaths(), "gpu": GpuLeases(devices="")}
    instance = dg.DagsterInstance.ephemeral()

    assert dg.materialize(
        [*dg.load_assets_from_modules([market]), *dg.load_asset_checks_from_modules([market])],
        resources=resources,
        instance=instance,
    ).success
    study = dg.materialize(
        [studies.hpo_study],
        partition_key="2M|h1",
        resources=resources,
        instance=instance,
        run_config={"ops": {"hpo_study": {"config": TINY_STUDY}}},
    )
    assert study.success
    chain = dg.materialize(
        [
            *dg.load_assets_from_modules([trial_table, analysis]),
            *dg.load_asset_checks_from_modules([trial_table, analysis]),
        ],
        resources=resources,
        instance=instance,
        run_config={"ops": {"imported_studies": {"config": {"sources": [str(EXPORTS_DIR)]}}}},
    )
    assert chain.success
    checks = [*chain.get_asset_check_evaluations(), *study.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]

    stored = {key.removeprefix(f"{BUCKET}/run1/") for key in fs.find(f"{BUCKET}/run1")}
    assert {
        "market/market_data.parquet",
        "features/features.parquet",
        "studies/hpo-2M-h1.json",
        "studies/hpo-2M-h1_history.png",
        "trials/imported_trials.parquet",
        "trials/trial_table.parquet",
        "trials/trial_table_report.json",
        "summary/hpo_summary.parquet",
        "summary/hpo_summary.csv",
        "summary/hpo_full.json",
        "summary/README.md",
        "summary/diverged_analysis.csv",
        "summary/diverged_analysis.json",
    } <= stored
    assert not any(name.endswith(".tmp") for name in stored)
    assert not (isolated_dirs / "outputs").exists(), "nothing may be written to the local outputs folder"

    table = pl.read_parquet(io.BytesIO(fs.cat(f"{BUCKET}/run1/trials/trial_table.parquet")))
    live = table.filter(pl.col("study") == "hpo-2M-h1")
    assert live.height == 2 and table.height == 152  # 2 live trials + the 150 imported ones
    summary = pl.read_parquet(io.BytesIO(fs.cat(f"{BUCKET}/run1/summary/hpo_summary.parquet")))
    assert summary.height == table.height
    (mat,) = chain.asset_materializations_for_node("trial_table")
    assert mat.metadata["path"].value == f"s3://{BUCKET}/run1/trials/trial_table.parquet"
