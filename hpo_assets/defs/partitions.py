"""Budget x horizon partitions: keys read `2M|h1`."""

from __future__ import annotations

import dagster as dg

BUDGETS = ["2M", "20M", "200M", "2B"]
HORIZONS = ["h1", "h3", "h5"]

budget_horizon_partitions = dg.MultiPartitionsDefinition(
    {
        "budget": dg.StaticPartitionsDefinition(BUDGETS),
        "horizon": dg.StaticPartitionsDefinition(HORIZONS),
    }
)
