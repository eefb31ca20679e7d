"""Schedules: the table and every analysis asset are rebuilt every night from every trial that landed during
the day (crons in defaults.yaml `analysis:`, or HPO_ASSETS_ANALYSIS_CRON / HPO_ASSETS_IMPORTANCE_CRON).

Both are off by default (Dagster's default for schedules; the Automation page turns them on): the automation
sensor, on by default, already rebuilds the analysis when a study or an import lands. They are a safety net
for a deployment that wants a nightly rebuild regardless."""

from __future__ import annotations

import dagster as dg

from hpo_assets import outputs, settings
from hpo_assets.defs.jobs import analysis_job, importance_job
from hpo_assets.defs.partitions import budget_horizon_partitions
from hpo_assets.defs.resources import HpoPaths

ANALYSIS_CRON, IMPORTANCE_CRON = settings.analysis_crons()

analysis_schedule = dg.ScheduleDefinition(
    name="analysis_nightly",
    job=analysis_job,
    cron_schedule=ANALYSIS_CRON,
    description="Rebuild the trial table and every unpartitioned analysis asset (summary, diverged, coverage, "
    "scaling, consistency, importance summary, report) on a cron, default 03:00. Off until turned on "
    "(Automation page); the automation sensor already rebuilds them when a study lands.",
)


def partitions_with_trials(paths: HpoPaths) -> list[str]:
    """The budget x horizon keys the trial table holds trials of (live or imported), in partition order."""
    table_path = paths.outputs(*outputs.TRIAL_TABLE_FILE)
    if not table_path.is_file():
        return []
    held = outputs.read_parquet(table_path).select("budget", "horizon").unique()
    have = {f"{b}|{h}" for b, h in held.iter_rows()}
    return [k for k in budget_horizon_partitions.get_partition_keys() if k in have]


@dg.schedule(
    name="importance_nightly",
    job=importance_job,
    cron_schedule=IMPORTANCE_CRON,
    description="Re-materialize the importance_report partitions that have trials in the table (live or "
    "imported) on a cron (default 03:30, after the table); importance_summary and hpo_report then follow by "
    "declarative automation. Off until turned on (Automation page).",
)
def importance_schedule(
    context: dg.ScheduleEvaluationContext, paths: HpoPaths
) -> dg.SkipReason | list[dg.RunRequest]:
    stamp = context.scheduled_execution_time.isoformat()
    keys = partitions_with_trials(paths)
    if not keys:
        return dg.SkipReason("the trial table holds no study (or is not built yet)")
    return [dg.RunRequest(run_key=f"{stamp}-{key}", partition_key=key) for key in keys]


SCHEDULES = [analysis_schedule, importance_schedule]
