"""Splits: no day is read by samples of two parts; validation sets big enough to measure AUC."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets.data.splits import Split, SplitError, chunked_split, contiguous_split, shared_days
from hpo_assets.data.targets import add_labels, label_column
from hpo_assets_tests.conftest import SP500


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return add_labels(build_features(load_market(SP500)), horizons=(1, 3, 5))


def days_read(idx: np.ndarray, context: int, horizon: int) -> set[int]:
    """Independent of the library: every row a sample reads, context window plus label window."""
    out: set[int] = set()
    for t in idx.tolist():
        out.update(range(t - context + 1, t + horizon + 1))
    return out


def assert_no_leakage(split: Split, frame: pl.DataFrame, context: int, horizon: int) -> None:
    labels = frame[label_column(horizon)]
    for name, idx in split.parts().items():
        assert len(idx) > 0, name
        assert idx.min() - context + 1 >= 0, f"{name}: a window starts before the data"
        assert idx.max() + horizon <= frame.height - 1, f"{name}: a label window runs past the data"
        assert labels.gather(idx).null_count() == 0, f"{name}: unlabelled sample"
    train, val, test = (days_read(i, context, horizon) for i in (split.train, split.val, split.test))
    assert not train & val, f"train and val share {len(train & val)} days"
    assert not train & test, f"train and test share {len(train & test)} days"
    assert not val & test, f"val and test share {len(val & test)} days"
    assert shared_days(split, frame.height) == {"train/val": 0, "train/test": 0, "val/test": 0}


@pytest.mark.parametrize("horizon", [1, 3, 5])
@pytest.mark.parametrize("context", [80, 20])
def test_contiguous_split_has_no_leakage_and_minimal_purge(
    frame: pl.DataFrame, horizon: int, context: int
) -> None:
    split = contiguous_split(
        frame["date"],
        frame[label_column(horizon)],
        context,
        horizon,
        val_start="2015-01-01",
        test_start="2017-01-01",
    )
    assert_no_leakage(split, frame, context, horizon)
    # purge removes exactly what it must: the next usable train end would touch the validation set
    assert split.val[0] - split.train[-1] == context + horizon
    assert split.test[0] - split.val[-1] == context + horizon
    assert split.purge_gap == context + horizon - 1
    dates = frame["date"]
    assert str(dates[int(split.val[0])]) >= "2015-01-01" > str(dates[int(split.train[-1])])
    assert str(dates[int(split.test[0])]) >= "2017-01-01"


@pytest.mark.parametrize("horizon", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 42])
def test_chunked_split_has_no_leakage(frame: pl.DataFrame, horizon: int, seed: int) -> None:
    split = chunked_split(
        frame["date"],
        frame[label_column(horizon)],
        80,
        horizon,
        n_chunks=20,
        val_fraction=0.15,
        test_fraction=0.15,
        seed=seed,
    )
    assert_no_leakage(split, frame, 80, horizon)
    summary = split.summary()
    assert len(summary["val_chunks"]) == 3 and len(summary["test_chunks"]) == 3
    # scattered: validation samples come from more than one stretch of time
    assert np.sum(np.diff(split.val) > 1) >= 1


def test_chunked_split_is_seeded(frame: pl.DataFrame) -> None:
    args = (frame["date"], frame["label_h1"], 80, 1)
    a, b = chunked_split(*args, seed=3), chunked_split(*args, seed=3)
    c = chunked_split(*args, seed=4)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.val, c.val)


def test_summary_reports_sizes_classes_and_dates(frame: pl.DataFrame) -> None:
    split = contiguous_split(frame["date"], frame["label_h3"], 80, 3, "2015-01-01", "2017-01-01")
    s = split.summary()
    assert (
        s["n_train"] == len(split.train) and s["n_val"] == len(split.val) and s["n_test"] == len(split.test)
    )
    y = frame["label_h3"].to_numpy()
    assert s["pos_val"] == int(y[split.val].sum()) and s["neg_val"] == len(split.val) - s["pos_val"]
    assert s["val_first"] == str(frame["date"][int(split.val[0])])
    assert s["purge_gap"] == 82 and s["kind"] == "contiguous"


def synthetic(n: int, val_positives: int) -> tuple[np.ndarray, np.ndarray]:
    dates = np.arange(np.datetime64("2001-01-01"), np.datetime64("2001-01-01") + n)
    labels = (np.arange(n) % 2).astype(float)
    val = (dates >= np.datetime64("2002-01-01")) & (dates < np.datetime64("2003-01-01"))
    val_rows = np.flatnonzero(val)
    labels[val_rows] = 0.0
    labels[val_rows[100 : 100 + val_positives]] = 1.0
    return dates, labels


def test_refuses_validation_set_with_too_few_positives() -> None:
    dates, labels = synthetic(1500, val_positives=12)
    with pytest.raises(
        SplitError, match=r"validation set has 12 positive and \d+ negative samples .*at least 30"
    ):
        contiguous_split(dates, labels, 20, 1, "2002-01-01", "2003-01-01")
    ok = contiguous_split(*synthetic(1500, val_positives=30), 20, 1, "2002-01-01", "2003-01-01")
    assert ok.summary()["pos_val"] == 30


def test_refuses_tiny_chunked_validation(frame: pl.DataFrame) -> None:
    with pytest.raises(SplitError, match="validation set has"):
        chunked_split(frame["date"], frame["label_h1"], 80, 1, n_chunks=20, min_class_count=10_000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"val_start": "2017-01-01", "test_start": "2015-01-01"},
            "test_start 2015-01-01 must come after val_start",
        ),
        ({"val_start": "1990-01-01", "test_start": "2017-01-01"}, "leaves no training samples"),
        (
            {"val_start": "2015-01-01", "test_start": "2030-01-01"},
            "test_start 2030-01-01 leaves no test samples",
        ),
        ({"val_start": "2015-13-01", "test_start": "2017-01-01"}, "val_start '2015-13-01' is not a date"),
    ],
)
def test_contiguous_bad_cut_dates(frame: pl.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        contiguous_split(frame["date"], frame["label_h1"], 80, 1, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_chunks": 200}, "too few for 200 chunks"),
        ({"n_chunks": 2}, "n_chunks must be at least 3"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "must be fractions"),
    ],
)
def test_chunked_bad_options(frame: pl.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        chunked_split(frame["date"], frame["label_h1"], 80, 1, **kwargs)


def test_no_test_set_when_test_start_is_none(frame: pl.DataFrame) -> None:
    split = contiguous_split(frame["date"], frame["label_h1"], 80, 1, "2017-01-01", None)
    assert len(split.test) == 0 and len(split.val) > 400


def test_embargo_keeps_held_out_days_out_of_later_training_lookback(frame: pl.DataFrame) -> None:
    args = (frame["date"], frame["label_h1"], 80, 1)
    plain = chunked_split(*args, seed=5)
    embargoed = chunked_split(*args, seed=5, embargo=200)
    assert len(embargoed.val) <= len(plain.val) and np.array_equal(plain.test, embargoed.test)
    assert len(embargoed.train) < len(plain.train)
    held = days_read(embargoed.val, 80, 1) | days_read(embargoed.test, 80, 1)
    # every training sample's window extended 200 rows back stays clear of held-out days
    assert not days_read(embargoed.train, 80 + 200, 1) & held
    assert days_read(plain.train, 80 + 200, 1) & held  # without the embargo it does not
    assert embargoed.summary()["embargo"] == 200
    with pytest.raises(SplitError, match="embargo must be 0 or more rows"):
        chunked_split(*args, embargo=-1)
