"""The trial table's blocking checks stop the chain: a table with a broken schema or counts that disagree
with its materialization fails its check in the run that wrote it, and hpo_summary (which reads it) is
skipped; the real trial_table passes them and the analysis runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from hpo_assets import outputs
from hpo_assets.defs.assets.analysis import hpo_summary
from hpo_assets.defs.assets.trial_table import imported_studies, trial_table
from hpo_assets.defs.checks import CHECKS, schema_problems, trial_table_counts, trial_table_schema
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.trials.schema import conform

BLOCKING = [trial_table_schema, trial_table_counts]


def _table(n: int) -> pl.DataFrame:
    rows = [{"study": "hpo-2M-h1", "source": "live", "source_path": "/s", "trial_num": i, "state": "COMPLETE",
             "direction": "maximize", "diverged": False, "n_curve_epochs": 0} for i in range(n)]  # fmt: skip
    return conform(pl.DataFrame(rows))


def _stand_in(frame: pl.DataFrame, n_rows: int, n_studies: int) -> dg.AssetsDefinition:
    """An upstream that writes `frame` where trial_table writes, recording the given counts."""

    @dg.asset(name="trial_table")
    def broken(paths: HpoPaths) -> dg.MaterializeResult:
        outputs.write_parquet(frame, paths.outputs(*outputs.TRIAL_TABLE_FILE))
        return dg.MaterializeResult(metadata={"n_rows": n_rows, "n_studies": n_studies})

    return broken


def _run(assets: list) -> tuple[dg.ExecuteInProcessResult, dict[str, bool]]:
    result = dg.materialize(
        [*assets, hpo_summary, *BLOCKING], resources={"paths": HpoPaths()}, raise_on_error=False
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return result, checks


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key}


def test_the_checks_are_blocking_and_registered() -> None:
    for check in BLOCKING:
        assert all(spec.blocking for spec in check.check_specs)
        assert check in CHECKS


@pytest.mark.parametrize(
    ("frame", "n_rows", "failing", "why"),
    [(_table(2).drop("state"), 2, "trial_table_schema", "column state is missing"),
     (_table(2).with_columns(pl.lit(None, pl.String).alias("source")), 2, "trial_table_schema", "source has 2 null"),
     (_table(2).with_columns(pl.lit("BOGUS").alias("state")), 2, "trial_table_schema", "['BOGUS'], outside"),
     (_table(2).with_columns(pl.col("trial_num").cast(pl.String)), 2, "trial_table_schema", "trial_num is String"),
     (_table(2), 3, "trial_table_counts", "the file holds 2, the materialization recorded 3"),
     (pl.concat([_table(2), _table(1)]), 3, "trial_table_counts", "appear more than once")],
)  # fmt: skip
def test_a_bad_trial_table_stops_the_chain(
    isolated_dirs: Path, frame: pl.DataFrame, n_rows: int, failing: str, why: str
) -> None:
    result, checks = _run([_stand_in(frame, n_rows, 1)])
    assert checks[failing] is False
    assert "hpo_summary" not in _materialized(result), "the analysis never reads a bad table"
    assert any(why in problem for problem in [*schema_problems(frame), _counts_text(result)])


def _counts_text(result: dg.ExecuteInProcessResult) -> str:
    for e in result.get_asset_check_evaluations():
        if e.check_name == "trial_table_counts":
            return str(e.metadata["problems"].value)
    return ""


def test_a_good_table_passes_and_the_analysis_runs(isolated_dirs: Path) -> None:
    result, checks = _run([_stand_in(_table(3), 3, 1)])
    assert checks == {"trial_table_schema": True, "trial_table_counts": True}
    assert "hpo_summary" in _materialized(result)


def test_the_real_trial_table_passes_its_blocking_checks(isolated_dirs: Path) -> None:
    result = dg.materialize([imported_studies, trial_table, *BLOCKING], resources={"paths": HpoPaths()})
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["trial_table_schema"] is True and checks["trial_table_counts"] is True
