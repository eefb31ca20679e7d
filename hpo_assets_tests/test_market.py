"""Market file loading: every malformed input gives one clear message naming the file and row."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from hpo_assets.data.market import MarketDataError, default_market_path, load_market
from hpo_assets_tests.conftest import SP500

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD_ROWS = [
    "1/4/1999,100,102,99,101,101,1000",
    "1/5/1999,101,103,100,102,102,1100",
    "1/6/1999,102,104,101,103,103,1200",
    "1/7/1999,103,104,100,101,101,1300",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(MarketDataError) as info:
        load_market(path)
    message = str(info.value)
    assert "\n" not in message, "one line"
    return message


def test_bundled_sp500_loads_sorted_and_typed() -> None:
    frame = load_market(SP500)
    assert default_market_path() == SP500
    assert frame.columns == ["date", "open", "high", "low", "close", "adj_close", "volume"]
    assert frame.schema["date"] == pl.Date
    assert all(frame.schema[c] == pl.Float64 for c in frame.columns[1:])
    assert frame.height == 5031
    assert frame["date"][0] == date(1999, 1, 4) and frame["date"][-1] == date(2018, 12, 31)
    assert frame["date"].is_sorted()


def test_good_csv_values_survive(tmp_path: Path) -> None:
    frame = load_market(write(tmp_path, GOOD_ROWS))
    assert frame.height == 4
    assert frame.row(3, named=True) == {
        "date": date(1999, 1, 7),
        "open": 103.0,
        "high": 104.0,
        "low": 100.0,
        "close": 101.0,
        "adj_close": 101.0,
        "volume": 1300.0,
    }


def test_columns_matched_case_insensitively_and_adj_close_optional(tmp_path: Path) -> None:
    rows = [",".join(r.split(",")[:5] + r.split(",")[6:]) for r in GOOD_ROWS]
    frame = load_market(write(tmp_path, rows, header="DATE,open,HIGH,Low,cLoSe,VOLUME"))
    assert frame.columns == ["date", "open", "high", "low", "close", "volume"]
    assert frame["close"].to_list() == [101.0, 102.0, 103.0, 101.0]


@pytest.mark.parametrize(
    ("day1", "day2"),
    [
        ("1999-01-04", "1999-01-05"),
        ("04.01.1999", "05.01.1999"),
        ("1/4/1999", "1/5/1999"),
        ("1999/01/04", "1999/01/05"),
        ("1999-01-04 00:00:00", "1999-01-05 00:00:00"),
    ],
)
def test_common_date_formats(tmp_path: Path, day1: str, day2: str) -> None:
    rows = [GOOD_ROWS[0].replace("1/4/1999", day1), GOOD_ROWS[1].replace("1/5/1999", day2)]
    frame = load_market(write(tmp_path, rows))
    assert frame["date"].to_list() == [date(1999, 1, 4), date(1999, 1, 5)]


def test_parquet_input_with_odd_column_names(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "Timestamp_ignored": [1, 2],
            "Date": [date(2020, 1, 2), date(2020, 1, 3)],
            "OPEN": [10.0, 11.0],
            "High": [12.0, 12.5],
            "low": [9.5, 10.5],
            "Close": [11.0, 12.0],
            "Volume": [5, 6],
        }
    )
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path)
    loaded = load_market(path)
    assert loaded.columns == ["date", "open", "high", "low", "close", "volume"]
    assert loaded["volume"].to_list() == [5.0, 6.0]


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *GOOD_ROWS]) + "\n").encode()))
    assert load_market(path).height == 4


def test_newest_first_file_is_reversed(tmp_path: Path) -> None:
    frame = load_market(write(tmp_path, list(reversed(GOOD_ROWS))))
    assert frame["date"].is_sorted() and frame["close"].to_list() == [101.0, 102.0, 103.0, 101.0]


def test_newest_first_file_reports_rows_in_file_order(tmp_path: Path) -> None:
    rows = list(reversed(GOOD_ROWS))
    rows[0] = "1/7/1999,103,102,100,101,101,1300"  # first data line: High below Open
    assert "row 1 (line 2) (1999-01-07): High is below max(Open, Close)" in error_of(write(tmp_path, rows))


def test_wrong_path() -> None:
    message = error_of(Path("/nonexistent/bars.csv"))
    assert message == "market data file not found: /nonexistent/bars.csv"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "is empty" in error_of(path) and str(path) in error_of(path)


def test_header_only(tmp_path: Path) -> None:
    assert "has a header but no rows" in error_of(write(tmp_path, []))


def test_broken_csv(tmp_path: Path) -> None:
    path = write(tmp_path, [GOOD_ROWS[0], "1/5/1999,101,103,100,102,102,1100,7,8,9", GOOD_ROWS[2]])
    message = error_of(path)
    assert "not a readable CSV" in message and str(path) in message


def test_binary_garbage_is_not_readable(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    path.write_bytes(b"\x00\x01 not parquet at all \xff" * 10)
    assert "is not a readable Parquet file" in error_of(path)


def test_missing_column(tmp_path: Path) -> None:
    rows = [",".join(r.split(",")[:2] + r.split(",")[3:]) for r in GOOD_ROWS]
    message = error_of(write(tmp_path, rows, header="Date,Open,Low,Close,Adj Close,Volume"))
    assert "missing column(s) high" in message and "found: Date, Open, Low" in message


def test_bad_date_names_row_and_value(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = rows[2].replace("1/6/1999", "13/45/1999")
    message = error_of(write(tmp_path, rows))
    assert "row 3 (line 4): unparsable date '13/45/1999'" in message


def test_duplicate_date(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = rows[2].replace("1/6/1999", "1/5/1999")
    message = error_of(write(tmp_path, rows))
    assert "row 3 (line 4): duplicate date 1999-01-05" in message


def test_unsorted_dates(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[3]]
    message = error_of(write(tmp_path, rows))
    assert "row 3 (line 4): dates are not in ascending order (1999-01-05 comes after 1999-01-06)" in message


def test_high_below_close(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "1/5/1999,101,101.5,100,102,102,1100"
    message = error_of(write(tmp_path, rows))
    assert "row 2 (line 3) (1999-01-05): High is below max(Open, Close)" in message
    assert "high=101.5" in message and "close=102.0" in message


def test_low_above_open(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[3] = "1/7/1999,103,104,103.5,104,104,1300"
    assert "row 4 (line 5) (1999-01-07): Low is above min(Open, Close)" in error_of(write(tmp_path, rows))


@pytest.mark.parametrize("bad", ["0", "-5"])
def test_non_positive_price(tmp_path: Path, bad: str) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = f"1/6/1999,102,104,{bad},103,103,1200"
    assert f"row 3 (line 4) (1999-01-06): non-positive price low={float(bad)}" in error_of(
        write(tmp_path, rows)
    )


def test_nan_run_is_reported_with_its_span(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "1/5/1999,101,103,100,,102,1100"
    rows[2] = "1/6/1999,102,104,101,NaN,103,1200"
    message = error_of(write(tmp_path, rows))
    assert "close is missing (empty or NaN) at rows 2-3 (1999-01-05..1999-01-06)" in message


def test_non_numeric_price(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[0] = "1/4/1999,100,1O2,99,101,101,1000"
    assert "row 1 (line 2): high is not a number: '1O2'" in error_of(write(tmp_path, rows))


def test_failed_load_changes_nothing_on_disk(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS)
    rows[1] = "1/5/1999,101,101.5,100,102,102,1100"
    path = write(tmp_path, rows)
    before = path.read_bytes()
    error_of(path)
    assert path.read_bytes() == before


def test_cli_check_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hpo_assets.cli import main

    assert main(["check-data", str(SP500), "--horizon", "3"]) == 0
    out = capsys.readouterr().out
    assert "5031 rows 1999-01-04..2018-12-31, valid" in out
    assert "h3: positive rate 0.452; contiguous split train" in out and "purge gap 82 rows" in out

    rows = list(GOOD_ROWS)
    rows[2] = rows[2].replace("1/6/1999", "1/5/1999")
    assert main(["check-data", str(write(tmp_path, rows))]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("hpo-assets check-data: error: market data file")
        and "duplicate date 1999-01-05" in err
    )
    assert "\n" not in err


def test_a_month_without_rows_is_refused_and_exchange_closures_pass(tmp_path: Path) -> None:
    from hpo_assets.data.market import MAX_GAP_DAYS

    closure = ["9/7/2001,101,103,100,102,102,1100", "9/10/2001,101,103,100,102,102,1100",
               "9/17/2001,102,104,101,103,103,1200"]  # fmt: skip
    assert load_market(write(tmp_path, closure, name="closure.csv")).height == 3  # 7 days: 2001's closure
    thirty_trading_days = [
        *GOOD_ROWS[:2],
        "2/17/1999,102,104,101,103,103,1200",
        "2/18/1999,103,104,100,101,101,1300",
    ]
    message = error_of(write(tmp_path, thirty_trading_days))
    assert "row 3 (line 4): 43 calendar days without a row (1999-01-05 to 1999-02-17)" in message
    assert f"at most {MAX_GAP_DAYS} are accepted" in message
