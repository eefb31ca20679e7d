"""The code location: every asset, check, job, schedule and sensor of hpo-assets.

Assets are discovered: any module under `hpo_assets/defs/assets/` is loaded, so a new asset needs no
edit here (see docs/DESIGN.md, "Adding an asset").
"""

from __future__ import annotations

import dagster as dg

from hpo_assets import settings
from hpo_assets.defs import assets
from hpo_assets.defs.checks import CHECKS
from hpo_assets.defs.executors import select_executor
from hpo_assets.defs.jobs import JOBS
from hpo_assets.defs.pool_wait import install as install_pool_wait
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.defs.schedules import SCHEDULES
from hpo_assets.defs.sensors import SENSORS

if settings.pool_wait_enabled():  # opt-in: a step waiting for a pool sleeps and frees dead runs' slots
    install_pool_wait()

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources={"paths": HpoPaths(), "gpu": GpuLeases()},
    executor=select_executor(),
)
