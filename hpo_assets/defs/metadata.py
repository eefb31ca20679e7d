"""One way to show a table in the Dagster UI: typed columns the UI renders and sorts."""

from __future__ import annotations

import math
from typing import Any

import dagster as dg
import polars as pl

_TYPES = {
    pl.Boolean: "bool",
    pl.String: "string",
    pl.Date: "date",
    pl.Datetime: "datetime",
}


UI_DIGITS = 4


def _column_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    return _TYPES.get(dtype.base_type(), "string")


def _cell(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):  # JSON has no NaN: a missing number is null
        # 4 significant digits, as the reports print them (0.7756, -0.0309, 1e-05): 16 digits made the UI's
        # tables too wide to read; the asset's files keep full precision.
        return float(f"{value:.{UI_DIGITS}g}") if math.isfinite(value) else None
    return str(value)


def table(frame: pl.DataFrame, limit: int = 20) -> dg.MetadataValue:
    """The first `limit` rows of a polars frame as a `MetadataValue.table` (column types kept)."""
    head = frame.head(limit)
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, _column_type(dtype)) for name, dtype in head.schema.items()]
    )
    records = [dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in head.iter_rows(named=True)]
    return dg.MetadataValue.table(records=records, schema=schema)


def problems_table(problems: list[Any], limit: int = 50) -> dg.MetadataValue:
    """Import or read problems (objects with `.path` and `.problem`) as a two-column table."""
    frame = pl.DataFrame(
        {"path": [str(p.path) for p in problems], "problem": [str(p.problem) for p in problems]},
        schema={"path": pl.String, "problem": pl.String},
    )
    return table(frame, limit)
