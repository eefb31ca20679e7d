"""Assets of group `analysis`, each built from the trial table: hpo_summary and diverged_analysis."""

import dagster as dg
import polars as pl

from hpo_assets import outputs
from hpo_assets.analysis.diverged import DIVERGED_CSV, diverged_table, write_diverged
from hpo_assets.analysis.summary_files import README, SUMMARY_PARQUET, write_summary
from hpo_assets.defs.assets.trial_table import load_trial_table, trial_table
from hpo_assets.defs.automation import EAGER
from hpo_assets.defs.metadata import table
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.trials import live
from hpo_assets.trials.extract import study_overview
from hpo_assets.trials.schema import FLAT_COLUMNS, REQUIRED_COLUMNS, conform

GROUP = "analysis"


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    automation_condition=EAGER,
    description="hpo_summary.csv/.parquet, hpo_full.json and a README defining every column, from the trial table.",
)
def hpo_summary(paths: HpoPaths) -> dg.MaterializeResult:
    table_, report = load_trial_table(paths)
    problems, notes = live.problems_from(report), live.problems_from(report, "notes")
    written = write_summary(
        table_,
        paths.outputs(*outputs.SUMMARY_DIR, README).parent,
        sources=report.get("sources", []),
        problems=problems,
        notes=notes,
        n_skipped=int(report.get("n_skipped", 0)),
    )
    preview = table_.select(
        "study",
        "trial_num",
        "state",
        "objective",
        "rank_in_study",
        "d_model",
        "n_layers",
        "lr",
        "duplicate_of",
        "diverged",
    ).sort("study", "rank_in_study", nulls_last=True)
    return dg.MaterializeResult(
        metadata={
            "n_rows": table_.height,
            "n_columns": len(FLAT_COLUMNS),
            "n_problems": len(problems),
            "per_study": table(study_overview(table_)),
            "preview": table(preview),
            "folder": dg.MetadataValue.path(str(written[README].parent)),
            "readme": dg.MetadataValue.md(written[README].read_text()),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    automation_condition=EAGER,
    description="diverged_analysis.csv/.json: diverged trials with diagnosis columns and full learning curves.",
)
def diverged_analysis(paths: HpoPaths) -> dg.MaterializeResult:
    table_, report = load_trial_table(paths)
    written = write_diverged(
        table_, paths.outputs(*outputs.SUMMARY_DIR, DIVERGED_CSV).parent, sources=report.get("sources", [])
    )
    div = diverged_table(table_)
    by_category = (
        div.group_by("budget", "arch_category").len(name="n_diverged").sort("budget", "arch_category")
    )
    return dg.MaterializeResult(
        metadata={
            "n_diverged": div.height,
            "n_trials": table_.height,
            "preview": table(
                div.select(
                    "study",
                    "trial_num",
                    "diverged_reason",
                    "diverge_epoch",
                    "last_good_loss",
                    "arch_category",
                    "similar_successful_study",
                    "similar_successful_trial",
                )
            ),
            "by_budget_and_category": table(by_category),
            "csv": dg.MetadataValue.path(str(written[DIVERGED_CSV])),
        }
    )


# ---- checks ----


def _summary(paths: HpoPaths) -> pl.DataFrame:
    return conform(outputs.read_parquet(paths.outputs(*outputs.SUMMARY_DIR, SUMMARY_PARQUET)))


@dg.asset_check(
    asset=hpo_summary,
    description="The summary has one row per trial in the sources (live storage counted through Optuna's API, plus imported trials).",
)
def summary_matches_sources(paths: HpoPaths) -> dg.AssetCheckResult:
    summary = _summary(paths)
    live_counts = live.count_source_trials(paths.storage_spec())
    _, report = load_trial_table(paths)
    expected = sum(live_counts.values()) + int(report.get("n_imported_used", 0))
    return dg.AssetCheckResult(
        passed=summary.height == expected,
        metadata={
            "summary_rows": summary.height,
            "trials_in_sources": expected,
            "live_trials": sum(live_counts.values()),
            "imported_trials": int(report.get("n_imported_used", 0)),
        },
    )


@dg.asset_check(asset=hpo_summary, description="Identity, state, direction and flag columns are never null.")
def required_columns_non_null(paths: HpoPaths) -> dg.AssetCheckResult:
    summary = _summary(paths)
    nulls = {c: int(summary[c].null_count()) for c in REQUIRED_COLUMNS}
    return dg.AssetCheckResult(
        passed=not any(nulls.values()), metadata={"null_counts": dg.MetadataValue.json(nulls)}
    )


@dg.asset_check(asset=diverged_analysis, description="Every diverged trial says why it counts as diverged.")
def diverged_have_reason(paths: HpoPaths) -> dg.AssetCheckResult:
    table_, _ = load_trial_table(paths)
    missing = table_.filter(pl.col("diverged") & pl.col("diverged_reason").is_null())
    return dg.AssetCheckResult(
        passed=missing.is_empty(),
        metadata={
            "n_diverged": int(table_["diverged"].sum()) if table_.height else 0,
            "without_reason": missing.height,
            "examples": table(missing.select("study", "trial_num")),
        },
    )
