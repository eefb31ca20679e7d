"""Daily OHLCV loading and validation: one clear error per problem, naming the file and the row.

Any CSV (optionally gzipped) or Parquet file of daily bars is accepted; column names are matched
case-insensitively (``Adj Close``, ``adj_close`` and ``AdjClose`` are the same column) and dates may
be written in any of the common formats in ``DATE_FORMATS``. Nothing is repaired silently: a
missing price is an error, never a filled-in value.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path
from typing import TextIO

import polars as pl

from hpo_assets.settings import DATA_DIR, settings

PRICE_COLUMNS = ["open", "high", "low", "close"]
REQUIRED_COLUMNS = ["date", *PRICE_COLUMNS, "volume"]
OPTIONAL_COLUMNS = ["adj_close"]
DATE_FORMATS = [
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d-%m-%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y",
]
_ALIASES = {
    "date": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "volume": "volume",
}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
# Relative slack for the High/Low consistency checks: printed prices are rounded.
_REL_TOL = 1e-9
# The longest run of calendar days between two rows that a daily file may have. Weekends and holidays
# give up to 4; the longest US exchange closures are 7 days (2001-09-10 to 09-17, in the bundled data)
# and 1933's bank holiday (11 days, 03-03 to 03-14). A longer gap (a month of missing rows) would make
# the model's 80-row windows and forward labels span time the file does not show.
MAX_GAP_DAYS = 14


class MarketDataError(ValueError):
    """A market data file that cannot be used, with the file and row that show why."""


def default_market_path() -> Path:
    """The configured market file (``data.market_file``), relative to the project's ``data/`` folder."""
    configured = Path(str(settings()["data"]["market_file"])).expanduser()
    return configured if configured.is_absolute() else DATA_DIR / configured


def _normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _read_raw(path: Path) -> pl.DataFrame:
    """Read every column as text (CSV) or as stored (Parquet); unreadable files raise MarketDataError."""
    if not path.exists():
        raise MarketDataError(f"market data file not found: {path}")
    if not path.is_file():
        raise MarketDataError(f"market data path is not a file: {path}")
    if path.stat().st_size == 0:
        raise MarketDataError(f"market data file is empty: {path}")
    is_parquet = path.suffix.lower() in _PARQUET_SUFFIXES
    try:
        if is_parquet:
            return pl.read_parquet(path)
        header = _first_line(path)
        return pl.read_csv(
            path, infer_schema=False, truncate_ragged_lines=False, separator=_separator(header)
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, EOFError, ValueError) as exc:
        kind = "Parquet" if is_parquet else "CSV"
        reason = (None if is_parquet else _ragged_line(path)) or _first_line_of(exc)
        raise MarketDataError(f"market data file {path} is not a readable {kind} file: {reason}") from exc


def _first_line_of(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_text(path: Path) -> TextIO:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _first_line(path: Path) -> str:
    """The header line; binary content is refused here with a message instead of garbage column names."""
    try:
        with _open_text(path) as fh:
            line = fh.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise ValueError(f"not text ({type(exc).__name__}: {_first_line_of(exc)})") from exc
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in line):
        raise ValueError("not text (binary content in the first line)")
    return line


def _separator(header: str) -> str:
    """Comma unless the header clearly uses semicolons or tabs (common in European exports)."""
    if "," not in header:
        for sep in (";", "\t", "|"):
            if sep in header:
                return sep
    return ","


def _ragged_line(path: Path) -> str | None:
    """The first line whose field count differs from the header's, if that is what is wrong."""
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh, delimiter=_separator(_first_line(path)))
            header = next(reader, [])
            for line_no, fields in enumerate(reader, start=2):
                if fields and len(fields) != len(header):
                    return f"line {line_no} has {len(fields)} fields, the header has {len(header)}"
    except (csv.Error, UnicodeDecodeError, OSError, EOFError, ValueError):
        return None
    return None


def _rename_columns(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    mapping: dict[str, str] = {}
    for col in raw.columns:
        target = _ALIASES.get(_normalise_name(col))
        if target is None:
            continue
        if target in mapping.values():
            other = next(k for k, v in mapping.items() if v == target)
            raise MarketDataError(
                f"market data file {path}: columns {other!r} and {col!r} both mean {target!r}"
            )
        mapping[col] = target
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping.values()]
    if missing:
        found = ", ".join(raw.columns) or "none"
        found = found if len(found) <= 120 else found[:117] + "..."
        raise MarketDataError(
            f"market data file {path}: missing column(s) {', '.join(missing)} "
            f"(found: {found}; names are matched case-insensitively)"
        )
    return raw.select([pl.col(src).alias(dst) for src, dst in mapping.items()])


def _row_ref(i: int, is_csv: bool) -> str:
    """A 1-based data row number, plus the file line for CSV files (header is line 1)."""
    return f"row {i + 1} (line {i + 2})" if is_csv else f"row {i + 1}"


def _parse_dates(col: pl.Series, path: Path, is_csv: bool) -> pl.Series:
    if col.dtype == pl.Date:
        parsed = col
    elif col.dtype == pl.Datetime or isinstance(col.dtype, pl.Datetime):
        parsed = col.dt.date()
    else:
        text = col.cast(pl.String).str.strip_chars()
        best: pl.Series | None = None
        for fmt in DATE_FORMATS:
            candidate = text.str.to_date(fmt, strict=False)
            if best is None or candidate.null_count() < best.null_count():
                best = candidate
            if candidate.null_count() == text.null_count():
                break
        assert best is not None
        parsed = best
        bad = (parsed.is_null() & text.is_not_null()).arg_true()
        if len(bad):
            i = int(bad[0])
            raise MarketDataError(
                f"market data file {path}: {_row_ref(i, is_csv)}: unparsable date {text[i]!r} "
                f"({len(bad)} such row(s); accepted formats: {', '.join(DATE_FORMATS)})"
            )
    missing = parsed.is_null().arg_true()
    if len(missing):
        raise MarketDataError(
            f"market data file {path}: {_row_ref(int(missing[0]), is_csv)}: date is missing "
            f"({len(missing)} such row(s))"
        )
    return parsed.alias("date")


def _parse_number(col: pl.Series, name: str, path: Path, is_csv: bool) -> pl.Series:
    if col.dtype == pl.String:
        text = col.str.strip_chars()
        text = pl.select(
            pl.when(text.is_in(["", "null", "NULL", "NA", "N/A", "nan", "NaN"])).then(None).otherwise(text)
        ).to_series()
        values = text.cast(pl.Float64, strict=False)
        bad = (values.is_null() & text.is_not_null()).arg_true()
        if len(bad):
            i = int(bad[0])
            raise MarketDataError(
                f"market data file {path}: {_row_ref(i, is_csv)}: {name} is not a number: {text[i]!r}"
            )
    else:
        try:
            values = col.cast(pl.Float64)
        except pl.exceptions.PolarsError as exc:
            raise MarketDataError(
                f"market data file {path}: column {name} is not numeric ({col.dtype})"
            ) from exc
    return values.fill_nan(None).alias(name)


def _describe_runs(mask: pl.Series, dates: pl.Series) -> str:
    """'rows 5-7 (2001-01-02..2001-01-04)' for the first run of True values, plus the total count."""
    idx = mask.arg_true().to_list()
    start = end = idx[0]
    for i in idx[1:]:
        if i != end + 1:
            break
        end = i
    span = f"row {start + 1}" if start == end else f"rows {start + 1}-{end + 1}"
    when = f"{dates[start]}" if start == end else f"{dates[start]}..{dates[end]}"
    return f"{span} ({when}); {len(idx)} missing value(s) in total"


def validate_market(frame: pl.DataFrame, source: str = "market data", is_csv: bool = False) -> pl.DataFrame:
    """Check a frame with the canonical columns; return it sorted ascending or raise MarketDataError.

    A file written newest-first (common for exports) is reversed; any other order is an error,
    because a shuffled file usually means something else is wrong with it too.
    """
    path = Path(source)
    n = frame.height
    flipped = False

    def ref(i: int) -> str:
        return _row_ref(n - 1 - i if flipped else i, is_csv)

    if frame.height == 0:
        raise MarketDataError(f"market data file {path} has a header but no rows")
    dates = frame["date"]
    for name in [*PRICE_COLUMNS, "volume", *[c for c in OPTIONAL_COLUMNS if c in frame.columns]]:
        missing = frame[name].is_null()
        if missing.any():
            raise MarketDataError(
                f"market data file {path}: {name} is missing (empty or NaN) at {_describe_runs(missing, dates)}"
            )
        finite = frame[name].is_finite()
        if not finite.all():
            i = int((~finite).arg_true()[0])
            raise MarketDataError(f"market data file {path}: {ref(i)}: {name} is infinite")

    diffs = dates.diff().dt.total_days().slice(1)
    if frame.height > 1 and bool((diffs < 0).all()):
        frame = frame.reverse()
        dates = frame["date"]
        diffs = dates.diff().dt.total_days().slice(1)
        flipped = True  # row numbers in messages still refer to the file's order
    dup = (diffs == 0).arg_true()
    if len(dup):
        i = int(dup[0]) + 1
        raise MarketDataError(
            f"market data file {path}: {ref(i)}: duplicate date {dates[i]} "
            f"(same as {ref(i - 1)}; {len(dup)} duplicate(s))"
        )
    back = (diffs < 0).arg_true()
    if len(back):
        i = int(back[0]) + 1
        raise MarketDataError(
            f"market data file {path}: {ref(i)}: dates are not in ascending order "
            f"({dates[i]} comes after {dates[i - 1]})"
        )

    wide = (diffs > MAX_GAP_DAYS).arg_true()
    if len(wide):
        i = int(wide[0]) + 1
        raise MarketDataError(
            f"market data file {path}: {ref(i)}: {int(diffs[i - 1])} calendar days without a row "
            f"({dates[i - 1]} to {dates[i]}); at most {MAX_GAP_DAYS} are accepted (holidays and exchange "
            f"closures); {len(wide)} such gap(s): fill in the missing days or start the file after them"
        )

    for name in [*PRICE_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in frame.columns]]:
        bad = (frame[name] <= 0).arg_true()
        if len(bad):
            i = int(bad[0])
            raise MarketDataError(
                f"market data file {path}: {ref(i)} ({dates[i]}): non-positive price "
                f"{name}={frame[name][i]} ({len(bad)} such row(s))"
            )
    bad = (frame["volume"] < 0).arg_true()
    if len(bad):
        i = int(bad[0])
        raise MarketDataError(
            f"market data file {path}: {ref(i)} ({dates[i]}): negative volume {frame['volume'][i]}"
        )

    hi_floor = pl.max_horizontal(pl.col("open"), pl.col("close"))
    lo_ceiling = pl.min_horizontal(pl.col("open"), pl.col("close"))
    checks = frame.select(
        high_bad=pl.col("high") < hi_floor * (1 - _REL_TOL),
        low_bad=pl.col("low") > lo_ceiling * (1 + _REL_TOL),
    )
    for flag, text in (
        ("high_bad", "High is below max(Open, Close)"),
        ("low_bad", "Low is above min(Open, Close)"),
    ):
        bad = checks[flag].arg_true()
        if len(bad):
            i = int(bad[0])
            r = frame.row(i, named=True)
            raise MarketDataError(
                f"market data file {path}: {ref(i)} ({dates[i]}): {text}: "
                f"open={r['open']}, high={r['high']}, low={r['low']}, close={r['close']} ({len(bad)} such row(s))"
            )
    return frame


def load_market(path: str | Path) -> pl.DataFrame:
    """Read and validate a daily OHLCV file into ``date, open, high, low, close[, adj_close], volume``.

    Dates become ``pl.Date``, prices and volume ``Float64``, rows ascending by date. Any problem
    raises MarketDataError naming the file, the row and what is wrong.
    """
    path = Path(path).expanduser()
    raw = _read_raw(path)
    is_csv = path.suffix.lower() not in _PARQUET_SUFFIXES
    if raw.width == 0:
        raise MarketDataError(f"market data file {path} has no columns")
    renamed = _rename_columns(raw, path)
    if renamed.height == 0:
        raise MarketDataError(f"market data file {path} has a header but no rows")
    columns = [_parse_dates(renamed["date"], path, is_csv)]
    for name in [*PRICE_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in renamed.columns], "volume"]:
        columns.append(_parse_number(renamed[name], name, path, is_csv))
    frame = pl.DataFrame(columns)
    return validate_market(frame, str(path), is_csv=is_csv)
