"""From sources to the one trial table: read, normalize, derive; a per-study overview and the extract report.

Used by `hpo-assets extract` and by the Dagster assets, so both build identical tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from hpo_assets.trials.derive import derive_table
from hpo_assets.trials.importers import ImportResult, read_sources
from hpo_assets.trials.schema import conform, empty_table, to_table


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
                "in_progress": pl.Boolean,
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
            pl.col("study_in_progress").any().alias("in_progress"),
        )
        .sort("study")
    )


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
    lines += _grouped("problem", problems)
    lines += _grouped("note", imp.all_notes)
    return "\n".join(lines)


def _grouped(kind: str, items: list) -> list[str]:
    """One line per distinct message; a message found in several places is counted, with a few places shown."""
    by_text: dict[str, list[str]] = {}
    for item in items:
        by_text.setdefault(item.problem, []).append(item.path)
    lines = []
    for text, paths in by_text.items():
        if len(paths) == 1:
            lines.append(f"  {kind}: {paths[0]}: {text}")
        else:
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            lines.append(f"  {kind} x{len(paths)}: {text} ({', '.join(paths[:3])}{more})")
    return lines
