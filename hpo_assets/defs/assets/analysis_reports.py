"""Assets of group `analysis` built on the trial table: coverage_report, importance_report (budget x horizon),
importance_summary, scaling_report, hp_consistency and hpo_report. Each reads the table, calls
`hpo_assets.analysis`, writes its files under `<outputs>/analysis/` and shows its headline and plots in metadata.

They update on their own (declarative automation) when the trial table does; the table itself updates when an
`hpo_study` partition or `imported_studies` materializes (see trials.py). scaling_report and hpo_report also read
the models group's files (baselines/, models/<budget>_<horizon>/card.json): they declare those assets upstream, so
a new calibrated model or baseline re-materializes them and the graph shows what they read.
"""

import base64

import dagster as dg
import polars as pl
from pydantic import Field

from hpo_assets import outputs
from hpo_assets.analysis import importance as imp
from hpo_assets.analysis.consistency import consistency
from hpo_assets.analysis.coverage import coverage
from hpo_assets.analysis.report import write_report
from hpo_assets.analysis.scaling import scaling
from hpo_assets.analysis.section import Section, load_section, markdown_table, write_section
from hpo_assets.defs.assets.analysis import GROUP, diverged_analysis
from hpo_assets.defs.assets.trial_table import load_trial_table, trial_table
from hpo_assets.defs.automation import (
    EAGER,
    EAGER_PARTIAL_UPSTREAM,
    EAGER_WHERE_STUDY,
    ONCE_UPSTREAM_SETTLED,
)
from hpo_assets.defs.partitions import budget_horizon_partitions
from hpo_assets.defs.resources import HpoPaths


def analysis_dir(paths: HpoPaths):
    return paths.outputs(*outputs.ANALYSIS_DIR, "_").parent


def _table(paths: HpoPaths) -> pl.DataFrame:
    return load_trial_table(paths)[0]


def _metadata(section: Section, written: dict, extra: dict | None = None) -> dict:
    """Headline and plots inline, the main table as a preview, the folder and JSON as paths."""
    md = "\n".join(f"- {s}" for s in section.headline) or "_(nothing to report)_"
    meta: dict = {"headline": dg.MetadataValue.md(md)}
    for name, png in section.plots.items():
        meta[f"plot_{name}"] = dg.MetadataValue.md(
            f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        )
    if section.tables:
        first = next(iter(section.tables))
        meta["preview"] = dg.MetadataValue.md(markdown_table(section.tables[first], 20))
    meta["json"] = dg.MetadataValue.path(str(written["json"]))
    meta["markdown"] = dg.MetadataValue.path(str(written["md"]))
    return {**meta, **(extra or {})}


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    kinds={"polars", "json"},
    automation_condition=EAGER,
    description="Per study: space size, configurations tested, value counts, largest untested regions; trials "
    "that bought no information (exact/effective repeats, diverged, failed, pruned) with compute-hours.",
)
def coverage_report(paths: HpoPaths) -> dg.MaterializeResult:
    section = coverage(_table(paths))
    written = write_section(section, analysis_dir(paths))
    studies = section.tables.get("studies", pl.DataFrame())
    return dg.MaterializeResult(
        metadata=_metadata(
            section,
            written,
            {
                "n_studies": studies.height,
                "wasted_trials": int(studies["wasted"].sum()) if studies.height else 0,
                "exact_repeats": int(studies["exact_repeat"].sum()) if studies.height else 0,
            },
        )
    )


class ImportanceConfig(dg.Config):
    fanova_max_trials: int = Field(
        default=imp.ImportanceSettings.fanova_max_trials,
        description="fANOVA sees a random subsample of larger studies (it is super-linear in trials).",
    )
    fanova_bootstrap: int = Field(
        default=imp.ImportanceSettings.fanova_bootstrap,
        description="fANOVA bootstrap resamples of trials (percentile interval).",
    )
    fanova_shuffles: int = Field(
        default=imp.ImportanceSettings.fanova_shuffles,
        description="fANOVA shuffled objectives: each parameter's permutation null and p-value.",
    )
    ped_bootstrap: int = Field(
        default=imp.ImportanceSettings.ped_bootstrap, description="PED-ANOVA bootstrap resamples."
    )
    ped_shuffles: int = Field(
        default=imp.ImportanceSettings.ped_shuffles,
        description="PED-ANOVA shuffled objectives (permutation null).",
    )
    alpha: float = Field(
        default=imp.ImportanceSettings.alpha,
        description="Family-wise error rate over a study's parameters for 'distinguishable from noise'.",
    )
    seed: int = Field(default=0, description="Seed of subsampling, bootstrap and shuffles.")

    def settings(self) -> imp.ImportanceSettings:
        return imp.ImportanceSettings(
            fanova_max_trials=self.fanova_max_trials,
            fanova_bootstrap=self.fanova_bootstrap,
            fanova_shuffles=self.fanova_shuffles,
            ped_bootstrap=self.ped_bootstrap,
            ped_shuffles=self.ped_shuffles,
            alpha=self.alpha,
            seed=self.seed,
        )


# The models group's assets, by key: defs/assets/models.py imports this package's studies module, not us.
MODEL_FILES = [dg.AssetKey("baselines"), dg.AssetKey("calibrated_model")]


@dg.asset(
    group_name=GROUP,
    deps=[trial_table, dg.AssetKey("hpo_study")],
    partitions_def=budget_horizon_partitions,
    kinds={"optuna", "json"},
    automation_condition=EAGER_WHERE_STUDY,
    description="fANOVA and PED-ANOVA importances of every study of the partition's budget and horizon, with "
    "bootstrap intervals and per-parameter permutation p-values (family-wise adjusted over the study's parameters).",
)
def importance_report(
    context: dg.AssetExecutionContext, config: ImportanceConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    budget, horizon = keys["budget"], keys["horizon"]
    section = imp.importance(_table(paths), budget, horizon, config.settings())
    written = write_section(section, analysis_dir(paths))
    for note in section.notes:
        context.log.info(note)
    t = section.tables["importances"]
    return dg.MaterializeResult(
        metadata=_metadata(
            section,
            written,
            {
                "n_studies": t["study"].n_unique() if t.height else 0,
                "distinguishable": int(t["distinguishable"].sum()) if t.height else 0,
            },
        )
    )


@dg.asset(
    group_name=GROUP,
    deps=[importance_report],
    kinds={"polars", "png"},
    automation_condition=EAGER_PARTIAL_UPSTREAM,
    description="Every importance partition side by side: parameter x budget x horizon heat map and table.",
)
def importance_summary(paths: HpoPaths) -> dg.MaterializeResult:
    folder = analysis_dir(paths)
    frames = []
    for key in budget_horizon_partitions.get_partition_keys():
        b, h = key.keys_by_dimension["budget"], key.keys_by_dimension["horizon"]
        part = load_section(folder, f"importance_{b}_{h}")
        if (
            part is not None
            and part.tables.get("importances") is not None
            and part.tables["importances"].height
        ):
            frames.append(part.tables["importances"])
    section = imp.summary(frames)
    written = write_section(section, folder)
    return dg.MaterializeResult(
        metadata=_metadata(section, written, {"partitions_with_importances": len(frames)})
    )


@dg.asset(
    group_name=GROUP,
    deps=[trial_table, *MODEL_FILES],
    kinds={"polars", "png"},
    automation_condition=EAGER_PARTIAL_UPSTREAM,
    description="Best result per budget and horizon with an interval from the best evidence (test of retrained "
    "winners, else stored validation logits, else Hanley-McNeil), fit vs exact parameter count, verdict.",
)
def scaling_report(paths: HpoPaths) -> dg.MaterializeResult:
    folder = analysis_dir(paths)
    section = scaling(_table(paths), outputs_root=folder.parent)
    written = write_section(section, folder)
    verdicts = section.tables["verdicts"]
    return dg.MaterializeResult(
        metadata=_metadata(section, written, {"verdicts": dg.MetadataValue.md(markdown_table(verdicts))})
    )


@dg.asset(
    group_name=GROUP,
    deps=[trial_table],
    kinds={"polars"},
    automation_condition=EAGER,
    description="Best hyper-parameters per budget side by side, their distribution within one standard error of "
    "the best, and edge-of-space flags.",
)
def hp_consistency(paths: HpoPaths) -> dg.MaterializeResult:
    section = consistency(_table(paths))
    written = write_section(section, analysis_dir(paths))
    return dg.MaterializeResult(metadata=_metadata(section, written))


@dg.asset(
    group_name=GROUP,
    deps=[
        coverage_report,
        importance_summary,
        scaling_report,
        hp_consistency,
        diverged_analysis,
        *MODEL_FILES,
    ],
    kinds={"html"},
    automation_condition=ONCE_UPSTREAM_SETTLED,
    description="One self-contained HTML page (and Markdown) of the whole analysis: headline with intervals, "
    "each section's tables and plots, diverged trials with their nearest successful neighbour, file index.",
)
def hpo_report(paths: HpoPaths) -> dg.MaterializeResult:
    folder = analysis_dir(paths)
    names = ["scaling_report", "coverage_report", "importance_summary", "hp_consistency"]
    sections = [s for s in (load_section(folder, n) for n in names) if s is not None]
    files = {f"{n} (Markdown)": str(folder / f"{n}.md") for n in names if (folder / f"{n}.md").is_file()}
    files["trial table"] = str(paths.outputs(*outputs.TRIAL_TABLE_FILE))
    files["summary folder"] = str(paths.outputs(*outputs.SUMMARY_DIR, "_").parent)
    written = write_report(sections, _table(paths), folder, files, outputs_root=folder.parent)
    head = "\n".join(f"- {s}" for sec in sections for s in sec.headline[:3])
    meta: dict = {
        "headline": dg.MetadataValue.md(head or "_(no analysis yet)_"),
        "html": dg.MetadataValue.path(str(written["html"])),
        "markdown": dg.MetadataValue.path(str(written["md"])),
        "sections": len(sections),
    }
    for sec in sections:
        for name, png in sec.plots.items():
            meta[f"plot_{sec.name}_{name}"] = dg.MetadataValue.md(
                f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
            )
    return dg.MaterializeResult(metadata=meta)
