"""Which evidence a study's winner has: its own retrained model card (test folds), its validation
logits, or its validation size; a card is evidence only for the study, trial and data it records.

A model card is found by budget and horizon (`models/<budget>_<horizon>/card.json`), but two studies of
the same budget and horizon (an import next to a live study) must never share one: the card is used
for a winner only when its study name, trial number and recorded data identity (window, split, label,
features) all match; otherwise the point keeps its own validation evidence and a note says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.analysis.inputs import model_card_path, read_model_card
from hpo_assets.data.dataset import DATA_IDENTITY

# the data identity a card and a study must agree on: the one DATA_IDENTITY, less the sample counts that a
# fold retrain legitimately changes
SIZE_KEYS = ("n_train", "n_val", "val_positives")
IDENTITY_KEYS = tuple(k for k in DATA_IDENTITY if k not in SIZE_KEYS)
PREDICTIONS_FILE = "test_predictions.parquet"


def kind_of(evidence: str) -> str:
    """The comparable kind of an evidence label: test, validation or none."""
    if evidence == "test":
        return "test"
    if evidence in ("validation_logits", "hanley_mcneil"):
        return "validation"
    return "none"


def card_study(card: dict[str, Any]) -> tuple[str | None, int | None]:
    trial: dict[str, Any] = card["trial"] if isinstance(card.get("trial"), dict) else {}
    study = card.get("study") or trial.get("study_name")
    number = trial.get("trial_number")
    return (str(study) if study is not None else None), (int(number) if isinstance(number, int) else None)


def matching_card(
    outputs_root: Path | None, row: dict[str, Any], study_attrs: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """(card, None) when the budget/horizon card is this winner's own; (None, why) when a card exists but
    belongs to another study, trial or data; (None, None) when there is none."""
    card = read_model_card(outputs_root, row["budget"], row["horizon"])
    if card is None:
        return None, None
    where = f"model card {row['budget']}_{row['horizon']}"
    study, number = card_study(card)
    if study != row["study"]:
        return None, (
            f"{where} is for study {study or 'unrecorded'} trial {number}, not {row['study']}: "
            f"not used as {row['study']}'s evidence"
        )
    if number != row["trial_num"]:
        return None, (
            f"{where} retrained trial {number} of {study}, whose best trial is now "
            f"{row['trial_num']}: stale, not used (re-materialize calibrated_model)"
        )
    recorded = card.get("data_identity") if isinstance(card.get("data_identity"), dict) else None
    if recorded is None:
        return None, f"{where} records no data identity (an older card): not used as evidence"
    differ = [
        f"{k}: card {recorded.get(k)!r}, study {study_attrs.get(k)!r}"
        for k in IDENTITY_KEYS
        if recorded.get(k) is not None and study_attrs.get(k) is not None and recorded[k] != study_attrs[k]
    ]
    if differ:
        return None, f"{where} was made on other data than {study}'s ({'; '.join(differ)}): not used"
    return card, None


def test_predictions(outputs_root: Path, budget: str, horizon: str) -> pl.DataFrame | None:
    """The card's long test predictions (fold, date, label, seed, logit), or None when absent/unreadable."""
    path = model_card_path(outputs_root, budget, horizon).with_name(PREDICTIONS_FILE)
    try:
        df = pl.read_parquet(path)
    except Exception:  # absent or torn: the comparison falls back to the card's own interval, unpaired
        return None
    need = {"fold", "date", "label", "seed", "logit"}
    return df if need <= set(df.columns) and df.height else None
