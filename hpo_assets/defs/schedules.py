"""Schedules: the table and every analysis asset are rebuilt every night from every trial that landed during
the day (crons in defaults.yaml `analysis:`, or HPO_ASSETS_ANALYSIS_CRON / HPO_ASSETS_IMPORTANCE_CRON)."""

from __future__ import annotations

import dagster as dg

from hpo_assets import settings
from hpo_assets.defs.jobs import analysis_job, importance_job
from hpo_assets.defs.partitions import budget_horizon_partitions

ANALYSIS_CRON, IMPORTANCE_CRON = settings.analysis_crons()

analysis_schedule = dg.ScheduleDefinition(
    name="analysis_nightly",
    job=analysis_job,
    cron_schedule=ANALYSIS_CRON,
    description="Rebuild the trial table and every unpartitioned analysis asset (summary, diverged, coverage, "
    "scaling, consistency, importance summary, report) on a cron, default 03:00.",
)


@dg.schedule(
    name="importance_nightly",
    job=importance_job,
    cron_schedule=IMPORTANCE_CRON,
    description="Re-materialize every importance_report partition on a cron (default 03:30, after the table); "
    "importance_summary and hpo_report then follow by declarative automation.",
)
def importance_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    stamp = context.scheduled_execution_time.isoformat()
    return [
        dg.RunRequest(run_key=f"{stamp}-{key}", partition_key=key)
        for key in budget_horizon_partitions.get_partition_keys()
    ]


SCHEDULES = [analysis_schedule, importance_schedule]
