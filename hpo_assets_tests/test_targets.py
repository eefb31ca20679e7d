"""Labels: worked by hand on a tiny series; the last h rows carry no label."""

from __future__ import annotations

import polars as pl
import pytest

from hpo_assets.data.targets import add_labels, label_column, positive_rates

# close 100 -> needs a high >= 101 (1%) within the horizon
HAND = pl.DataFrame(
    {
        "close": [100.0, 100.0, 102.0, 101.0, 100.0, 103.0, 99.0],
        "high": [100.5, 100.9, 102.5, 101.5, 100.2, 103.5, 99.5],
    }
)


def test_label_column_name() -> None:
    assert label_column(1) == "label_h1" and label_column(5) == "label_h5"


def test_high_mode_by_hand() -> None:
    out = add_labels(HAND, horizons=(1, 3), threshold=0.01)
    # h1: row0 next high 100.9 < 101 -> 0; row1 next 102.5 >= 101 -> 1; row2 101.5 < 103.02 -> 0;
    #     row3 100.2 < 102.01 -> 0; row4 103.5 >= 101 -> 1; row5 99.5 < 104.03 -> 0; row6 unknown
    assert out["label_h1"].to_list() == [0, 1, 0, 0, 1, 0, None]
    # h3: row0 max(100.9,102.5,101.5) >= 101 -> 1; row1 max(102.5,101.5,100.2) -> 1;
    #     row2 max(101.5,100.2,103.5) >= 103.02 -> 1; row3 max(100.2,103.5,99.5) >= 102.01 -> 1; last 3 unknown
    assert out["label_h3"].to_list() == [1, 1, 1, 1, None, None, None]
    assert out.schema["label_h1"] == pl.Int8


def test_close_mode_ignores_intraday_highs() -> None:
    out = add_labels(HAND, horizons=(1,), threshold=0.01, mode="close")
    # next closes: 100 (<101), 102 (>=101), 101 (<103.02), 100, 103 (>=101), 99, unknown
    assert out["label_h1"].to_list() == [0, 1, 0, 0, 1, 0, None]
    out2 = add_labels(HAND, horizons=(1,), threshold=0.005, mode="close")
    out3 = add_labels(HAND, horizons=(1,), threshold=0.005, mode="high")
    assert out2["label_h1"][0] == 0 and out3["label_h1"][0] == 1  # high 100.9 touched 100.5, close did not


def test_threshold_is_inclusive() -> None:
    frame = pl.DataFrame({"close": [100.0, 100.0], "high": [100.0, 101.0]})
    assert add_labels(frame, horizons=(1,))["label_h1"].to_list() == [1, None]


@pytest.mark.parametrize("h", [1, 3, 5])
def test_last_h_rows_unlabelled_others_labelled(h: int) -> None:
    frame = pl.DataFrame(
        {"close": [float(100 + i % 4) for i in range(30)], "high": [float(101 + i % 5) for i in range(30)]}
    )
    col = add_labels(frame, horizons=(h,))[label_column(h)]
    assert col.tail(h).null_count() == h
    assert col.head(30 - h).null_count() == 0


def test_positive_rates() -> None:
    out = add_labels(HAND, horizons=(1, 3))
    assert positive_rates(out, (1, 3)) == {1: pytest.approx(2 / 6), 3: 1.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "low"}, "label mode 'low' is not one of high, close"),
        ({"threshold": float("nan")}, "label threshold must be a finite number"),
        ({"horizons": (0,)}, "horizons must be positive whole numbers"),
        ({"horizons": ()}, "horizons must be positive whole numbers"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        add_labels(HAND, **kwargs)


def test_missing_high_column() -> None:
    with pytest.raises(ValueError, match="frame lacks column\\(s\\) high"):
        add_labels(HAND.select("close"))
