"""What a trial was trained and measured on: the study's own record, else what names and paths say.

Imported studies rarely record their data; their metadata can even lie (a "2M" study of 0.2M models, a
tier that is not the folder's). So budget labels never stand in for parameter counts: the count is the
closed formula of `model/params.py` on the trial's own architecture and the number of inputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hpo_assets.model.params import Arch, count_parameters
from hpo_assets.settings import settings
from hpo_assets.trials.names import parse_study_name

# study user attribute (as `hpo_study` writes it, search/partition.py) -> trial-table column
STUDY_ATTR_COLUMNS = {
    "label_mode": "label_mode",
    "label_threshold": "label_threshold",
    "split_kind": "split_kind",
    "data_start": "data_start",
    "data_end": "data_end",
    "val_start": "val_start",
    "test_start": "test_start",
    "n_train": "train_size",
    "n_val": "val_size",
    "val_positives": "val_positives",
    "n_features": "n_features",
    "feature_set": "feature_set",
}
_INT_COLUMNS = {"train_size", "val_size", "val_positives", "n_features"}
_FLOAT_COLUMNS = {"label_threshold"}
OHLCV_INPUTS = 5  # a tier a<n> is OHLCV plus n indicators (search/partition.py: feature_tier)
TIER_SEARCH_DEPTH = 3  # the study folder and two above it: deeper folders (a user's home) say nothing


def _typed(column: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None
    if column in _INT_COLUMNS:
        return value if isinstance(value, int) else None
    if column in _FLOAT_COLUMNS:
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
    return str(value)


def study_provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """The provenance columns a study's user attributes hold (absent or malformed ones null)."""
    return {col: _typed(col, attrs.get(attr)) for attr, col in STUDY_ATTR_COLUMNS.items()}


def tier_from_path(path: str | Path) -> str | None:
    """The tier named by the nearest folder on `path` (the study folder first, then up to two above it):
    `phase6c_a100/hpo_2m_h1` -> a100."""
    folder = Path(path)
    for part in [folder, *folder.parents][:TIER_SEARCH_DEPTH]:
        tier = parse_study_name(part.name).tier
        if tier is not None:
            return tier
    return None


def n_features_of_tier(tier: str | None) -> int | None:
    """a<n> -> n + 5 inputs (a50 -> 55); None for anything else."""
    if not tier or not tier.startswith("a") or not tier[1:].isdigit():
        return None
    return int(tier[1:]) + OHLCV_INPUTS


def formula_param_count(
    row: dict[str, Any], n_features: int | None, shape: dict[str, Any] | None = None
) -> int | None:
    """Exact parameters of the row's architecture with `n_features` inputs, at the study's context/patch/
    stride (`shape`) or the project's defaults; None when the architecture is incomplete or invalid."""
    dims = [row.get(k) for k in ("d_model", "n_layers", "n_heads", "d_ff")]
    if n_features is None or any(not isinstance(v, int) for v in dims):
        return None
    model = settings()["model"]
    shape = shape or {}
    geometry = {
        k: shape.get(k) if isinstance(shape.get(k), int) else int(model[k])
        for k in ("context", "patch_len", "stride")
    }
    try:
        return count_parameters(Arch(*dims), n_features, **geometry)  # type: ignore[arg-type]
    except ValueError:  # d_model not divisible by n_heads, context shorter than a patch...
        return None


def fill_imported(
    row: dict[str, Any],
    *,
    tier: str | None,
    n_features: int | None,
    shape: dict[str, Any] | None = None,
    keep_recorded_count: bool = False,
) -> dict[str, Any]:
    """Tier, n_features and param_count of an imported row: the formula's count wherever it applies (a
    recorded count was another model's, or a label's); the recorded one only where the formula cannot be
    applied, or with `keep_recorded_count` (the live contract: the trial counted its own model)."""
    row["tier"] = row.get("tier") or tier
    if row.get("n_features") is None:
        row["n_features"] = n_features if n_features is not None else n_features_of_tier(row["tier"])
    if keep_recorded_count and row.get("param_count") is not None:
        return row
    computed = formula_param_count(row, row["n_features"], shape)
    if computed is not None:
        row["param_count"] = computed
    return row
