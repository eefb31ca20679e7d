"""Jobs: the data job, the partitioned study job, and the trial table + analysis job."""

from __future__ import annotations

import dagster as dg

from hpo_assets.defs.partitions import budget_horizon_partitions

market_job = dg.define_asset_job(
    "market_job",
    selection=dg.AssetSelection.groups("market"),
    description="Load and validate the market data, then build the 25 features and the per-horizon labels.",
)

study_job = dg.define_asset_job(
    "study_job",
    selection=dg.AssetSelection.assets("hpo_study"),
    partitions_def=budget_horizon_partitions,
    description="Run (or resume) the Optuna study of one budget x horizon partition; backfill it across partitions.",
)

analysis_job = dg.define_asset_job(
    "analysis_job",
    selection=dg.AssetSelection.groups("trials", "analysis") - dg.AssetSelection.assets("importance_report"),
    description="Rebuild the trial table and every unpartitioned analysis asset from all live and imported studies.",
)

importance_job = dg.define_asset_job(
    "importance_job",
    selection=dg.AssetSelection.assets("importance_report"),
    partitions_def=budget_horizon_partitions,
    description="Parameter importance (fANOVA + PED-ANOVA with a noise floor) of one budget x horizon partition.",
)

JOBS = [market_job, study_job, analysis_job, importance_job]
