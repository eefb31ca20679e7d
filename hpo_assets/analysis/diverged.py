"""Diverged trials: why each diverged (diagnosis columns), its full learning curve, and a similar run that did not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from hpo_assets.analysis.summary_files import curve_strings, file_metadata, write_json_doc
from hpo_assets.locations import as_path
from hpo_assets.outputs import atomic_write
from hpo_assets.trials.schema import CONFIG_COLUMNS

DIVERGED_CSV = "diverged_analysis.csv"
DIVERGED_JSON = "diverged_analysis.json"

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
    "min_val_loss_epoch",
    "min_val_loss",
    *CONFIG_COLUMNS,
    "arch_ratio",
    "arch_category",
    "similar_successful_study",
    "similar_successful_trial",
]


def diverged_table(df: pl.DataFrame) -> pl.DataFrame:
    """Diverged trials with their diagnosis columns and full learning curves."""
    return (
        df.filter(pl.col("diverged")).select(*DIAGNOSIS_COLUMNS, "learning_curve").sort("study", "trial_num")
    )


def write_diverged(table: pl.DataFrame, out_dir: Any, *, sources: Sequence[str] = ()) -> dict[str, Any]:
    """Write diverged_analysis.csv/.json (diverged trials, diagnosis columns, full curves) into out_dir."""
    out_dir = as_path(out_dir)
    paths = {name: out_dir / name for name in (DIVERGED_CSV, DIVERGED_JSON)}
    div = diverged_table(table)
    atomic_write(paths[DIVERGED_CSV], curve_strings(div).write_csv)
    metadata = {
        **file_metadata(table, sources, (), 0),
        "n_trials": div.height,
        "n_trials_in_table": table.height,
    }
    write_json_doc(paths[DIVERGED_JSON], metadata, div)
    return paths
