"""The analysis assets materialize for real (partitions included) and re-run on their own when studies land."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import dagster as dg
import optuna
import polars as pl
import pytest

from hpo_assets.defs.assets import analysis, analysis_reports, studies, trial_table
from hpo_assets.defs.partitions import budget_horizon_partitions
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.defs.schedules import importance_schedule
from hpo_assets_tests.conftest import EXPORTS_DIR
from hpo_assets_tests.fixtures.contract_studies import build_contract_study, journal_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
ALL = dg.load_assets_from_modules([trial_table, analysis, analysis_reports])
FAST = {"fanova_bootstrap": 2, "fanova_shuffles": 1, "ped_bootstrap": 10, "ped_shuffles": 4}


def _mats(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    out = {}
    for e in result.get_asset_materialization_events():
        m = e.event_specific_data.materialization
        out[m.asset_key.to_user_string() + (f"[{m.partition}]" if m.partition else "")] = m.metadata
    return out


@pytest.mark.slow  # the whole trial + analysis chain, ~30 s on a shared 2-core CPU
def test_analysis_assets_materialize_with_partitions(isolated_dirs: Path) -> None:
    storage = Path(os.environ["HPO_ASSETS_STORAGE"])
    storage.mkdir(parents=True)
    build_contract_study(journal_storage(storage / "hpo-2M-h1.journal"))
    res = {"paths": HpoPaths()}
    base = dg.materialize(
        ALL,
        selection=dg.AssetSelection.assets(*[a.key for a in ALL])
        - dg.AssetSelection.assets("importance_report"),
        resources=res,
        run_config={"ops": {"imported_studies": {"config": {"sources": [str(EXPORTS_DIR)]}}}},
    )
    assert base.success
    part = dg.materialize(
        ALL,
        selection=[analysis_reports.importance_report],
        partition_key="20M|h1",
        resources=res,
        run_config={"ops": {"importance_report": {"config": FAST}}},
    )
    assert part.success
    again = dg.materialize(
        ALL, selection=[analysis_reports.importance_summary, analysis_reports.hpo_report], resources=res
    )
    assert again.success

    out = isolated_dirs / "outputs" / "analysis"
    mats = {**_mats(base), **_mats(part), **_mats(again)}
    assert mats["coverage_report"]["exact_repeats"].value == 10 + 13 + 15 + 1  # + trial 1 of the live study
    assert "plot_waste" in mats["coverage_report"]
    assert mats["importance_report[20M|h1]"]["n_studies"].value == 1
    assert (out / "importance_20M_h1.json").is_file() and (out / "importance_20M_h1_bars.png").is_file()
    assert mats["importance_summary"]["partitions_with_importances"].value == 1
    assert "INCONCLUSIVE" in mats["scaling_report"]["headline"].value
    html = (out / "hpo_report.html").read_text()
    assert "data:image/png;base64," in html and "hpo_20m_1_a50" in html
    assert "Diverged trials" in html and mats["hpo_report"]["sections"].value == 4
    for name in ["coverage_report", "scaling_report", "hp_consistency", "importance_summary"]:
        assert (out / f"{name}.md").is_file() and (out / f"{name}.json").is_file()


def _requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return {key.to_user_string() for key in {r.key for r in result.results if r.true_subset.size}}


def _partitions(result: dg.EvaluateAutomationConditionsResult, key: str) -> set[str]:
    found = next((r for r in result.results if r.key.to_user_string() == key), None)
    return (
        set() if found is None else {str(p) for p in found.true_subset.expensively_compute_partition_keys()}
    )


@pytest.mark.slow  # a dozen automation evaluations over the whole graph
def test_a_new_study_partition_or_import_updates_table_and_analysis_on_its_own() -> None:
    from hpo_assets.defs.assets import market, models

    defs = dg.Definitions(
        assets=[*dg.load_assets_from_modules([market, studies, models]), *ALL],
        resources={"paths": HpoPaths(), "gpu": GpuLeases()},
    )
    instance = dg.DagsterInstance.ephemeral()
    analysis = {
        "trial_table", "hpo_summary", "diverged_analysis", "coverage_report", "importance_report",
        "importance_summary", "scaling_report", "hp_consistency", "hpo_report",
    }  # fmt: skip

    def materialized(key: str, partition: str | None = None) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))

    def tick(cursor):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)

    first = tick(None)  # the first tick only records state
    for key in ["imported_studies", *analysis - {"importance_report"}]:
        materialized(key)
    for key in budget_horizon_partitions.get_partition_keys():
        materialized("importance_report", key)
    quiet = tick(first.cursor)
    assert _requested(quiet) == set()

    table_run = analysis - {"importance_report", "importance_summary", "hpo_report"}

    def settle(cursor, studies_held: set[str]) -> object:
        """The table's run first (not the report: the importance partitions are still to come), then the
        importance of the partitions that have a study (another partitions definition, so another run), then
        their summary with the report: the report is built once."""
        first_wave = tick(cursor)
        assert _requested(first_wave) == table_run
        for key in table_run:
            materialized(key)
        second = tick(first_wave.cursor)
        assert _requested(second) == {"importance_report"}
        assert _partitions(second, "importance_report") == studies_held, (
            "no run for a partition without a study"
        )
        for key in studies_held:
            materialized("importance_report", key)
        third = tick(second.cursor)
        assert _requested(third) == {"importance_summary", "hpo_report"}
        materialized("importance_summary")
        materialized("hpo_report")
        done = tick(third.cursor)
        assert _requested(done) == set()
        return done.cursor

    materialized("hpo_study", "2M|h1")  # one study partition lands; the others never ran
    cursor = settle(quiet.cursor, {"2M|h1"})
    materialized("imported_studies")
    cursor = settle(cursor, {"2M|h1"})
    materialized("hpo_study", "200K|h1")
    cursor = settle(cursor, {"2M|h1", "200K|h1"})

    # A new calibrated model (or baseline) is read by the scaling report and the report: both follow, once.
    for asset, partition in [("calibrated_model", "200K|h1"), ("baselines", "h1")]:
        materialized(asset, partition)
        wave = tick(cursor)
        assert _requested(wave) == {"scaling_report", "hpo_report"}, asset
        materialized("scaling_report")
        materialized("hpo_report")
        done = tick(wave.cursor)
        assert _requested(done) == set()
        cursor = done.cursor


def test_lineage_shows_what_the_reports_read() -> None:
    from hpo_assets.definitions import defs

    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert {"trial_table", "baselines", "calibrated_model"} <= parents("scaling_report")
    assert {"baselines", "calibrated_model", "scaling_report", "importance_summary"} <= parents("hpo_report")
    assert parents("importance_report") == {"trial_table", "hpo_study"}


def test_the_schedules_request_every_analysis_asset(isolated_dirs: Path) -> None:
    from hpo_assets.definitions import defs

    job = defs.resolve_job_def("analysis_job")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {
        "trial_table",
        "coverage_report",
        "scaling_report",
        "hp_consistency",
        "importance_summary",
        "hpo_report",
    } <= keys
    ctx = dg.build_schedule_context(
        scheduled_execution_time=datetime.datetime(2026, 1, 1, 3, 30), resources={"paths": HpoPaths()}
    )
    assert isinstance(importance_schedule(ctx), dg.SkipReason), "no table yet: nothing to request"
    table = HpoPaths().outputs("trials", "trial_table.parquet")
    pl.DataFrame({"budget": ["20M", "2M", "2M", "2M"], "horizon": ["h1", "h1", "h1", "h5"]}).write_parquet(
        table
    )
    requests = importance_schedule(ctx)
    assert [r.partition_key for r in requests] == [
        "2M|h1",
        "2M|h5",
        "20M|h1",
    ]  # partition order, no empty ones
