"""Legacy export folders: `all_trials.json` items `{number, value, params, state}` without user_attrs, and a
`best_params.json` with `experiment, budget, horizon, n_trials, best_trial, best_value, best_params, search_space,
total_time_min, timestamp` (no tier). `value` is the validation ROC-AUC, maximised.

The reader is the template reader with the style fixed, so both styles normalize identically.
"""

from __future__ import annotations

from pathlib import Path

from hpo_assets.trials.importers.records import StudyRead
from hpo_assets.trials.importers.template_export import export_style, is_export_folder, read_export


def is_legacy_export(folder: Path) -> bool:
    """An export folder whose trials carry no user_attrs and which has no trial_metrics.csv."""
    return (
        is_export_folder(folder) and export_style(folder) == "legacy_export" and not _has_user_attrs(folder)
    )


def _has_user_attrs(folder: Path) -> bool:
    try:
        return '"user_attrs"' in (folder / "all_trials.json").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def read_legacy_export(folder: Path) -> StudyRead:
    """Read a legacy-style export folder (source label `legacy_export`)."""
    return read_export(Path(folder), style="legacy_export")
