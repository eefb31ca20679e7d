"""Every feature against a textbook formula written here in numpy, and no look-ahead anywhere."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from hpo_assets.data.features import FEATURE_COLUMNS, FeatureError, build_features, indicator_frame

N_DAYS = 520


def synthetic_market(n: int = N_DAYS, seed: int = 7) -> pl.DataFrame:
    """A random walk on weekdays with consistent OHLC and varying volume (a few holidays removed)."""
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2010-01-04"), np.datetime64("2010-01-04") + 2 * n, dtype="datetime64[D]")
    days = days[np.is_busday(days)]
    days = np.delete(days, [17, 18, 19, 20, 21, 90, 200])[:n]  # a whole missing week and single holidays
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = rng.uniform(1e6, 5e6, n).round()
    return pl.DataFrame(
        {"date": days, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    ).with_columns(pl.col("date").cast(pl.Date))


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return synthetic_market()


@pytest.fixture(scope="module")
def feats(market: pl.DataFrame) -> pl.DataFrame:
    return indicator_frame(market)


# ---- textbook formulas (numpy only) -------------------------------------------------------------


def sma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    c = np.cumsum(np.insert(x, 0, 0.0))
    out[n - 1 :] = (c[n:] - c[:-n]) / n
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """EMA with alpha 2/(n+1), seeded with the simple mean of its first n defined inputs."""
    out = np.full(len(x), np.nan)
    first = int(np.argmax(~np.isnan(x)))
    alpha = 2.0 / (n + 1)
    out[first + n - 1] = x[first : first + n].mean()
    for i in range(first + n, len(x)):
        out[i] = alpha * x[i] + (1 - alpha) * out[i - 1]
    return out


def wilder(x: np.ndarray, n: int, start: int) -> np.ndarray:
    """Wilder's average: simple mean of x[start:start+n], then (prev*(n-1) + x)/n."""
    out = np.full(len(x), np.nan)
    out[start + n - 1] = x[start : start + n].mean()
    for i in range(start + n, len(x)):
        out[i] = (out[i - 1] * (n - 1) + x[i]) / n
    return out


def rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    diff = np.diff(close, prepend=np.nan)
    gain, loss = np.where(diff > 0, diff, 0.0), np.where(diff < 0, -diff, 0.0)
    ag, al = wilder(gain, n, 1), wilder(loss, n, 1)
    return 100 * ag / (ag + al)


def stoch_rsi(close: np.ndarray, n: int = 14, k: int = 14) -> np.ndarray:
    r = rsi(close, n)
    out = np.full(len(r), np.nan)
    for i in range(len(r)):
        w = r[i - k + 1 : i + 1] if i >= k - 1 else np.array([np.nan])
        if not np.isnan(w).any():
            out[i] = 100 * (r[i] - w.min()) / (w.max() - w.min())
    return out


def true_range(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    prev = np.roll(c, 1)
    tr = np.maximum.reduce([h - lo, np.abs(h - prev), np.abs(lo - prev)])
    tr[0] = np.nan
    return tr


def adx(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int = 14) -> np.ndarray:
    up, down = np.diff(h, prepend=np.nan), -np.diff(lo, prepend=np.nan)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    tr = true_range(h, lo, c)
    # Wilder smoothing of sums is the same ratio as Wilder averages: the factor n cancels in DI.
    atr_, pdm, mdm = wilder(tr, n, 1), wilder(plus_dm, n, 1), wilder(minus_dm, n, 1)
    pdi, mdi = 100 * pdm / atr_, 100 * mdm / atr_
    dx = 100 * np.abs(pdi - mdi) / (pdi + mdi)
    return wilder(dx, n, n)


def textbook(market: pl.DataFrame) -> dict[str, np.ndarray]:
    o, h, lo, c, v = (market[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    mid, sd = (
        sma(c, 20),
        np.array([c[max(i - 19, 0) : i + 1].std() if i >= 19 else np.nan for i in range(len(c))]),
    )
    clv = ((c - lo) - (h - c)) / (h - lo)
    ad = np.cumsum(clv * v)
    tp = (h + lo + c) / 3
    obv = np.cumsum(np.r_[v[0], np.sign(np.diff(c)) * v[1:]])
    out = {
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": v,
        "sma_12": sma(c, 12),
        "sma_50": sma(c, 50),
        "sma_100": sma(c, 100),
        "sma_200": sma(c, 200),
        "rsi_daily": rsi(c),
        "stochrsi_daily": stoch_rsi(c),
        "macd_line": ema(c, 12) - ema(c, 26),
        "obv": obv,
        "adosc": ema(ad, 3) - ema(ad, 10),
        "atr_14": wilder(true_range(h, lo, c), 14, 1),
        "adx_14": adx(h, lo, c),
        "bb_percent_b": (c - (mid - 2 * sd)) / (4 * sd),
        "vwap_20": sma(tp * v, 20) / sma(v, 20),
    }
    for n in (9, 10, 20, 25, 90):
        e = ema(c, n)
        out[f"dema_{n}"] = 2 * e - ema(e, n)
    return out


def weekly_textbook(market: pl.DataFrame, lag: int = 1) -> dict[str, np.ndarray]:
    """Weekly RSI/StochRSI by ISO week, each day getting the value of the week `lag` weeks before its own."""
    days = market["date"].to_list()
    keys = [d.isocalendar()[:2] for d in days]
    week_keys = list(dict.fromkeys(keys))
    last_close = {k: c for k, c in zip(keys, market["close"].to_list(), strict=True)}
    weekly_close = np.array([last_close[k] for k in week_keys])
    values = {"rsi_weekly": rsi(weekly_close), "stochrsi_weekly": stoch_rsi(weekly_close)}
    position = {k: i for i, k in enumerate(week_keys)}
    out = {}
    for name, per_week in values.items():
        out[name] = np.array([per_week[position[k] - lag] if position[k] >= lag else np.nan for k in keys])
    return out


# ---- tests --------------------------------------------------------------------------------------


def test_feature_names_are_the_25_of_the_issue() -> None:
    assert FEATURE_COLUMNS == [
        "open",
        "high",
        "low",
        "close",
        "volume",
        "dema_9",
        "dema_10",
        "sma_12",
        "dema_20",
        "dema_25",
        "sma_50",
        "dema_90",
        "sma_100",
        "sma_200",
        "rsi_daily",
        "rsi_weekly",
        "stochrsi_daily",
        "stochrsi_weekly",
        "macd_line",
        "obv",
        "adosc",
        "atr_14",
        "adx_14",
        "bb_percent_b",
        "vwap_20",
    ]


# Exactly-seeded indicators must agree everywhere; EMA-based ones whose library seeding differs
# (MACD's fast EMA, ADOSC, ADX's first sums over n-1 bars) converge, so they are compared after a long run-in (weights < 1e-30).
EXACT = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "sma_12",
    "sma_50",
    "sma_100",
    "sma_200",
    "dema_9",
    "dema_10",
    "dema_20",
    "dema_25",
    "dema_90",
    "rsi_daily",
    "stochrsi_daily",
    "obv",
    "atr_14",
    "bb_percent_b",
    "vwap_20",
]
CONVERGED = ["macd_line", "adosc", "adx_14"]


@pytest.mark.parametrize("name", EXACT + CONVERGED)
def test_daily_feature_matches_textbook(market: pl.DataFrame, feats: pl.DataFrame, name: str) -> None:
    expected = textbook(market)[name]
    got = feats[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
    start = 300 if name in CONVERGED else 0
    both = ~np.isnan(expected) & ~np.isnan(got)
    both[:start] = False
    assert both.sum() >= N_DAYS - 300, f"{name}: too few defined values to compare"
    np.testing.assert_allclose(got[both], expected[both], rtol=1e-7, atol=1e-7, err_msg=name)
    if name in EXACT:  # same warm-up too: defined exactly where the textbook value is defined
        assert np.array_equal(np.isnan(got[250:]), np.isnan(expected[250:]))


@pytest.mark.parametrize("name", ["rsi_weekly", "stochrsi_weekly"])
def test_weekly_feature_uses_completed_weeks_only(
    market: pl.DataFrame, feats: pl.DataFrame, name: str
) -> None:
    expected = weekly_textbook(market)[name]
    got = feats[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
    defined = ~np.isnan(got)
    assert not np.isnan(expected[defined]).any(), "defined before the textbook value exists"
    # TA-Lib's STOCHRSI also waits for its unused %D line: at most 2 more weeks of warm-up
    assert defined.sum() >= (~np.isnan(expected)).sum() - 2 * 5
    np.testing.assert_allclose(got[defined], expected[defined], rtol=1e-9)
    # constant within a week: Friday's own close never reaches Monday..Friday of the same week
    weeks = market["date"].dt.truncate("1w")
    per_week = pl.DataFrame({"w": weeks, "v": got}).group_by("w").agg(pl.col("v").n_unique())
    assert per_week["v"].max() == 1


def test_weekly_value_differs_from_one_using_the_current_week(
    market: pl.DataFrame, feats: pl.DataFrame
) -> None:
    """Guards the test above: the leaky variant (the day's own, unfinished week) gives other numbers."""
    leaky = weekly_textbook(market, lag=0)["rsi_weekly"]
    got = feats["rsi_weekly"].fill_null(np.nan).to_numpy()
    ok = ~np.isnan(got) & ~np.isnan(leaky)
    assert ok.sum() > 300
    assert np.mean(np.isclose(got[ok], leaky[ok])) < 0.05


@pytest.mark.parametrize("cut", [260, 333, 401])  # includes mid-week days
def test_no_look_ahead(market: pl.DataFrame, cut: int) -> None:
    """Change every row after day `cut`; every feature up to `cut` must be unchanged."""
    other = synthetic_market(seed=99)
    scale = market["close"][cut] / other["close"][cut]
    changed = pl.concat(
        [
            market.slice(0, cut + 1),
            other.slice(cut + 1)
            .with_columns(pl.col(c) * scale for c in ("open", "high", "low", "close"))
            .with_columns(market["date"].slice(cut + 1).alias("date"), pl.col("volume") * 3),
        ]
    )
    assert not changed.slice(cut + 1).equals(market.slice(cut + 1))
    before = build_features(market).filter(pl.col("date") <= market["date"][cut])
    after = build_features(changed).filter(pl.col("date") <= market["date"][cut])
    assert before.height > 0
    assert before.equals(after)


def test_build_features_drops_warmup_only(market: pl.DataFrame) -> None:
    out = build_features(market)
    assert out.columns == ["date", *FEATURE_COLUMNS]
    assert out.null_count().sum_horizontal()[0] == 0
    full = indicator_frame(market)
    first_complete = full.drop_nulls().row(0, named=True)["date"]
    assert out["date"][0] == first_complete
    assert out.height == market.filter(pl.col("date") >= first_complete).height
    assert out.height == market.height - 199  # sma_200 is the longest warm-up


def test_too_short_market_is_a_clear_error(market: pl.DataFrame) -> None:
    with pytest.raises(FeatureError, match="150 rows, too few for the indicators' warm-up"):
        build_features(market.head(150))


def test_flat_bollinger_window_gives_middle_band() -> None:
    n = 260
    flat = pl.DataFrame(
        {
            "date": [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(n)],
            "open": [10.0] * n,
            "high": [10.0] * n,
            "low": [10.0] * n,
            "close": [10.0] * n,
            "volume": [0.0] * n,
        }
    )
    frame = indicator_frame(flat)
    assert frame["bb_percent_b"].drop_nulls().unique().to_list() == [0.5]
    assert frame["vwap_20"].drop_nulls().unique().to_list() == [10.0]  # zero volume: equal weights


def test_bundled_sp500_features_are_finite() -> None:
    from hpo_assets.data.market import load_market
    from hpo_assets_tests.conftest import SP500

    out = build_features(load_market(SP500))
    x = out.select(FEATURE_COLUMNS).to_numpy()
    assert np.isfinite(x).all()
    assert out.height == 5031 - 199
