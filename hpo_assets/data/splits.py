"""Train / validation / test splits of sample windows, purged so no day is read by two parts.

A sample is identified by its END row t: it reads the context rows [t-context+1 .. t] as input
and the label window [t+1 .. t+horizon] through its label, i.e. rows [t-context+1 .. t+horizon].
Two samples share a day when those intervals overlap. After assigning samples to parts, samples
are purged (test wins over validation, validation over training) until no day read by a sample of
one part is read by a sample of another: at a boundary that removes ``context + horizon - 1``
sample ends, the purge gap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl


class SplitError(ValueError):
    """A split that cannot be made or would not measure what it should (named counts and dates)."""


@dataclass
class Split:
    """Sample end indices per part (row indices into the frame the split was built on)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    context: int = 0
    horizon: int = 0
    kind: str = ""
    dates: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def purge_gap(self) -> int:
        """Sample ends removed at each boundary between two parts."""
        return max(self.context + self.horizon - 1, 0)

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self) -> dict[str, Any]:
        """Sizes, class counts and date ranges per part, plus the purge gap, for metadata and logs."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "context": self.context,
            "horizon": self.horizon,
            "purge_gap": self.purge_gap,
        }
        for name, idx in self.parts().items():
            out[f"n_{name}"] = int(len(idx))
            if self.labels is not None:
                y = self.labels[idx]
                pos = int(np.sum(y == 1))
                out[f"pos_{name}"] = pos
                out[f"neg_{name}"] = int(np.sum(y == 0))
                out[f"pos_rate_{name}"] = round(pos / len(idx), 4) if len(idx) else None
            if self.dates is not None:
                out[f"{name}_first"] = str(self.dates[idx[0]]) if len(idx) else None
                out[f"{name}_last"] = str(self.dates[idx[-1]]) if len(idx) else None
        out.update(self.details)
        return out


def as_dates(dates: Any) -> np.ndarray:
    """Dates as ``datetime64[D]``, from a polars Series, numpy array or list of dates/ISO strings."""
    series = (
        dates
        if isinstance(dates, pl.Series)
        else pl.Series("date", list(dates) if not isinstance(dates, np.ndarray) else dates)
    )
    if series.dtype == pl.String:
        series = series.str.to_date("%Y-%m-%d")
    elif series.dtype != pl.Date:
        series = series.cast(pl.Date)
    return series.to_numpy().astype("datetime64[D]")


def as_labels(labels: Any) -> np.ndarray:
    """Labels as float64 with NaN for unlabelled rows (nulls in a polars Series become NaN)."""
    if isinstance(labels, pl.Series):
        return labels.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    return np.asarray(labels, dtype=np.float64)


def _as_day(value: Any, name: str) -> np.datetime64:
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]")
    if isinstance(value, dt.date):
        return np.datetime64(value.isoformat()[:10], "D")
    try:
        return np.datetime64(str(value), "D")
    except ValueError as exc:
        raise SplitError(f"{name} {value!r} is not a date (write it as YYYY-MM-DD)") from exc


def _check_window(context: int, horizon: int) -> None:
    if int(context) < 1:
        raise SplitError(f"context must be at least 1 day, got {context}")
    if int(horizon) < 1:
        raise SplitError(f"horizon must be at least 1 day, got {horizon}")


def _check_embargo(embargo: int) -> int:
    if int(embargo) < 0:
        raise SplitError(f"embargo must be 0 or more rows, got {embargo}")
    return int(embargo)


def valid_ends(labels: np.ndarray, context: int, horizon: int) -> np.ndarray:
    """Rows that can end a sample: a full context window behind them and a known label."""
    n = len(labels)
    t = np.arange(n)
    ok = (t >= context - 1) & (t <= n - 1 - horizon) & np.isfinite(labels)
    return t[ok]


def read_mask(idx: np.ndarray, context: int, horizon: int, n_rows: int) -> np.ndarray:
    """Boolean mask of the rows any of the samples ending at ``idx`` reads (context + label window)."""
    marks = np.zeros(n_rows + 1, dtype=np.int64)
    lo = np.clip(np.asarray(idx) - context + 1, 0, n_rows)
    hi = np.clip(np.asarray(idx) + horizon + 1, 0, n_rows)
    np.add.at(marks, lo, 1)
    np.add.at(marks, hi, -1)
    return np.cumsum(marks)[:n_rows] > 0


def _touches(idx: np.ndarray, mask: np.ndarray, context: int, horizon: int) -> np.ndarray:
    """For each sample end, whether its window reads any row flagged in ``mask``."""
    csum = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
    lo = np.clip(idx - context + 1, 0, len(mask))
    hi = np.clip(idx + horizon + 1, 0, len(mask))
    return (csum[hi] - csum[lo]) > 0


def purge(
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    context: int,
    horizon: int,
    n_rows: int,
    embargo: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop validation samples that read test days, then training samples that read val/test days.

    ``embargo`` extra rows in front of each window also count as read: indicators with a long
    look-back (sma_200, the weekly ones) fold earlier days into a sample's inputs, so an embargo as
    long as that look-back keeps held-out days out of later training samples' features too.
    """
    test_rows = read_mask(test, context, horizon, n_rows)
    val = val[~_touches(val, test_rows, context + embargo, horizon)]
    held_rows = test_rows | read_mask(val, context, horizon, n_rows)
    train = train[~_touches(train, held_rows, context + embargo, horizon)]
    return train, val, test


def shared_days(split: Split, n_rows: int | None = None) -> dict[str, int]:
    """Days read by samples of two different parts, per pair of parts (all zero = no leakage)."""
    c, h = split.context, split.horizon
    all_idx = np.concatenate([split.train, split.val, split.test])
    n = n_rows if n_rows is not None else (int(all_idx.max()) + h + 1 if len(all_idx) else 0)
    masks = {name: read_mask(idx, c, h, n) for name, idx in split.parts().items()}
    return {
        "train/val": int(np.sum(masks["train"] & masks["val"])),
        "train/test": int(np.sum(masks["train"] & masks["test"])),
        "val/test": int(np.sum(masks["val"] & masks["test"])),
    }


def _require_classes(split: Split, min_class_count: int) -> None:
    assert split.labels is not None
    y_val = split.labels[split.val]
    pos, neg = int(np.sum(y_val == 1)), int(np.sum(y_val == 0))
    if pos < min_class_count or neg < min_class_count:
        raise SplitError(
            f"validation set has {pos} positive and {neg} negative samples ({len(y_val)} in all); "
            f"at least {min_class_count} of each class are needed to measure AUC: "
            f"widen the validation period or change the label threshold"
        )
    y_train = split.labels[split.train]
    if len(y_train) == 0 or np.all(y_train == y_train[0]):
        raise SplitError(
            f"training set has {len(y_train)} samples and not both classes; nothing to learn from"
        )


def contiguous_split(
    dates: Any,
    labels: Any,
    context: int,
    horizon: int,
    val_start: str | dt.date | np.datetime64,
    test_start: str | dt.date | np.datetime64 | None,
    min_class_count: int = 30,
    embargo: int = 0,
) -> Split:
    """Train before ``val_start``, validation until ``test_start``, test from it (None: no test set)."""
    _check_window(context, horizon)
    day = as_dates(dates)
    y = as_labels(labels)
    if len(day) != len(y):
        raise SplitError(f"dates ({len(day)}) and labels ({len(y)}) differ in length")
    ends = valid_ends(y, context, horizon)
    if len(ends) == 0:
        raise SplitError(f"no labelled sample windows: {len(y)} rows, context {context}, horizon {horizon}")
    v0 = _as_day(val_start, "val_start")
    t0 = _as_day(test_start, "test_start") if test_start not in (None, "") else None
    first, last = day[ends[0]], day[ends[-1]]
    if t0 is not None and t0 <= v0:
        raise SplitError(f"test_start {t0} must come after val_start {v0}")
    if v0 <= first:
        raise SplitError(f"val_start {v0} leaves no training samples (first sample ends {first})")
    if v0 > last:
        raise SplitError(f"val_start {v0} leaves no validation samples (last sample ends {last})")
    if t0 is not None and t0 > last:
        raise SplitError(f"test_start {t0} leaves no test samples (last sample ends {last})")
    d = day[ends]
    is_val = (d >= v0) if t0 is None else (d >= v0) & (d < t0)
    is_test = np.zeros(len(ends), dtype=bool) if t0 is None else d >= t0
    train, val, test = purge(
        ends[d < v0], ends[is_val], ends[is_test], context, horizon, len(y), _check_embargo(embargo)
    )
    split = Split(
        train,
        val,
        test,
        context=int(context),
        horizon=int(horizon),
        kind="contiguous",
        dates=day,
        labels=y,
        details={"val_start": str(v0), "test_start": str(t0) if t0 else None, "embargo": int(embargo)},
    )
    _require_classes(split, min_class_count)
    return split


def chunked_split(
    dates: Any,
    labels: Any,
    context: int,
    horizon: int,
    n_chunks: int = 20,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    min_class_count: int = 30,
    embargo: int = 0,
) -> Split:
    """Cut the samples into ``n_chunks`` equal consecutive blocks and deal them out at random (seeded).

    Validation and test then span many market regimes instead of one stretch at the end. Each block
    must hold at least ``context + horizon`` samples, so purging never swallows a whole block.
    """
    _check_window(context, horizon)
    day = as_dates(dates)
    y = as_labels(labels)
    if len(day) != len(y):
        raise SplitError(f"dates ({len(day)}) and labels ({len(y)}) differ in length")
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise SplitError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be fractions "
            f"with val_fraction > 0 and a sum below 1"
        )
    ends = valid_ends(y, context, horizon)
    n_chunks = int(n_chunks)
    if n_chunks < 3:
        raise SplitError(f"n_chunks must be at least 3 (train, val, test), got {n_chunks}")
    if len(ends) < n_chunks * (context + horizon):
        raise SplitError(
            f"{len(ends)} samples are too few for {n_chunks} chunks of at least context + horizon = "
            f"{context + horizon} samples; use fewer chunks or more data"
        )
    n_val = max(1, round(val_fraction * n_chunks))
    n_test = round(test_fraction * n_chunks)
    if n_val + n_test >= n_chunks:
        raise SplitError(f"{n_val} validation + {n_test} test chunks leave no training chunk of {n_chunks}")
    blocks = np.array_split(ends, n_chunks)
    order = np.random.default_rng(seed).permutation(n_chunks)
    val_ids, test_ids = sorted(order[:n_val].tolist()), sorted(order[n_val : n_val + n_test].tolist())
    role = np.zeros(n_chunks, dtype=np.int8)
    role[val_ids], role[test_ids] = 1, 2
    pick = [
        np.concatenate([b for b, r in zip(blocks, role, strict=True) if r == k] or [np.array([], int)])
        for k in (0, 1, 2)
    ]
    tr, va, te = (p.astype(np.int64) for p in pick)
    train, val, test = purge(tr, va, te, context, horizon, len(y), _check_embargo(embargo))
    spans = {
        name: [f"{day[blocks[i][0]]}..{day[blocks[i][-1]]}" for i in ids]
        for name, ids in (("val_chunks", val_ids), ("test_chunks", test_ids))
    }
    split = Split(
        train,
        val,
        test,
        context=int(context),
        horizon=int(horizon),
        kind="chunks",
        dates=day,
        labels=y,
        details={"n_chunks": n_chunks, "seed": int(seed), "embargo": int(embargo), **spans},
    )
    _require_classes(split, min_class_count)
    return split


VAL_EXTEND_DAYS = 30  # calendar days a fold's validation period reaches back per step when it lacks a class


def walk_forward_folds(split: Split, n_folds: int, min_class_count: int = 30) -> list[Split]:
    """K walk-forward (rolling-origin) test folds inside a contiguous split's test period.

    The test samples are cut into ``n_folds`` consecutive blocks of (nearly) equal size. Fold k tests
    its block, validates on the period of the study's validation length just before it, and trains on
    every sample from the split's first one up to that validation period; purged and embargoed exactly
    like the split itself. A fold whose validation period holds fewer than ``min_class_count`` samples of
    either class (a calm year has few up-moves at h1) reaches further back, 30 days at a time
    (``details["val_extended_days"]``), since early stopping and calibration need both classes. Fold 0 has the study's own training and validation sets (its test set is the
    first block only), so a retrain on fold 0 repeats the study's trial. The studies never read any of
    this: they choose on train/validation, and only models evaluated afterwards read the folds.
    """
    if split.kind != "contiguous":
        raise SplitError(f"walk-forward test folds need a contiguous split, got {split.kind!r}")
    if int(n_folds) < 1:
        raise SplitError(f"test_folds must be at least 1, got {n_folds}")
    if split.dates is None or split.labels is None or split.test.size == 0:
        raise SplitError("walk-forward test folds need a split with dates, labels and a test period")
    n_folds = int(n_folds)
    if split.test.size < n_folds * (split.context + split.horizon):
        raise SplitError(
            f"{split.test.size} test samples are too few for {n_folds} folds of at least context + horizon = "
            f"{split.context + split.horizon} samples; use fewer test_folds"
        )
    day, y = split.dates, split.labels
    v0 = _as_day(split.details["val_start"], "val_start")
    t0 = _as_day(split.details["test_start"], "test_start")
    val_length = t0 - v0  # calendar days: the same validation period length in every fold
    embargo = int(split.details.get("embargo") or 0)
    ends = valid_ends(y, split.context, split.horizon)
    d = day[ends]
    blocks = np.array_split(split.test, n_folds)
    folds = []
    for k, block in enumerate(blocks):
        start = t0 if k == 0 else day[block[0]]
        val_start = v0 if k == 0 else start - val_length
        test_end = day[block[-1]]
        while True:
            train, val, test = purge(
                ends[d < val_start],
                ends[(d >= val_start) & (d < start)],
                block.astype(np.int64),
                split.context,
                split.horizon,
                len(y),
                embargo,
            )
            fold = Split(
                train,
                val,
                test,
                context=split.context,
                horizon=split.horizon,
                kind="walk_forward",
                dates=day,
                labels=y,
                details={
                    "fold": k,
                    "n_folds": n_folds,
                    "val_start": str(val_start),
                    "test_start": str(start),
                    "test_end": str(test_end),
                    "embargo": embargo,
                    "val_extended_days": int((start - val_start - val_length) / np.timedelta64(1, "D")),
                },
            )
            try:
                _require_classes(fold, min_class_count)
                break
            except SplitError as exc:
                # a calm year can hold too few positives: reach further back, never into the training start
                short = min(np.sum(y[val] == 1), np.sum(y[val] == 0)) < min_class_count
                if short and len(train) > 2 * VAL_EXTEND_DAYS:
                    val_start = val_start - np.timedelta64(VAL_EXTEND_DAYS, "D")
                    continue
                raise SplitError(f"test fold {k} ({start}..{test_end}): {exc}") from None
        y_test = y[test]
        if np.all(y_test == 1) or np.all(y_test == 0):
            raise SplitError(
                f"test fold {k} ({start}..{test_end}) has {len(test)} samples of one class only; AUC is "
                "undefined there: use fewer test_folds"
            )
        folds.append(fold)
    return folds
