"""Asset checks: every `@dg.asset_check` in a module of `defs/assets/` (next to the asset it checks) is
found here; checks spanning several assets may be defined in this module and added to CHECKS.

The trial table's blocking checks live here: every analysis reads that one table, so a table with a
wrong schema or counts that disagree with what its materialization recorded must stop the chain in the
run that wrote it (a failed blocking check skips the downstream assets) instead of feeding every report.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at runtime.

import dagster as dg
import polars as pl

from hpo_assets import outputs
from hpo_assets.defs import assets
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.trials.schema import DIRECTIONS, REQUIRED_COLUMNS, STATES, TRIAL_SCHEMA

TRIAL_TABLE = dg.AssetKey("trial_table")


def _read_written(paths: HpoPaths) -> pl.DataFrame | None:
    path = paths.outputs(*outputs.TRIAL_TABLE_FILE)
    return outputs.read_parquet(path) if path.is_file() else None


def schema_problems(frame: pl.DataFrame) -> list[str]:
    """What is wrong with a trial table as written: missing or mistyped columns, nulls where none may be,
    states and directions outside their vocabularies."""
    problems = [f"column {name} is missing" for name in TRIAL_SCHEMA if name not in frame.columns]
    problems += [
        f"column {name} is {frame.schema[name]}, not {dtype}"
        for name, dtype in TRIAL_SCHEMA.items()
        if name in frame.columns and frame.schema[name] != dtype
    ]
    for name in REQUIRED_COLUMNS:
        if name in frame.columns and (nulls := frame[name].null_count()):
            problems.append(f"column {name} has {nulls} null value(s)")
    for name, allowed in (("state", STATES), ("direction", DIRECTIONS)):
        if name in frame.columns and frame.schema[name] == pl.String:
            bad = sorted(set(frame[name].drop_nulls().unique().to_list()) - set(allowed))
            if bad:
                problems.append(f"column {name} holds {bad}, outside {allowed}")
    return problems


@dg.asset_check(
    asset=TRIAL_TABLE,
    blocking=True,
    description="The table as written has every column of the trial schema with its type, no null in the "
    "required columns, and only known states/directions; blocking: the analysis never reads a bad table.",
)
def trial_table_schema(paths: HpoPaths) -> dg.AssetCheckResult:
    frame = _read_written(paths)
    if frame is None:
        return dg.AssetCheckResult(passed=False, metadata={"problems": "the trial table file does not exist"})
    problems = schema_problems(frame)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none", "n_columns": frame.width},
    )


@dg.asset_check(
    asset=TRIAL_TABLE,
    blocking=True,
    description="The file holds the rows and studies its materialization recorded (n_rows, n_studies), and "
    "no study has two rows with one trial number; blocking: a table that lost or doubled rows stops the chain.",
)
def trial_table_counts(context: dg.AssetCheckExecutionContext, paths: HpoPaths) -> dg.AssetCheckResult:
    frame = _read_written(paths)
    event = context.instance.get_latest_materialization_event(TRIAL_TABLE)
    materialization = event.asset_materialization if event is not None else None
    recorded = {
        k: getattr(v, "value", v) for k, v in (materialization.metadata if materialization else {}).items()
    }
    if frame is None:
        return dg.AssetCheckResult(passed=False, metadata={"problems": "the trial table file does not exist"})
    problems = []
    n_studies = frame["study"].n_unique() if "study" in frame.columns else 0
    for name, found in (("n_rows", frame.height), ("n_studies", n_studies)):
        if name not in recorded:
            problems.append(f"the materialization recorded no {name}")
        elif int(recorded[name]) != found:
            problems.append(f"{name}: the file holds {found}, the materialization recorded {recorded[name]}")
    if {"study", "trial_num"} <= set(frame.columns):
        dups = frame.group_by("study", "trial_num").len().filter(pl.col("len") > 1).height
        if dups:
            problems.append(f"{dups} (study, trial_num) pair(s) appear more than once")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none", "n_rows": frame.height, "n_studies": n_studies},
    )


CHECKS: list[dg.AssetChecksDefinition] = [
    *dg.load_asset_checks_from_package_module(assets),
    trial_table_schema,
    trial_table_counts,
]
