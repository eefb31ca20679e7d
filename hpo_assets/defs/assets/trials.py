"""Assets of group `analysis` built on the one trial table: imported_studies, trial_table, hpo_summary, diverged_analysis."""

import json

import dagster as dg
import polars as pl

from hpo_assets.defs.resources import HpoPaths
from hpo_assets.trials import extract as ex
from hpo_assets.trials import live
from hpo_assets.trials.importers import read_sources
from hpo_assets.trials.schema import REQUIRED_COLUMNS, conform

GROUP = "analysis"
TABLE_FILE = ("trials", "trial_table.parquet")
TABLE_REPORT = ("trials", "trial_table_report.json")


def _md(df: pl.DataFrame, limit: int = 20) -> dg.MetadataValue:
    """A small Markdown table for the Dagster UI."""
    if df.is_empty():
        return dg.MetadataValue.md("_(no rows)_")
    head = df.head(limit)
    cells = [
        [("" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)) for v in row]
        for row in head.iter_rows()
    ]
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width] + [
        "| " + " | ".join(r) + " |" for r in cells
    ]
    if df.height > limit:
        lines.append(f"\n_{df.height - limit} more rows_")
    return dg.MetadataValue.md("\n".join(lines))


def _problems_md(problems: list) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- `{p.path}`: {p.problem}" for p in problems[:50]) or "_none_")


class ImportedStudiesConfig(dg.Config):
    """Where to import studies from: Optuna storage URLs, journal/SQLite files, export or per-trial JSON folders.

    Empty (the default, e.g. on the nightly schedule) re-reads the sources of the previous import, so a
    scheduled run refreshes imports instead of dropping them.
    """

    sources: list[str] = []


@dg.asset(
    group_name=GROUP,
    description="Studies read from configured export folders and Optuna storages, normalized to the trial schema.",
)
def imported_studies(
    context: dg.AssetExecutionContext, config: ImportedStudiesConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    folder = paths.outputs("trials", live.IMPORTED_PARQUET).parent
    sources = list(config.sources) or list(live.load_import(folder)[1].get("sources", []))
    result = read_sources(sources)
    problems = result.all_problems
    if sources and result.n_read == 0:
        raise dg.Failure(
            description=f"nothing could be imported from {sources} (the previous import is kept): "
            + "; ".join(str(p) for p in problems),
            metadata={"problems": _problems_md(problems)},
        )
    for p in problems:
        context.log.warning(str(p))
    saved = live.save_import(result, folder, sources)
    per_study = pl.DataFrame(
        [
            {
                "study": s.study,
                "source": s.source,
                "trials": len(s.rows),
                "skipped": s.skipped,
                "path": s.source_path,
            }
            for s in result.studies
        ],
        schema={
            "study": pl.String,
            "source": pl.String,
            "trials": pl.Int64,
            "skipped": pl.Int64,
            "path": pl.String,
        },
    )
    return dg.MaterializeResult(
        metadata={
            "n_studies": len(result.studies),
            "n_trials": result.n_read,
            "n_skipped": result.n_skipped,
            "n_problems": len(problems),
            "studies": _md(per_study),
            "problems": _problems_md(problems),
            "sources": dg.MetadataValue.json(sources),
            "sources_from_previous_import": not config.sources and bool(sources),
            "path": dg.MetadataValue.path(str(saved["table"])),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[dg.AssetDep("hpo_study"), imported_studies],
    description="Every trial of every live and imported study in one normalized table with derived fields.",
)
def trial_table(context: dg.AssetExecutionContext, paths: HpoPaths) -> dg.MaterializeResult:
    spec = paths.storage_spec()
    live_read = live.read_live(spec)
    imported, report = live.load_import(paths.outputs("trials", live.IMPORTED_PARQUET).parent)
    table, clashes, n_imported_used = live.assemble(live_read, imported)
    problems = live_read.all_problems + clashes
    for p in problems:
        context.log.warning(str(p))
    out = paths.outputs(*TABLE_FILE)
    table.write_parquet(out)
    sources = live.live_sources(spec) + list(report.get("sources", []))
    paths.outputs(*TABLE_REPORT).write_text(
        json.dumps(
            {
                "storage": spec,
                "sources": sources,
                "n_skipped": live_read.n_skipped + int(report.get("n_skipped", 0)),
                "n_imported_used": n_imported_used,
                "problems": [{"path": p.path, "problem": p.problem} for p in problems]
                + report.get("problems", []),
                "notes": [{"path": n.path, "problem": n.problem} for n in live_read.all_notes]
                + report.get("notes", []),
            },
            indent=1,
        )
    )
    overview = ex.study_overview(table)
    return dg.MaterializeResult(
        metadata={
            "n_rows": table.height,
            "n_studies": overview.height,
            "n_live_studies": len(live_read.studies),
            "n_imported_trials": imported.height,
            "n_diverged": int(table["diverged"].sum()) if table.height else 0,
            "per_study": _md(overview),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


def _load_table(paths: HpoPaths) -> tuple[pl.DataFrame, dict]:
    table_path, report_path = paths.outputs(*TABLE_FILE), paths.outputs(*TABLE_REPORT)
    if not table_path.is_file():
        raise dg.Failure(description=f"{table_path} does not exist: materialize trial_table first")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return conform(pl.read_parquet(table_path)), report


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    description="hpo_summary.csv/.parquet, hpo_full.json and a README defining every column, from the trial table.",
)
def hpo_summary(paths: HpoPaths) -> dg.MaterializeResult:
    table, report = _load_table(paths)
    problems, notes = live.problems_from(report), live.problems_from(report, "notes")
    written = ex.write_summary(
        table,
        paths.outputs("summary", ex.README).parent,
        sources=report.get("sources", []),
        problems=problems,
        notes=notes,
        n_skipped=int(report.get("n_skipped", 0)),
    )
    preview = table.select(
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
            "n_rows": table.height,
            "n_columns": len(ex.FLAT_COLUMNS),
            "n_problems": len(problems),
            "per_study": _md(ex.study_overview(table)),
            "preview": _md(preview),
            "folder": dg.MetadataValue.path(str(written[ex.README].parent)),
            "readme": dg.MetadataValue.md(written[ex.README].read_text()),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    description="diverged_analysis.csv/.json: diverged trials with diagnosis columns and full learning curves.",
)
def diverged_analysis(paths: HpoPaths) -> dg.MaterializeResult:
    table, report = _load_table(paths)
    written = ex.write_diverged(
        table, paths.outputs("summary", ex.DIVERGED_CSV).parent, sources=report.get("sources", [])
    )
    div = ex.diverged_table(table)
    by_category = div.group_by("budget", "arch_category").len().sort("budget", "arch_category")
    return dg.MaterializeResult(
        metadata={
            "n_diverged": div.height,
            "n_trials": table.height,
            "preview": _md(
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
            "by_budget_and_category": _md(by_category),
            "csv": dg.MetadataValue.path(str(written[ex.DIVERGED_CSV])),
        }
    )


# ---- checks ----


def _summary(paths: HpoPaths) -> pl.DataFrame:
    return conform(pl.read_parquet(paths.outputs("summary", ex.SUMMARY_PARQUET)))


@dg.asset_check(
    asset=hpo_summary,
    description="The summary has one row per trial in the sources (live storage counted through Optuna's API, plus imported trials).",
)
def summary_matches_sources(paths: HpoPaths) -> dg.AssetCheckResult:
    summary = _summary(paths)
    live_counts = live.count_source_trials(paths.storage_spec())
    _, report = _load_table(paths)
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
    table, _ = _load_table(paths)
    missing = table.filter(pl.col("diverged") & pl.col("diverged_reason").is_null())
    return dg.AssetCheckResult(
        passed=missing.is_empty(),
        metadata={
            "n_diverged": int(table["diverged"].sum()) if table.height else 0,
            "without_reason": missing.height,
            "examples": _md(missing.select("study", "trial_num")),
        },
    )


@dg.asset_check(asset=trial_table, description="No study has two rows with the same trial number.")
def unique_trial_numbers(paths: HpoPaths) -> dg.AssetCheckResult:
    table, _ = _load_table(paths)
    dups = table.group_by("study", "trial_num").len().filter(pl.col("len") > 1)
    return dg.AssetCheckResult(
        passed=dups.is_empty(), metadata={"duplicated_numbers": dups.height, "examples": _md(dups)}
    )


ASSETS: list = [imported_studies, trial_table, hpo_summary, diverged_analysis]
CHECKS: list = [
    summary_matches_sources,
    required_columns_non_null,
    diverged_have_reason,
    unique_trial_numbers,
]
