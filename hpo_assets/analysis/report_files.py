"""Every analysis file `hpo-assets extract` writes, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from hpo_assets.analysis.diverged import write_diverged
from hpo_assets.analysis.summary_files import write_summary
from hpo_assets.trials.importers import ImportProblem


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
