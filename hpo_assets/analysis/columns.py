"""Which trial-table columns the analysis reads: the searched parameters under their research names, and
optional (newer) columns looked up under every name they may carry, so older tables degrade gracefully."""

from __future__ import annotations

import json
import re

import polars as pl

from hpo_assets.trials.schema import PARAM_COLUMNS

# Research names for the architecture columns: importance treats them as separate parameters.
DISPLAY = {"d_model": "width", "n_layers": "depth", "n_heads": "heads", "d_ff": "ff_width"}

# Optional columns (provenance, replicates) under the names a table may use for them.
VAL_SIZE = ("val_size", "n_val", "val_n", "n_val_samples")
VAL_POSITIVES = ("val_positives", "pos_val", "val_pos", "n_val_positives")
TRAIN_SIZE = ("train_size", "n_train", "n_train_samples")
REPLICATE_OF = ("replicate_of",)

_ARCH = re.compile(r"^d(\d+)-L(\d+)-H(\d+)-F(\d+)$")


def first_column(df: pl.DataFrame, names: tuple[str, ...]) -> str | None:
    """The first of `names` that the table has, else None."""
    return next((n for n in names if n in df.columns), None)


def param_columns(df: pl.DataFrame) -> list[str]:
    """Searched parameters the table holds (the schema's list; any extra one a newer table adds is kept)."""
    return [c for c in PARAM_COLUMNS if c in df.columns]


def with_architecture(df: pl.DataFrame) -> pl.DataFrame:
    """Fill d_model/n_layers/n_heads/d_ff from an `arch` label in params_json where the columns are null
    (a study that searched one label still gets width, depth, heads and ff width as parameters)."""
    arch_cols = list(DISPLAY)
    if df.is_empty() or "params_json" not in df.columns:
        return df
    missing = df.select(pl.any_horizontal(pl.col(arch_cols).is_null()).any()).item()
    if not missing:
        return df
    parsed: dict[str, list[int | None]] = {c: [] for c in arch_cols}
    for text in df["params_json"].to_list():
        label = None
        if text:
            try:
                label = json.loads(text).get("arch")
            except (ValueError, AttributeError):
                label = None
        m = _ARCH.match(label.strip()) if isinstance(label, str) else None
        for col, g in zip(arch_cols, m.groups() if m else (None,) * 4, strict=True):
            parsed[col].append(int(g) if g is not None else None)
    return df.with_columns(
        [pl.coalesce(pl.col(c), pl.Series(c, parsed[c], dtype=pl.Int64)).alias(c) for c in arch_cols]
    )


def horizon_days(label: str | None) -> int | None:
    """`h3` -> 3; None for a label that is not of that form."""
    if not label:
        return None
    m = re.fullmatch(r"h(\d+)", label.strip())
    return int(m.group(1)) if m else None


def budget_size(label: str | None) -> float:
    """`2M` -> 2e6, `500K` -> 5e5, `2B` -> 2e9: for ordering budget labels (never as the x of a fit)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMB]?)", (label or "").strip().upper())
    if not m:
        return float("inf")
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}[m.group(2)]
