"""PreparedData: the arrays and split the trainer consumes, for a small date window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hpo_assets.data.dataset import PreparedData, load_prepared, prepare_dataset
from hpo_assets.data.features import FEATURE_COLUMNS, build_features
from hpo_assets.data.market import load_market
from hpo_assets.data.splits import SplitError
from hpo_assets.data.targets import add_labels
from hpo_assets_tests.conftest import SP500

WINDOW = {"start": "2012-01-01", "end": "2016-12-31", "val_start": "2015-01-01", "test_start": "2016-01-01"}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return load_market(SP500)


@pytest.fixture(scope="module")
def frame(market: pl.DataFrame) -> pl.DataFrame:
    return add_labels(build_features(market), horizons=(1, 3, 5))


@pytest.mark.parametrize("horizon", [1, 5])
def test_prepared_window(frame: pl.DataFrame, horizon: int) -> None:
    data = prepare_dataset(frame, horizon, context=40, **WINDOW)
    assert isinstance(data, PreparedData)
    assert data.x.dtype == np.float32 and data.y.dtype == np.float32
    assert data.x.shape == (len(data.dates), 25) and data.feature_names == FEATURE_COLUMNS
    assert np.isfinite(data.x).all()
    assert str(data.dates[0]) >= "2012-01-01" and str(data.dates[-1]) <= "2016-12-31"
    # the frame has labels beyond the window's end, but the window must not read past `end`
    assert np.isnan(data.y[-horizon:]).all() and np.isfinite(data.y[:-horizon]).all()
    for idx in data.split.parts().values():
        assert idx.min() >= data.context - 1 and idx.max() <= len(data.y) - 1 - horizon
    w = data.windows(data.split.val[:3])
    assert w.shape == (3, 40, 25)
    t = int(data.split.val[0])
    assert np.array_equal(w[0], data.x[t - 39 : t + 1])
    assert np.array_equal(data.labels(data.split.val[:3]), data.y[data.split.val[:3]])
    assert data.split.summary()["pos_val"] >= 30


def test_raw_market_frame_gives_same_arrays(frame: pl.DataFrame, market: pl.DataFrame) -> None:
    a = prepare_dataset(frame, 3, context=40, **WINDOW)
    b = prepare_dataset(market, 3, context=40, **WINDOW)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y, equal_nan=True)
    assert np.array_equal(a.split.val, b.split.val)


def test_defaults_come_from_settings(frame: pl.DataFrame) -> None:
    data = prepare_dataset(frame, 1)
    s = data.split.summary()
    assert data.context == 80 and s["kind"] == "contiguous"
    assert s["val_start"] == "2015-01-01" and s["test_start"] == "2017-01-01"


def test_none_or_empty_options_mean_configured_defaults(frame: pl.DataFrame) -> None:
    data = prepare_dataset(
        frame, 1, context=None, split_kind="", start="", end=None, val_start=None, test_start=""
    )
    assert data.context == 80
    assert data.split.summary()["test_start"] == "2017-01-01"


def test_split_without_dates_or_labels_still_summarises() -> None:
    from hpo_assets.data.splits import Split

    s = Split(np.arange(10, 20), np.arange(30, 35), np.arange(0)).summary()
    assert (s["n_train"], s["n_val"], s["n_test"]) == (10, 5, 0)


def test_chunked_kind(frame: pl.DataFrame) -> None:
    data = prepare_dataset(frame, 1, split_kind="chunks", n_chunks=10, seed=1)
    assert data.split.kind == "chunks" and data.split.summary()["n_chunks"] == 10


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"split_kind": "random"}, ValueError, "split kind 'random' is not one of contiguous, chunks"),
        ({"n_chunks": 5}, ValueError, "unknown option\\(s\\) n_chunks for split kind 'contiguous'"),
        ({"start": "2030-01-01"}, ValueError, "data window 2030-01-01..… holds no rows"),
        ({"start": "01/02/2012"}, ValueError, "data window start '01/02/2012' is not a date"),
        (
            {
                "start": "2015-06-01",
                "end": "2016-12-31",
                "val_start": "2016-04-01",
                "test_start": "2016-07-01",
            },
            SplitError,
            "validation set has",
        ),
    ],
)
def test_bad_arguments(frame: pl.DataFrame, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        prepare_dataset(frame, 1, **kwargs)


def test_load_prepared_reads_features_parquet(frame: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    frame.write_parquet(path)
    data = load_prepared(path, 5, context=40, **WINDOW)
    assert np.array_equal(data.x, prepare_dataset(frame, 5, context=40, **WINDOW).x)


def test_load_prepared_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="materialize the `features` asset first"):
        load_prepared(tmp_path / "nope.parquet", 1)


def test_non_finite_input_is_refused(frame: pl.DataFrame) -> None:
    broken = frame.with_columns(
        pl.when(pl.col("date") == pl.date(2013, 5, 1))
        .then(float("inf"))
        .otherwise(pl.col("obv"))
        .alias("obv")
    )
    with pytest.raises(ValueError, match="input obv is not finite on 2013-05-01"):
        prepare_dataset(broken, 1, **WINDOW)
