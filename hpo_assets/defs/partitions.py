"""Budget x horizon partitions (keys read `2M|h1`), built from model/budgets.yaml and defaults.yaml."""

from __future__ import annotations

import dagster as dg

from hpo_assets.search.partition import study_budgets, study_horizons


def budget_horizon_partitions_for(budgets: list[str], horizons: list[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            "budget": dg.StaticPartitionsDefinition(budgets),
            "horizon": dg.StaticPartitionsDefinition(horizons),
        }
    )


budget_horizon_partitions = budget_horizon_partitions_for(study_budgets(), study_horizons())

# Horizon-only assets (baselines, cross_budget_validation) share the study partitions' horizon list.
horizon_partitions = dg.StaticPartitionsDefinition(study_horizons())
