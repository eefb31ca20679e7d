"""The code location: every asset, check, job, schedule and sensor of hpo-assets."""

from __future__ import annotations

import dagster as dg

from hpo_assets.defs.assets import market, studies, trials
from hpo_assets.defs.executors import select_executor
from hpo_assets.defs.jobs import JOBS, SCHEDULES
from hpo_assets.defs.resources import GpuLeases, HpoPaths

defs = dg.Definitions(
    assets=[*market.ASSETS, *studies.ASSETS, *trials.ASSETS],
    asset_checks=[*market.CHECKS, *studies.CHECKS, *trials.CHECKS],
    jobs=JOBS,
    schedules=SCHEDULES,
    resources={"paths": HpoPaths(), "gpu": GpuLeases()},
    executor=select_executor(),
)
