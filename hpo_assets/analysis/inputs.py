"""What the analysis reads besides the trial table: the models issue's files (baselines, model cards of the
retrained winners) under the outputs root, and a winner's stored validation logits from its Optuna storage.
Every reader returns None (or an empty table) when the thing is absent, so the reports degrade, never fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.analysis.section import as_folder

# (source, source_path, study, trial_num) -> (validation logits, labels) in day order, or None
LogitsReader = Callable[[str | None, str | None, str, int], tuple[list[float], list[int]] | None]

BASELINE_SCHEMA = {
    "horizon": pl.String,
    "model": pl.String,
    "split": pl.String,
    "auc": pl.Float64,
    "auc_lo": pl.Float64,
    "auc_hi": pl.Float64,
    "log_loss": pl.Float64,
    "brier": pl.Float64,
    "n": pl.Int64,
    "positives": pl.Int64,
}


def baselines_path(outputs_root: Path, horizon: str) -> Path:
    """`<outputs>/baselines/baselines_<horizon>.json`, written by the `baselines` asset."""
    return as_folder(outputs_root) / "baselines" / f"baselines_{horizon}.json"


def model_card_path(outputs_root: Path, budget: str, horizon: str) -> Path:
    """`<outputs>/models/<budget>_<horizon>/card.json`, written by the `calibrated_model` asset."""
    return as_folder(outputs_root) / "models" / f"{budget}_{horizon}" / "card.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_baselines(outputs_root: Path | None, horizons: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """Every baseline row of the given horizons, with notes on files that exist but cannot be read."""
    rows, notes = [], []
    if outputs_root is None:
        return pl.DataFrame(schema=BASELINE_SCHEMA), notes
    for h in horizons:
        path = baselines_path(outputs_root, h)
        if not path.is_file():
            continue
        doc = _read_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            notes.append(f"{path}: not a baselines file ({{'horizon', 'rows': [...]}}); ignored")
            continue
        for r in doc["rows"]:
            if isinstance(r, dict):
                rows.append({k: r.get(k) for k in BASELINE_SCHEMA} | {"horizon": doc.get("horizon", h)})
    return pl.DataFrame(rows, schema=BASELINE_SCHEMA, strict=False), notes


def read_model_card(outputs_root: Path | None, budget: str, horizon: str) -> dict | None:
    """The retrained winner's card when it exists and carries a test AUC, else None."""
    if outputs_root is None:
        return None
    card = _read_json(model_card_path(outputs_root, budget, horizon))
    if (
        not isinstance(card, dict)
        or not isinstance(card.get("test"), dict)
        or card["test"].get("auc") is None
    ):
        return None
    return card


def stored_val_outputs(
    source: str | None, source_path: str | None, study: str, trial_num: int
) -> tuple[list[float], list[int]] | None:
    """The trial's validation logits and labels as the live study stored them (user attrs `val_logits`,
    `val_labels`), in day order; None for imports without them or a storage that cannot be opened."""
    if source != "optuna_storage" or not source_path:
        return None
    try:
        import optuna

        from hpo_assets.trials.importers.optuna_storage import open_source

        st = optuna.load_study(study_name=study, storage=open_source(source_path))
        trials = [t for t in st.get_trials(deepcopy=False) if t.number == trial_num]
    except (
        Exception
    ):  # a storage that moved or cannot be opened: no logits, the report says which evidence it used
        return None
    if not trials:
        return None
    attrs = trials[0].user_attrs
    logits, labels = attrs.get("val_logits"), attrs.get("val_labels")
    if (
        not isinstance(logits, list)
        or not isinstance(labels, list)
        or len(logits) != len(labels)
        or not logits
    ):
        return None
    return [float(v) for v in logits], [int(v) for v in labels]


def stored_study_attrs(source: str | None, source_path: str | None, study: str) -> dict:
    """The live study's own attributes (`n_train`, `n_val`, data window...), {} for imports or on failure."""
    if source != "optuna_storage" or not source_path:
        return {}
    try:
        import optuna

        from hpo_assets.trials.importers.optuna_storage import open_source

        return dict(optuna.load_study(study_name=study, storage=open_source(source_path)).user_attrs)
    except Exception:  # a storage that moved or cannot be opened: the sample count stays unknown
        return {}
