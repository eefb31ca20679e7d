"""Assets of group `trials`: imported_studies and the one trial table every analysis reads."""

import json

import dagster as dg
import polars as pl

from hpo_assets import outputs
from hpo_assets.defs.automation import EAGER_PARTIAL_UPSTREAM
from hpo_assets.defs.metadata import problems_table, table
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.locations import MASK, mask_password
from hpo_assets.trials import live
from hpo_assets.trials.extract import study_overview
from hpo_assets.trials.importers import read_sources
from hpo_assets.trials.schema import conform

GROUP = "trials"


class ImportedStudiesConfig(dg.Config):
    """Where to import studies from: Optuna storage URLs, journal/SQLite files, export or per-trial JSON folders.

    Empty (the default, e.g. on the nightly schedule) re-reads the sources of the previous import, so a
    scheduled run refreshes imports instead of dropping them. A password in a URL is never stored: write
    it as `${VAR}` (filled from the environment when the storage is opened).
    """

    sources: list[str] = []


@dg.asset(
    group_name=GROUP,
    description="Studies read from configured export folders and Optuna storages, normalized to the trial schema.",
)
def imported_studies(
    context: dg.AssetExecutionContext, config: ImportedStudiesConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    folder = paths.outputs(*outputs.TRIALS_DIR, live.IMPORTED_PARQUET).parent
    sources = list(config.sources) or list(live.load_import(folder)[1].get("sources", []))
    masked = [src for src in sources if MASK + "@" in src]
    if masked:
        raise dg.Failure(
            description=f"the previous import's sources {masked} had passwords, which are never stored: give "
            "the sources again in the `sources` config (write a password as ${VAR} to keep it out of files)",
            allow_retries=False,
        )
    result = read_sources(sources)
    problems = result.all_problems
    if sources and result.n_read == 0:
        raise dg.Failure(
            description=f"nothing could be imported from {mask_password(sources)} (the previous import is kept): "
            + "; ".join(str(p) for p in problems),
            metadata={"problems": problems_table(problems)},
        )
    for p in problems:
        context.log.warning(str(p))
    sources = [mask_password(src) for src in sources]  # `${VAR}` references are kept; passwords are not
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
            "studies": table(per_study),
            "problems": problems_table(problems),
            "sources": dg.MetadataValue.json(sources),
            "sources_from_previous_import": not config.sources and bool(sources),
            "path": dg.MetadataValue.path(str(saved["table"])),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[dg.AssetDep("hpo_study"), imported_studies],
    automation_condition=EAGER_PARTIAL_UPSTREAM,
    description="Every trial of every live and imported study in one normalized table with derived fields.",
)
def trial_table(context: dg.AssetExecutionContext, paths: HpoPaths) -> dg.MaterializeResult:
    spec = paths.storage_spec()
    live_read = live.read_live(spec)
    imported, report = live.load_import(paths.outputs(*outputs.TRIALS_DIR, live.IMPORTED_PARQUET).parent)
    trial_rows, clashes, n_imported_used = live.assemble(live_read, imported)
    problems = live_read.all_problems + clashes
    for p in problems:
        context.log.warning(str(p))
    out = outputs.write_parquet(trial_rows, paths.outputs(*outputs.TRIAL_TABLE_FILE))
    sources = live.live_sources(spec) + list(report.get("sources", []))
    outputs.write_text(
        paths.outputs(*outputs.TRIAL_TABLE_REPORT),
        json.dumps(
            {
                "storage": mask_password(spec),
                "sources": [mask_password(src) for src in sources],
                "n_skipped": live_read.n_skipped + int(report.get("n_skipped", 0)),
                "n_imported_used": n_imported_used,
                "problems": [{"path": p.path, "problem": p.problem} for p in problems]
                + report.get("problems", []),
                "notes": [{"path": n.path, "problem": n.problem} for n in live_read.all_notes]
                + report.get("notes", []),
            },
            indent=1,
        ),
    )
    overview = study_overview(trial_rows)
    return dg.MaterializeResult(
        metadata={
            "n_rows": trial_rows.height,
            "n_studies": overview.height,
            "n_live_studies": len(live_read.studies),
            "n_imported_trials": imported.height,
            "n_diverged": int(trial_rows["diverged"].sum()) if trial_rows.height else 0,
            "per_study": table(overview),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


def load_trial_table(paths: HpoPaths) -> tuple[pl.DataFrame, dict]:
    """The trial table and its report as `trial_table` wrote them (a Failure naming the file if absent)."""
    table_path, report_path = (
        paths.outputs(*outputs.TRIAL_TABLE_FILE),
        paths.outputs(*outputs.TRIAL_TABLE_REPORT),
    )
    if not table_path.is_file():
        raise dg.Failure(description=f"{table_path} does not exist: materialize trial_table first")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return conform(outputs.read_parquet(table_path)), report


@dg.asset_check(asset=trial_table, description="No study has two rows with the same trial number.")
def unique_trial_numbers(paths: HpoPaths) -> dg.AssetCheckResult:
    table_, _ = load_trial_table(paths)
    dups = table_.group_by("study", "trial_num").len(name="n_rows").filter(pl.col("n_rows") > 1)
    return dg.AssetCheckResult(
        passed=dups.is_empty(), metadata={"duplicated_numbers": dups.height, "examples": table(dups)}
    )
