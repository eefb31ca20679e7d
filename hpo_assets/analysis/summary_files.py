"""The summary files researchers open: hpo_summary.csv/.parquet, hpo_full.json and a README defining every column."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.analysis.summary_readme import render_readme
from hpo_assets.locations import as_path
from hpo_assets.outputs import atomic_write, files_together, write_text
from hpo_assets.trials.extract import study_overview
from hpo_assets.trials.importers import ImportProblem
from hpo_assets.trials.schema import FLAT_COLUMNS

SUMMARY_CSV = "hpo_summary.csv"
SUMMARY_PARQUET = "hpo_summary.parquet"
FULL_JSON = "hpo_full.json"
README = "README.md"


def write_json_doc(path: Any, metadata: dict, table: pl.DataFrame) -> None:
    """`{"metadata": ..., "trials": [...]}` streamed to a temporary file (no second in-memory copy), then renamed."""
    atomic_write(path, lambda tmp: _stream_json_doc(tmp, metadata, table))


def _stream_json_doc(path: Path, metadata: dict, table: pl.DataFrame) -> None:
    with open(path, "wb") as fh:
        fh.write(('{"metadata": ' + json.dumps(metadata, indent=1) + ',\n"trials": ').encode())
        if table.height:
            fh.flush()
            table.write_json(fh)
        else:
            fh.write(b"[]")
        fh.write(b"}\n")


def curve_strings(df: pl.DataFrame) -> pl.DataFrame:
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


def file_metadata(
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
    out_dir: Any,
    *,
    sources: Sequence[str] = (),
    problems: Sequence[ImportProblem] = (),
    notes: Sequence[ImportProblem] = (),
    n_skipped: int = 0,
) -> dict[str, Any]:
    """Write hpo_summary.csv/.parquet, hpo_full.json and README.md into out_dir, replaced as one set."""
    out_dir = as_path(out_dir)
    with files_together(out_dir) as stage:
        _write_summary(table, stage, sources, problems, notes, n_skipped)
    return {name: out_dir / name for name in (SUMMARY_CSV, SUMMARY_PARQUET, FULL_JSON, README)}


def _write_summary(
    table: pl.DataFrame,
    out_dir: Any,
    sources: Sequence[str],
    problems: Sequence[ImportProblem],
    notes: Sequence[ImportProblem],
    n_skipped: int,
) -> None:
    paths = {name: out_dir / name for name in (SUMMARY_CSV, SUMMARY_PARQUET, FULL_JSON, README)}
    metadata = file_metadata(table, sources, problems, n_skipped)
    atomic_write(paths[SUMMARY_CSV], table.select(FLAT_COLUMNS).write_csv)
    atomic_write(paths[SUMMARY_PARQUET], table.write_parquet)
    write_json_doc(paths[FULL_JSON], metadata, table)
    write_text(
        paths[README],
        render_readme(
            table,
            study_overview(table),
            generated=metadata["generated"],
            sources=sources,
            problems=problems,
            notes=notes,
            n_skipped=n_skipped,
        ),
    )
