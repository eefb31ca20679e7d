"""Model-ready arrays for one horizon: inputs, labels, dates and a purged split.

No global scaling happens here: the model normalises each window itself (RevIN), so statistics of
later days can never leak into earlier windows through a fitted scaler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hpo_assets.data.features import FEATURE_COLUMNS, build_features
from hpo_assets.data.splits import Split, SplitError, chunked_split, contiguous_split
from hpo_assets.data.targets import add_labels, label_column, label_definition
from hpo_assets.locations import as_path
from hpo_assets.outputs import parquet_metadata, read_parquet
from hpo_assets.settings import settings

SPLIT_KINDS = ("contiguous", "chunks")
# What makes two trials' objectives comparable: the data, the label, the split and the model's inputs, as a
# study records them (search/partition.study_attrs). A study whose trials were measured on other values is
# never continued (search/runner.py); a model card records them (training/release.py).
DATA_IDENTITY = (
    "horizon_days",
    "label_mode",
    "label_threshold",
    "n_features",
    "feature_set",
    "context",
    "patch_len",
    "stride",
    "data_start",
    "data_end",
    "split_kind",
    "val_start",
    "test_start",
    "n_train",
    "n_val",
    "val_positives",
)
_CONTIGUOUS_KEYS = ("val_start", "test_start", "min_class_count", "embargo")
_CHUNK_KEYS = ("n_chunks", "val_fraction", "test_fraction", "seed", "min_class_count", "embargo")


@dataclass
class PreparedData:
    """Inputs ``x`` (rows x features), labels ``y`` (NaN = unlabelled) and a split of sample end rows."""

    x: np.ndarray
    y: np.ndarray
    dates: np.ndarray
    feature_names: list[str]
    split: Split
    context: int
    horizon: int
    label_threshold: float | None = None  # how the labels were defined; None when the source did not say
    label_mode: str | None = None

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def windows(self, idx: np.ndarray) -> np.ndarray:
        """The input windows (len(idx), context, n_features) of the samples ending at ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        offsets = np.arange(-self.context + 1, 1)
        return self.x[idx[:, None] + offsets[None, :]]

    def labels(self, idx: np.ndarray) -> np.ndarray:
        return self.y[np.asarray(idx, dtype=np.int64)]


def _slice_dates(frame: pl.DataFrame, start: str | None, end: str | None) -> pl.DataFrame:
    out = frame
    for bound, op in ((start, "start"), (end, "end")):
        if bound in (None, ""):
            continue
        try:
            day = pl.Series([str(bound)]).str.to_date("%Y-%m-%d")[0]
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"data window {op} {bound!r} is not a date (write it as YYYY-MM-DD)") from exc
        out = out.filter(pl.col("date") >= day) if op == "start" else out.filter(pl.col("date") <= day)
    if out.height == 0:
        raise ValueError(
            f"data window {start or '…'}..{end or '…'} holds no rows "
            f"(data covers {frame['date'].min()}..{frame['date'].max()})"
        )
    return out


def _split_kwargs(split_kind: str, given: dict[str, Any]) -> dict[str, Any]:
    keys = _CONTIGUOUS_KEYS if split_kind == "contiguous" else _CHUNK_KEYS
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for split kind {split_kind!r}; "
            f"allowed: {', '.join(keys)}"
        )
    defaults = settings()["split"]
    # None or "" means "the configured default", so config layers can pass their fields through as-is.
    return {k: defaults.get(k) if given.get(k) in (None, "") else given[k] for k in keys}


def prepare_dataset(
    frame: pl.DataFrame,
    horizon: int,
    context: int | None = None,
    split_kind: str | None = None,
    start: str | None = None,
    end: str | None = None,
    label_threshold: float | None = None,
    label_mode: str | None = None,
    **split_kwargs: Any,
) -> PreparedData:
    """Arrays and a purged split for one horizon from a features frame (or a raw market frame).

    ``label_threshold``/``label_mode`` say how a frame's existing labels were defined (recorded, not
    applied); labels computed here use the configuration's and record those.

    Features are built on the whole frame before ``start``/``end`` cut the window (so the window
    keeps its first days instead of spending them on indicator warm-up); labels are recomputed
    where missing and blanked when their label window runs past ``end``. Split options not given
    (or given as None / "") come from the ``split:`` section of the configuration.
    """
    context = int(settings()["model"]["context"] if context is None else context)
    split_kind = split_kind or settings()["split"]["kind"]
    if split_kind not in SPLIT_KINDS:
        raise ValueError(f"split kind {split_kind!r} is not one of {', '.join(SPLIT_KINDS)}")
    horizon = int(horizon)
    if "date" not in frame.columns:
        raise ValueError("frame has no 'date' column")
    if any(c not in frame.columns for c in FEATURE_COLUMNS):
        frame = build_features(frame)
    col = label_column(horizon)
    if col not in frame.columns:
        data_cfg = settings()["data"]
        label_threshold, label_mode = float(data_cfg["threshold"]), str(data_cfg["label_mode"])
        frame = add_labels(frame, (horizon,), threshold=label_threshold, mode=label_mode)
    window = _slice_dates(frame.sort("date"), start, end)
    x = window.select(FEATURE_COLUMNS).to_numpy().astype(np.float32)
    if not np.isfinite(x).all():
        rows, cols = np.nonzero(~np.isfinite(x))
        raise ValueError(
            f"input {FEATURE_COLUMNS[cols[0]]} is not finite on {window['date'][int(rows[0])]} "
            f"({len(rows)} non-finite value(s)); rebuild the features"
        )
    y = window[col].cast(pl.Float32).fill_null(float("nan")).to_numpy().astype(np.float32)
    y[max(len(y) - horizon, 0) :] = np.nan  # their label windows run past the data window's end
    dates = window["date"].to_numpy().astype("datetime64[D]")
    options = _split_kwargs(split_kind, split_kwargs)
    if split_kind == "contiguous":
        split = contiguous_split(dates, y, context, horizon, **options)
    else:
        split = chunked_split(dates, y, context, horizon, **options)
    return PreparedData(
        x=x,
        y=y,
        dates=dates,
        feature_names=list(FEATURE_COLUMNS),
        split=split,
        context=context,
        horizon=horizon,
        label_threshold=label_threshold,
        label_mode=label_mode,
    )


def load_features(features_parquet_path: str | Path | Any) -> pl.DataFrame:
    """The ``features`` asset's parquet; a clear error when it has not been materialized yet."""
    path = as_path(features_parquet_path)
    if not path.is_file():
        raise FileNotFoundError(f"features file not found: {path} (materialize the `features` asset first)")
    try:
        frame = read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValueError(f"features file {path} is not readable Parquet: {exc}") from exc
    missing = [c for c in ["date", *FEATURE_COLUMNS] if c not in frame.columns]
    if missing:
        raise ValueError(f"features file {path} lacks column(s) {', '.join(missing)}; rebuild the features")
    return frame


def load_prepared(
    features_parquet_path: str | Path | Any,
    horizon: int,
    context: int | None = None,
    split_kind: str | None = None,
    start: str | None = None,
    end: str | None = None,
    **split_kwargs: Any,
) -> PreparedData:
    """prepare_dataset() on the parquet written by the ``features`` asset (its label definition recorded)."""
    frame = load_features(features_parquet_path)
    threshold, mode = label_definition(parquet_metadata(as_path(features_parquet_path)))
    return prepare_dataset(
        frame,
        horizon,
        context=context,
        split_kind=split_kind,
        start=start,
        end=end,
        label_threshold=threshold,
        label_mode=mode,
        **split_kwargs,
    )


__all__ = ["PreparedData", "Split", "SplitError", "load_features", "load_prepared", "prepare_dataset"]
