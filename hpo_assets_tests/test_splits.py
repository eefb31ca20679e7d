"""Splits: no day is read by samples of two parts; validation sets big enough to measure AUC."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets.data.splits import (
    Split,
    SplitError,
    chunked_split,
    contiguous_split,
    shared_days,
    walk_forward_folds,
)
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


DEMO = {"val_start": "2015-10-01", "test_start": "2016-10-01"}  # the demo profile's cut dates
FULL = {"val_start": "2015-01-01", "test_start": "2017-01-01"}  # defaults.yaml's


@pytest.mark.parametrize(("cuts", "k", "embargo"), [(DEMO, 2, 0), (FULL, 4, 0), (FULL, 4, 30)])
@pytest.mark.parametrize("horizon", [1, 5])
def test_walk_forward_folds_tile_the_test_period_and_train_only_on_the_past(
    frame: pl.DataFrame, cuts: dict, k: int, embargo: int, horizon: int
) -> None:
    window = frame.filter(pl.col("date") >= pl.date(2013, 7, 1))
    study = contiguous_split(
        window["date"], window[label_column(horizon)], 80, horizon, embargo=embargo, **cuts
    )
    folds = walk_forward_folds(study, k)
    assert [f.details["fold"] for f in folds] == list(range(k))
    # the folds' test sets are consecutive, disjoint and together the study's whole test period
    assert np.array_equal(np.concatenate([f.test for f in folds]), study.test)
    assert all(a.test[-1] < b.test[0] for a, b in zip(folds, folds[1:], strict=False))
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    # fold 0 is the study's own training and validation split
    assert np.array_equal(folds[0].train, study.train) and np.array_equal(folds[0].val, study.val)
    dates = window["date"].to_numpy().astype("datetime64[D]")
    val_days = np.datetime64(cuts["test_start"]) - np.datetime64(cuts["val_start"])
    for f in folds:
        assert_no_leakage(f, window, 80, horizon)
        # each fold trains before it validates, validates before it tests, with the purge gap between
        assert f.train[-1] < f.val[0] and f.val[-1] < f.test[0]
        # the minimal purge (an embargo widens look-back only, which reads no later part here)
        assert f.val[0] - f.train[-1] == f.test[0] - f.val[-1] == 80 + horizon
        assert f.details["embargo"] == embargo
        assert not days_read(f.train, 80 + embargo, horizon) & days_read(f.test, 80, horizon)
        # a validation period of the study's length right before the fold's test period
        start = np.datetime64(f.details["test_start"])
        reach = val_days + np.timedelta64(f.details["val_extended_days"], "D")
        assert f.details["val_extended_days"] % 30 == 0 and (
            f.details["val_extended_days"] == 0 or f.details["fold"] > 0
        )
        assert dates[f.val[0]] >= start - reach and dates[f.val[-1]] < start <= dates[f.test[0]]
        assert f.train[0] == study.train[0]  # expanding window from the study's first sample
    # later folds train on more of the past, including earlier folds' test days
    assert all(len(a.train) < len(b.train) for a, b in zip(folds, folds[1:], strict=False))
    # and validate on the past too: an earlier fold's test days are in the next fold's validation period
    assert all(b.val[-1] > a.test[0] for a, b in zip(folds, folds[1:], strict=False))


def test_walk_forward_fold_counts_of_the_profiles(frame: pl.DataFrame) -> None:
    window = frame.filter(pl.col("date") >= pl.date(2013, 7, 1))
    demo = walk_forward_folds(contiguous_split(window["date"], window["label_h1"], 80, 1, **DEMO), 2)
    assert [len(f.test) for f in demo] == [282, 282]  # ~1 year each, 2016-10 .. 2018-12
    assert demo[1].details["test_start"].startswith("2017-11")
    full = walk_forward_folds(contiguous_split(frame["date"], frame["label_h1"], 80, 1, **FULL), 4)
    assert all(124 <= len(f.test) <= 126 for f in full)  # half-year folds of 2017-01 .. 2018-12


def test_walk_forward_folds_refuse_what_they_cannot_measure(frame: pl.DataFrame) -> None:
    args = (frame["date"], frame["label_h1"], 80, 1)
    study = contiguous_split(*args, **FULL)
    with pytest.raises(SplitError, match="too few for 20 folds"):
        walk_forward_folds(study, 20)
    with pytest.raises(SplitError, match="test_folds must be at least 1"):
        walk_forward_folds(study, 0)
    with pytest.raises(SplitError, match="need a contiguous split"):
        walk_forward_folds(chunked_split(*args), 2)
    with pytest.raises(SplitError, match=r"test fold 0 \(2017-01-01\.\..*validation set has"):
        walk_forward_folds(study, 2, min_class_count=10_000)
    assert len(walk_forward_folds(study, 1)) == 1
