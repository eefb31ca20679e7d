"""From sources to the analysis files researchers open: the trial table, the summary, the diverged analysis.

Used by `hpo-assets extract` and by the Dagster assets, so both write identical files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from hpo_assets.trials.derive import derive_table
from hpo_assets.trials.importers import ImportProblem, ImportResult, read_sources
from hpo_assets.trials.schema import FLAT_COLUMNS, conform, empty_table, to_table
from hpo_assets.trials.summary_readme import render_readme

SUMMARY_CSV = "hpo_summary.csv"
SUMMARY_PARQUET = "hpo_summary.parquet"
FULL_JSON = "hpo_full.json"
DIVERGED_CSV = "diverged_analysis.csv"
DIVERGED_JSON = "diverged_analysis.json"
README = "README.md"

DIAGNOSIS_COLUMNS = [
    "study",
    "budget",
    "horizon",
    "tier",
    "trial_num",
    "state",
    "state_reason",
    "diverged_reason",
    "diverge_epoch",
    "last_good_loss",
    "loss_at_diverge",
    "epochs_trained",
    "epochs_config",
    "best_epoch",
    "best_val_loss",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "param_count",
    "lr",
    "dropout",
    "weight_decay",
    "warmup_steps",
    "batch_size",
    "arch_ratio",
    "arch_category",
    "similar_successful_study",
    "similar_successful_trial",
]


@dataclass
class Extract:
    """The normalized, derived trial table and what reading the sources found."""

    table: pl.DataFrame
    imported: ImportResult
    sources: list[str]


def build_table(rows_or_tables: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate tables (schema-conformed) and compute the derived, study-level columns."""
    frames = [conform(t) for t in rows_or_tables if t.height]
    return derive_table(pl.concat(frames).sort("study", "trial_num") if frames else empty_table())


def extract(sources: Sequence[str], study_names: list[str] | None = None) -> Extract:
    """Read every source and build the one trial table (nothing is written)."""
    imported = read_sources(sources, study_names)
    return Extract(
        table=build_table([to_table(imported.rows)]), imported=imported, sources=[str(s) for s in sources]
    )


def study_overview(df: pl.DataFrame) -> pl.DataFrame:
    """One row per study: trials, complete, best value and trial, duplicates, diverged."""
    if df.is_empty():
        return pl.DataFrame(
            schema={
                "study": pl.String,
                "source": pl.String,
                "budget": pl.String,
                "horizon": pl.String,
                "tier": pl.String,
                "trials": pl.UInt32,
                "complete": pl.UInt32,
                "best_value": pl.Float64,
                "best_trial": pl.Int64,
                "duplicates": pl.UInt32,
                "diverged": pl.UInt32,
            }
        )
    best = pl.col("rank_in_study") == 1
    return (
        df.group_by("study", maintain_order=True)
        .agg(
            pl.col("source").first(),
            pl.col("budget").first(),
            pl.col("horizon").first(),
            pl.col("tier").first(),
            pl.len().alias("trials"),
            (pl.col("state") == "COMPLETE").sum().alias("complete"),
            pl.col("objective").filter(best).first().alias("best_value"),
            pl.col("trial_num").filter(best).min().alias("best_trial"),
            pl.col("duplicate_of").is_not_null().sum().alias("duplicates"),
            pl.col("diverged").sum().alias("diverged"),
        )
        .sort("study")
    )


def diverged_table(df: pl.DataFrame) -> pl.DataFrame:
    """Diverged trials with their diagnosis columns and full learning curves."""
    return (
        df.filter(pl.col("diverged")).select(*DIAGNOSIS_COLUMNS, "learning_curve").sort("study", "trial_num")
    )


def _write_json_doc(path: Path, metadata: dict, table: pl.DataFrame) -> None:
    """`{"metadata": ..., "trials": [...]}` written straight to the file (no second in-memory copy)."""
    with open(path, "wb") as fh:
        fh.write(('{"metadata": ' + json.dumps(metadata, indent=1) + ',\n"trials": ').encode())
        if table.height:
            fh.flush()
            table.write_json(fh)
        else:
            fh.write(b"[]")
        fh.write(b"}\n")


def _curve_strings(df: pl.DataFrame) -> pl.DataFrame:
    """Curves as JSON lists in two flat columns, so a spreadsheet still shows them."""
    curves = df["learning_curve"].to_list()
    return df.drop("learning_curve").with_columns(
        pl.Series(
            "val_loss_curve", [json.dumps([r["val_loss"] for r in c or []]) for c in curves], dtype=pl.String
        ),
        pl.Series(
            "train_loss_curve",
            [json.dumps([r["train_loss"] for r in c or []]) for c in curves],
            dtype=pl.String,
        ),
    )


def _metadata(
    table: pl.DataFrame, sources: Sequence[str], problems: Sequence[ImportProblem], n_skipped: int
) -> dict:
    return {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "n_studies": table["study"].n_unique(),
        "n_trials": table.height,
        "n_diverged": int(table["diverged"].sum()) if table.height else 0,
        "n_skipped": n_skipped,
        "sources": [str(s) for s in sources],
        "problems": [str(p) for p in problems],
    }


def write_summary(
    table: pl.DataFrame,
    out_dir: Path,
    *,
    sources: Sequence[str] = (),
    problems: Sequence[ImportProblem] = (),
    notes: Sequence[ImportProblem] = (),
    n_skipped: int = 0,
) -> dict[str, Path]:
    """Write hpo_summary.csv/.parquet, hpo_full.json and README.md into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in (SUMMARY_CSV, SUMMARY_PARQUET, FULL_JSON, README)}
    metadata = _metadata(table, sources, problems, n_skipped)
    table.select(FLAT_COLUMNS).write_csv(paths[SUMMARY_CSV])
    table.write_parquet(paths[SUMMARY_PARQUET])
    _write_json_doc(paths[FULL_JSON], metadata, table)
    paths[README].write_text(
        render_readme(
            table,
            study_overview(table),
            generated=metadata["generated"],
            sources=sources,
            problems=problems,
            notes=notes,
            n_skipped=n_skipped,
        )
    )
    return paths


def write_diverged(table: pl.DataFrame, out_dir: Path, *, sources: Sequence[str] = ()) -> dict[str, Path]:
    """Write diverged_analysis.csv/.json (diverged trials, diagnosis columns, full curves) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in (DIVERGED_CSV, DIVERGED_JSON)}
    div = diverged_table(table)
    _curve_strings(div).write_csv(paths[DIVERGED_CSV])
    metadata = {**_metadata(table, sources, (), 0), "n_trials": div.height, "n_trials_in_table": table.height}
    _write_json_doc(paths[DIVERGED_JSON], metadata, div)
    return paths


def write_outputs(
    table: pl.DataFrame,
    out_dir: Path,
    *,
    sources: Sequence[str] = (),
    problems: Sequence[ImportProblem] = (),
    notes: Sequence[ImportProblem] = (),
    n_skipped: int = 0,
) -> dict[str, Path]:
    """All six analysis files: write_summary + write_diverged."""
    paths = write_summary(
        table, out_dir, sources=sources, problems=problems, notes=notes, n_skipped=n_skipped
    )
    return {**paths, **write_diverged(table, out_dir, sources=sources)}


def format_report(result: Extract) -> str:
    """The short text `hpo-assets extract` prints: per-study table, counts, problems."""
    overview = study_overview(result.table)
    lines = [
        f"{'study':<34} {'source':<16} {'trials':>6} {'best':>9} {'best#':>5} {'dups':>5} {'diverged':>8}"
    ]
    for r in overview.iter_rows(named=True):
        best = f"{r['best_value']:.4f}" if r["best_value"] is not None else "-"
        best_trial = str(r["best_trial"]) if r["best_trial"] is not None else "-"
        lines.append(
            f"{r['study']:<34} {r['source']:<16} {r['trials']:>6} {best:>9} {best_trial:>5} "
            f"{r['duplicates']:>5} {r['diverged']:>8}"
        )
    imp = result.imported
    problems = imp.all_problems
    lines.append(
        f"read {imp.n_read} trials from {len(imp.studies)} studies; skipped {imp.n_skipped}; "
        f"{len(problems)} problem(s)"
    )
    lines += [f"  problem: {p}" for p in problems]
    lines += [f"  note: {n}" for n in imp.all_notes]
    return "\n".join(lines)
