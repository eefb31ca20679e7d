"""Asset checks: every `@dg.asset_check` in a module of `defs/assets/` (next to the asset it checks) is
found here; checks spanning several assets may be defined in this module and added to CHECKS."""

from __future__ import annotations

import dagster as dg

from hpo_assets.defs import assets

CHECKS: list[dg.AssetChecksDefinition] = [*dg.load_asset_checks_from_package_module(assets)]
