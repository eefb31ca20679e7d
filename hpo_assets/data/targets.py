"""Binary labels: does the price rise by at least ``threshold`` within the next h trading days?

``mode="high"``: 1 if max(High[t+1..t+h]) >= (1 + threshold) * Close[t] (an intraday touch counts);
``mode="close"``: the same with Close[t+1..t+h]. The last h rows have no future to look at, so
their label is null, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl

LABEL_MODES = ("high", "close")


def label_column(h: int) -> str:
    """The column holding the label for horizon h, e.g. ``label_h3``."""
    return f"label_h{int(h)}"


def _check_args(frame: pl.DataFrame, horizons: Iterable[int], threshold: float, mode: str) -> list[int]:
    if mode not in LABEL_MODES:
        raise ValueError(f"label mode {mode!r} is not one of {', '.join(LABEL_MODES)}")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold <= -1:
        raise ValueError(
            f"label threshold must be a finite number above -1 (a fraction, 0.01 = 1%), got {threshold!r}"
        )
    hs = list(horizons)
    if not hs or any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in hs):
        raise ValueError(f"horizons must be positive whole numbers of days, got {hs!r}")
    needed = ["close", "high" if mode == "high" else "close"]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot label: frame lacks column(s) {', '.join(missing)}")
    return hs


def label_expr(h: int, threshold: float = 0.01, mode: str = "high") -> pl.Expr:
    """The label for horizon h as a polars expression (Int8, null where the future is unknown)."""
    source = "high" if mode == "high" else "close"
    future = [pl.col(source).shift(-k) for k in range(1, h + 1)]
    future_max = pl.max_horizontal(future)
    hit = (future_max >= (1.0 + threshold) * pl.col("close")).cast(pl.Int8)
    # shift(-h) is null exactly for the last h rows: no full label window there.
    return (
        pl.when(pl.col(source).shift(-h).is_null())
        .then(None)
        .otherwise(hit)
        .cast(pl.Int8)
        .alias(label_column(h))
    )


def add_labels(
    frame: pl.DataFrame,
    horizons: Iterable[int] = (1, 3, 5),
    threshold: float = 0.01,
    mode: str = "high",
) -> pl.DataFrame:
    """The frame with one ``label_h{h}`` column (Int8: 1, 0, or null for the last h rows) per horizon."""
    hs = _check_args(frame, horizons, threshold, mode)
    return frame.with_columns([label_expr(h, float(threshold), mode) for h in hs])


_META_THRESHOLD, _META_MODE = "hpo_assets.label_threshold", "hpo_assets.label_mode"


def label_metadata(threshold: float, mode: str) -> dict[str, str]:
    """How the labels were defined, as file metadata: a study trained on the file can record it."""
    return {_META_THRESHOLD: repr(float(threshold)), _META_MODE: str(mode)}


def label_definition(metadata: dict[str, str]) -> tuple[float | None, str | None]:
    """(threshold, mode) from `label_metadata` in a file's metadata; None for what it does not hold."""
    try:
        threshold = float(metadata[_META_THRESHOLD]) if _META_THRESHOLD in metadata else None
    except ValueError:
        threshold = None
    mode = metadata.get(_META_MODE)
    return threshold, mode if mode in LABEL_MODES else None


def positive_rates(frame: pl.DataFrame, horizons: Iterable[int]) -> dict[int, float | None]:
    """Share of labelled rows that are positive, per horizon (None when no row is labelled)."""
    out: dict[int, float | None] = {}
    for h in horizons:
        col = frame[label_column(h)].drop_nulls()
        out[int(h)] = float(col.mean()) if len(col) else None  # type: ignore[arg-type]
    return out
