"""A calibrated model on disk, and loading it back as features -> calibrated probabilities.

Folder layout (all small files beside the weights):
  weights.pt        the state dict (`torch.save`, loaded with `weights_only=True`)
  architecture.json shape, n_features, context, patch/stride, dropout, parametrization, param_count
  features.json     the input columns in order, and how inputs are normalised
  calibrator.json   the chosen calibrator (hpo_assets.calibration.calibrators)

Under RevIN (the default) the model normalises each window itself and no statistics are stored;
a "zscore" model was trained on inputs standardised with training-split statistics, so
`features.json` carries that mean and std and loading applies them to every input.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from hpo_assets.calibration.calibrators import CalibrationError, Calibrator
from hpo_assets.locations import as_path
from hpo_assets.model.params import Arch
from hpo_assets.model.patchtst import PatchTSTClassifier
from hpo_assets.training.retrain import predict_logits

WEIGHTS, ARCHITECTURE, FEATURES, CALIBRATOR = (
    "weights.pt",
    "architecture.json",
    "features.json",
    "calibrator.json",
)
REVIN = "per-window RevIN inside the model (each window's mean/std per feature); no global statistics"
ZSCORE = "inputs standardised with the training split's per-feature mean/std (stored here), then the model"


class SavedModelError(ValueError):
    """A model folder that is missing a file or holds one that cannot be read; names the file."""


def write_model_files(
    folder: Path,
    model: torch.nn.Module,
    architecture: dict[str, Any],
    feature_names: list[str],
    calibrator: Calibrator,
    input_scale: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """The four model files into `folder` (which the caller moves into place whole).

    `input_scale`: the training-split (mean, std) a "zscore" model's inputs were standardised with.
    """
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / WEIGHTS)
    (folder / ARCHITECTURE).write_text(json.dumps(architecture, indent=2))
    features: dict[str, Any] = {"columns": list(feature_names)}
    if input_scale is None:
        features["normalization"] = REVIN
    else:
        features.update(normalization=ZSCORE, mean=input_scale[0].tolist(), std=input_scale[1].tolist())
    (folder / FEATURES).write_text(json.dumps(features, indent=2))
    (folder / CALIBRATOR).write_text(json.dumps(calibrator.to_dict(), indent=2))


def _json(path: Any) -> Any:
    if not path.is_file():
        raise SavedModelError(f"model folder {path.parent} lacks {path.name}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"{path} is not readable JSON: {exc}") from exc


@dataclass
class CalibratedModel:
    """A trained classifier plus its calibrator; maps a feature frame to probabilities per row."""

    model: PatchTSTClassifier
    calibrator: Calibrator
    feature_names: list[str]
    context: int
    architecture: dict[str, Any]
    input_scale: tuple[np.ndarray, np.ndarray] | None = None

    def _inputs(self, frame: pl.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(
                f"feature frame lacks column(s) {', '.join(missing)} (the `features` asset's columns)"
            )
        if "date" in frame.columns and not frame["date"].is_sorted():
            raise ValueError("feature frame must be sorted by date (each row's window is the rows before it)")
        x = frame.select(self.feature_names).cast(pl.Float32).fill_null(float("nan")).to_numpy()
        if self.input_scale is not None:
            x = ((x - self.input_scale[0]) / self.input_scale[1]).astype(np.float32)
        return x

    def predict_logits(self, frame: pl.DataFrame) -> np.ndarray:
        """Raw logit of the window ending at each row; NaN where fewer than `context` rows precede it
        or its window holds a missing value."""
        x = self._inputs(frame)
        out = np.full(x.shape[0], np.nan)
        ends = np.arange(self.context - 1, x.shape[0])
        if ends.size == 0:
            return out
        finite = np.isfinite(x).all(axis=1).astype(np.int64)
        csum = np.concatenate([[0], np.cumsum(finite)])
        ok = ends[(csum[ends + 1] - csum[ends + 1 - self.context]) == self.context]
        out[ok] = predict_logits(self.model, np.nan_to_num(x), ok, self.context)
        return out

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability that the label is 1 for the window ending at each row (NaN: no window)."""
        z = self.predict_logits(frame)
        out = np.full(z.shape, np.nan)
        ok = np.isfinite(z)
        out[ok] = self.calibrator.predict(z[ok])
        return out


def _numbers(name: str, value: Any, *, at_least: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CalibrationError(
            f"parameter {name} must be a number or a list of numbers, got {value!r:.80}"
        ) from None
    if arr.size < at_least or not np.isfinite(arr).all() or isinstance(value, bool):
        raise CalibrationError(f"parameter {name} must hold {at_least}+ finite numbers, got {value!r:.80}")
    return arr


def check_calibrator(calibrator: Calibrator) -> None:
    """Refuse a calibrator whose parameters could not have been fitted (a tampered or corrupt file).

    Every parameter finite; a temperature above 0; an isotonic map with x and y of one length, both
    non-decreasing, y within [0, 1]. So a loaded model's probabilities always lie in [0, 1].
    """
    m, q = calibrator.method, calibrator.params
    if m == "platt":
        _numbers("a", q["a"])
        _numbers("b", q["b"])
    elif m in ("temperature", "temperature_bias"):
        if not _numbers("temperature", q["temperature"])[0] > 0:
            raise CalibrationError(f"parameter temperature must be > 0, got {q['temperature']!r}")
        if m == "temperature_bias":
            _numbers("bias", q["bias"])
    elif m == "isotonic":
        x, y = _numbers("x", q["x"]), _numbers("y", q["y"])
        if x.size != y.size:
            raise CalibrationError(f"isotonic x and y must have one length, got {x.size} and {y.size}")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
            raise CalibrationError("isotonic x and y must be non-decreasing")
        if y.min() < 0 or y.max() > 1:
            raise CalibrationError(f"isotonic y must lie in [0, 1], got {y.min():g}..{y.max():g}")
    for name in ("a", "b", "temperature", "bias"):
        if name in q and (isinstance(q[name], list) and len(q[name]) != 1):
            raise CalibrationError(f"parameter {name} must be one number, got {q[name]!r:.80}")


def _weights_reason(exc: Exception) -> str:
    """torch's message without its advice to retry with `weights_only=False` (that would run the pickle)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "weights_only" in text or "Unsupported global" in text or "pickle" in text.lower():
        return (
            "it is not a plain tensor state dict (it holds other pickled objects; refusing to unpickle "
            "them, since that can run code): replace the model folder with one written by calibrated_model"
        )
    return first


def load_calibrated_model(path: str | Path | Any) -> CalibratedModel:
    """The model saved in folder `path` (see the module docstring), on CPU, in eval mode.

    `path` may be a local folder or an object-store URL / `UPath` (the outputs root can be either).
    """
    folder = path if not isinstance(path, str) else as_path(path)
    if not folder.is_dir():
        raise SavedModelError(f"model folder {folder} does not exist (materialize `calibrated_model` first)")
    arch_info = _json(folder / ARCHITECTURE)
    features = _json(folder / FEATURES)
    try:
        calibrator = Calibrator.from_dict(_json(folder / CALIBRATOR))
        check_calibrator(calibrator)
    except CalibrationError as exc:
        raise SavedModelError(f"{folder / CALIBRATOR}: {exc}") from exc
    normalization = str(arch_info.get("normalization", "revin"))
    input_scale = None
    if normalization == "zscore":
        try:
            mean = np.asarray(features["mean"], dtype=np.float64)
            std = np.asarray(features["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise SavedModelError(
                f"{folder / FEATURES} lacks the zscore mean/std the model needs: {exc}"
            ) from exc
        if mean.shape != std.shape or mean.shape != (len(features["columns"]),) or not (std > 0).all():
            raise SavedModelError(
                f"{folder / FEATURES}: mean/std must hold one value per column (std > 0), "
                f"got {mean.shape} and {std.shape} for {len(features['columns'])} columns"
            )
        input_scale = (mean, std)
    try:
        arch = Arch(*(int(arch_info[k]) for k in ("d_model", "n_layers", "n_heads", "d_ff")))
        model = PatchTSTClassifier(
            len(features["columns"]),
            arch,
            int(arch_info["context"]),
            int(arch_info["patch_len"]),
            int(arch_info["stride"]),
            float(arch_info.get("dropout", 0.0)),
            str(arch_info.get("parametrization", "standard")),
            normalization=normalization,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SavedModelError(f"{folder / ARCHITECTURE} does not describe a model: {exc}") from exc
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise SavedModelError(f"model folder {folder} lacks {WEIGHTS}")
    try:
        with weights.open("rb") as fh:
            state = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # unpickling / shape mismatch: one message naming the file
        raise SavedModelError(
            f"{weights} cannot be loaded into {arch.label}: {_weights_reason(exc)}"
        ) from exc
    model.eval()
    return CalibratedModel(
        model, calibrator, list(features["columns"]), int(arch_info["context"]), arch_info, input_scale
    )
