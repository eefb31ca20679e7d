"""A model folder someone edited by hand (issue 22, case 6): a tampered calibrator.json is refused on load (it
could yield probabilities above 1), and tampered weights are refused without torch's advice to unpickle them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from hpo_assets.calibration.calibrators import Calibrator
from hpo_assets.model.params import Arch
from hpo_assets.model.patchtst import PatchTSTClassifier
from hpo_assets.training.saved_model import SavedModelError, load_calibrated_model, write_model_files

ARCH = Arch(16, 1, 2, 32)
COLUMNS = ["f0", "f1", "f2"]
CONTEXT = 32


class NotATensor:  # what a pickle with code in it would deserialise to
    pass


def _folder(tmp_path: Path, calibrator: dict) -> Path:
    folder = tmp_path / "model"
    model = PatchTSTClassifier(len(COLUMNS), ARCH, CONTEXT, 16, 8, 0.0)
    architecture = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "context": CONTEXT,
                    "patch_len": 16, "stride": 8, "dropout": 0.0}  # fmt: skip
    write_model_files(folder, model, architecture, COLUMNS, Calibrator.from_dict(calibrator))
    return folder


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {"date": pl.date_range(pl.date(2020, 1, 1), pl.date(2020, 3, 31), eager=True)}
    ).with_columns(*(pl.Series(c, rng.normal(size=91) * 50) for c in COLUMNS))


ISOTONIC = {"method": "isotonic", "params": {"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.4, 0.9]}}


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"x": [-1.0, 0.0, 1.0], "y": [0.1, 0.4, 1.5]}, "must lie in \\[0, 1\\]"),
        ({"x": [-1.0, 0.0, 1.0], "y": [0.9, 0.4, 0.1]}, "non-decreasing"),
        ({"x": [-1.0, 0.0], "y": [0.1, 0.4, 0.9]}, "one length"),
        ({"x": [-1.0, "nan", 1.0], "y": [0.1, 0.4, 0.9]}, "finite numbers"),
    ],
)
def test_a_tampered_isotonic_calibrator_is_refused(tmp_path: Path, params: dict, why: str) -> None:
    folder = _folder(tmp_path, ISOTONIC)
    proba = load_calibrated_model(folder).predict_proba(_frame())
    ok = proba[np.isfinite(proba)]
    assert ok.size and ok.min() >= 0.1 and ok.max() <= 0.9  # the fitted map, clipped to its range
    (folder / "calibrator.json").write_text(json.dumps({"method": "isotonic", "params": params}))
    with pytest.raises(SavedModelError, match=f"calibrator.json: .*{why}"):
        load_calibrated_model(folder)


@pytest.mark.parametrize(
    "calibrator",
    [
        {"method": "temperature", "params": {"temperature": 0.0}},
        {"method": "temperature", "params": {"temperature": -2.0}},
        {"method": "temperature_bias", "params": {"temperature": 1.0, "bias": "x"}},
        {"method": "platt", "params": {"a": float("inf"), "b": 0.0}},
    ],
)
def test_a_tampered_parametric_calibrator_is_refused(tmp_path: Path, calibrator: dict) -> None:
    folder = _folder(tmp_path, ISOTONIC)
    (folder / "calibrator.json").write_text(json.dumps(calibrator))
    with pytest.raises(SavedModelError, match="calibrator.json: parameter"):
        load_calibrated_model(folder)


def test_pickled_objects_in_weights_are_refused_without_suggesting_to_unpickle_them(tmp_path: Path) -> None:
    folder = _folder(tmp_path, ISOTONIC)
    torch.save({"x": NotATensor()}, folder / "weights.pt")
    with pytest.raises(SavedModelError) as info:
        load_calibrated_model(folder)
    message = str(info.value)
    assert "weights.pt" in message and "refusing to unpickle" in message
    assert "weights_only" not in message and len(message.splitlines()) == 1
