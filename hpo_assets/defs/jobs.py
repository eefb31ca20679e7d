"""Jobs: the data job, the partitioned study jobs (one per profile), and the trial table + analysis job."""

from __future__ import annotations

import dagster as dg

# A run killed from outside (a preempted pod, kill -9, a lost node) is relaunched by the daemon up to this
# many times (the instance enables run retries; dagster.yaml's default is 0 for every other job); the
# retry resumes the study from its storage: finished trials stay, the killed one is recovered.
MAX_RETRIES = "3"
RETRIED = {"dagster/max_retries": MAX_RETRIES}

market_job = dg.define_asset_job(
    "market_job",
    selection=dg.AssetSelection.groups("market"),
    description="Load and validate the market data, then build the features and the per-horizon labels.",
)


def _study_job(name: str, profile: str, description: str) -> dg.UnresolvedAssetJobDefinition:
    """A study job with its profile baked in: a backfill from the UI or `dagster job backfill` needs no YAML."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets("hpo_study"),
        config={"ops": {"hpo_study": {"config": {"profile": profile}}}},
        tags={"hpo-assets/profile": profile, **RETRIED},
        description=description,
    )


study_job = _study_job(
    "study_job",
    "full",
    "The study of each budget x horizon partition under the `full` profile of defaults.yaml (the whole "
    "campaign); `hpo-assets plan PARTITIONS --profile full` predicts its compute first.",
)
study_demo_job = _study_job(
    "study_demo_job",
    "demo",
    "The study of each budget x horizon partition under the `demo` profile of defaults.yaml (a short run "
    "on a CPU); `hpo-assets plan PARTITIONS --profile demo` predicts its compute first.",
)

analysis_job = dg.define_asset_job(
    "analysis_job",
    selection=dg.AssetSelection.groups("trials", "analysis") - dg.AssetSelection.assets("importance_report"),
    description="Rebuild the trial table and every unpartitioned analysis asset from all live and imported studies.",
)

importance_job = dg.define_asset_job(
    "importance_job",
    selection=dg.AssetSelection.assets("importance_report"),
    description="Parameter importance (fANOVA + PED-ANOVA with a noise floor) of one budget x horizon partition.",
)


baselines_job = dg.define_asset_job(
    "baselines_job",
    selection=dg.AssetSelection.assets("baselines"),
    description="Fit and score the reference predictors of one horizon on the studies' split (CPU).",
)

calibrated_model_job = dg.define_asset_job(
    "calibrated_model_job",
    selection=dg.AssetSelection.assets("calibrated_model"),
    tags=RETRIED,
    description="Retrain, test, calibrate and save the best model of one budget x horizon study.",
)

cross_budget_job = dg.define_asset_job(
    "cross_budget_job",
    selection=dg.AssetSelection.assets("cross_budget_validation"),
    tags=RETRIED,
    description="Train every budget's best architecture with every budget's best training parameters (one horizon).",
)

report_job = dg.define_asset_job(
    "report_job",
    selection=dg.AssetSelection.assets("importance_summary", "hpo_report"),
    description="Rebuild the importance summary and the HTML/Markdown report from the analysis files already written.",
)

JOBS = [
    market_job,
    study_job,
    study_demo_job,
    analysis_job,
    importance_job,
    report_job,
    baselines_job,
    calibrated_model_job,
    cross_budget_job,
]
