"""A tier's input count comes from what the study or trial recorded; the tier name is only a fallback."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo_assets.model.params import Arch, count_parameters
from hpo_assets.trials.extract import extract
from hpo_assets.trials.importers.optuna_storage import recorded_input_count
from hpo_assets_tests.fixtures.contract_studies import journal_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
ARCH = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256}


def _study(path: Path, study_attrs: dict, trial_attrs: dict) -> None:
    """One COMPLETE trial written by another project (not hpo_study) into a journal under an a200 folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=path.stem, storage=journal_storage(path), direction="maximize")
    for k, v in {"objective": "val_auc", **study_attrs}.items():
        study.set_user_attr(k, v)
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-3)
    for k, v in {**ARCH, **trial_attrs}.items():
        trial.set_user_attr(k, v)
    study.tell(trial, 0.7)


@pytest.mark.parametrize(
    ("study_attrs", "trial_attrs", "expected"),
    [
        ({}, {"n_features": 211}, 211),  # the trial's own record
        ({"feature_set": ",".join(f"f{i}" for i in range(211))}, {}, 211),  # the study's feature list
        ({"n_features": 211}, {}, 211),
        ({}, {}, 205),  # nothing recorded: a200 assumed to be 200 indicators + 5 OHLCV
    ],
)
def test_the_recorded_input_count_wins_over_the_tier(
    tmp_path: Path, study_attrs, trial_attrs, expected
) -> None:
    _study(tmp_path / "phase6c_a200" / "hpo_2m_h1.journal", study_attrs, trial_attrs)
    (row,) = extract([str(tmp_path)]).table.iter_rows(named=True)
    assert row["tier"] == "a200" and row["n_features"] == expected
    assert row["param_count"] == count_parameters(Arch(64, 2, 4, 256), expected)


def test_recorded_input_count_reads_counts_and_lists_trial_first() -> None:
    assert recorded_input_count({"n_features": 205}, {"input_dim": 211}) == 211
    assert recorded_input_count({"features": ["a", "b", "c"]}, {}) == 3
    assert recorded_input_count({"n_features": True, "feature_set": ""}, {"n_inputs": 0}) is None
