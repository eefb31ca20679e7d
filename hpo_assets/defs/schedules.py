"""Schedules: the analysis is rebuilt every night from every trial that landed during the day."""

from __future__ import annotations

import dagster as dg

from hpo_assets.defs.jobs import analysis_job

analysis_schedule = dg.ScheduleDefinition(
    name="analysis_nightly",
    job=analysis_job,
    cron_schedule="0 3 * * *",
    description="Rebuild the analysis every night at 03:00 so it reflects every trial that landed during the day.",
)

SCHEDULES = [analysis_schedule]
