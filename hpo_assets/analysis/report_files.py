"""Every analysis file `hpo-assets extract` writes, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.analysis.diverged import write_diverged
from hpo_assets.analysis.summary_files import write_summary
from hpo_assets.locations import as_path
from hpo_assets.outputs import files_together
from hpo_assets.trials.importers import ImportProblem


def write_outputs(
    table: pl.DataFrame,
    out_dir: Any,
    *,
    sources: Sequence[str] = (),
    problems: Sequence[ImportProblem] = (),
    notes: Sequence[ImportProblem] = (),
    n_skipped: int = 0,
) -> dict[str, Path]:
    """All six analysis files (write_summary + write_diverged), replaced in `out_dir` as one set."""
    out_dir = as_path(out_dir)
    with files_together(out_dir) as stage:
        paths = write_summary(
            table, stage, sources=sources, problems=problems, notes=notes, n_skipped=n_skipped
        )
        paths = {**paths, **write_diverged(table, stage, sources=sources)}
    return {key: out_dir / path.name for key, path in paths.items()}
