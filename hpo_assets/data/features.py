"""The 25 model inputs: OHLCV plus 20 technical indicators, computed without look-ahead.

Every indicator TA-Lib defines comes from TA-Lib (each is causal: the value at day t reads days
<= t only). Polars supplies what TA-Lib lacks: the rolling VWAP and the weekly resampling. Weekly
indicators are computed on completed weeks only: a day sees the weekly value of the last week that
ended before its own week started, so nothing from later in its week leaks in.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import talib

from hpo_assets.data.market import REQUIRED_COLUMNS

OHLCV_COLUMNS = ["open", "high", "low", "close", "volume"]
INDICATOR_COLUMNS = [
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
FEATURE_COLUMNS: list[str] = [*OHLCV_COLUMNS, *INDICATOR_COLUMNS]

RSI_PERIOD = 14
STOCHRSI_FASTK = (
    14  # StochRSI %K over 14 RSI values (Chande & Kroll); TA-Lib's default of 5 is not the textbook one
)
STOCHRSI_FASTD = 3
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ADOSC_FAST, ADOSC_SLOW = 3, 10
BB_PERIOD, BB_DEV = 20, 2.0
VWAP_PERIOD = 20


class FeatureError(ValueError):
    """Features that cannot be built from the given market frame (too short, missing columns, NaN)."""


def _week_start(dates: pl.Expr) -> pl.Expr:
    """Monday of the (ISO) week a date falls in."""
    return dates.dt.truncate("1w")


def weekly_closes(market: pl.DataFrame) -> pl.DataFrame:
    """One row per calendar week present: ``week`` (its Monday) and the week's last close."""
    return (
        market.select(pl.col("date"), pl.col("close"))
        .with_columns(week=_week_start(pl.col("date")))
        .group_by("week", maintain_order=True)
        .agg(pl.col("close").last())
        .sort("week")
    )


def _weekly_indicators(market: pl.DataFrame) -> pl.DataFrame:
    """Weekly RSI and StochRSI per day, from weeks that ended before the day's week began."""
    weekly = weekly_closes(market)
    closes = weekly["close"].to_numpy().astype(np.float64)
    rsi = talib.RSI(closes, timeperiod=RSI_PERIOD)
    stoch_k, _ = talib.STOCHRSI(
        closes,
        timeperiod=RSI_PERIOD,
        fastk_period=STOCHRSI_FASTK,
        fastd_period=STOCHRSI_FASTD,
        fastd_matype=0,  # type: ignore[arg-type]
    )
    # shift(1): the row for week W carries the value computed through the previous present week.
    completed = pl.DataFrame(
        {"week": weekly["week"], "rsi_weekly": rsi, "stochrsi_weekly": stoch_k}
    ).with_columns(
        pl.col("rsi_weekly").fill_nan(None).shift(1), pl.col("stochrsi_weekly").fill_nan(None).shift(1)
    )
    days = market.select("date").with_columns(week=_week_start(pl.col("date")))
    return days.join(completed, on="week", how="left").select("rsi_weekly", "stochrsi_weekly")


def _vwap(market: pl.DataFrame, period: int) -> pl.Series:
    """Rolling VWAP of the typical price (H+L+C)/3; equal weights where the window's volume is all zero."""
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    vol_sum = pl.col("volume").rolling_sum(period)
    weighted = (typical * pl.col("volume")).rolling_sum(period) / vol_sum
    return market.select(
        pl.when(vol_sum > 0).then(weighted).otherwise(typical.rolling_mean(period)).alias(f"vwap_{period}")
    ).to_series()


def indicator_frame(market: pl.DataFrame) -> pl.DataFrame:
    """``date`` + FEATURE_COLUMNS for every row, warm-up rows included (nulls where undefined)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in market.columns]
    if missing:
        raise FeatureError(f"market frame lacks column(s) {', '.join(missing)}; load it with load_market()")
    market = market.sort("date")
    h, lo, c, v = (market[col].cast(pl.Float64).to_numpy() for col in ("high", "low", "close", "volume"))
    upper, middle, lower = talib.BBANDS(c, timeperiod=BB_PERIOD, nbdevup=BB_DEV, nbdevdn=BB_DEV, matype=0)  # type: ignore[arg-type]
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        # A flat window has zero width; the close then sits exactly on the middle band.
        percent_b = np.where(width > 0, (c - lower) / np.where(width > 0, width, 1.0), 0.5)
    percent_b[np.isnan(middle)] = np.nan
    macd, _, _ = talib.MACD(c, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL)
    stoch_k, _ = talib.STOCHRSI(
        c,
        timeperiod=RSI_PERIOD,
        fastk_period=STOCHRSI_FASTK,
        fastd_period=STOCHRSI_FASTD,
        fastd_matype=0,  # type: ignore[arg-type]
    )
    daily = {
        "dema_9": talib.DEMA(c, 9),
        "dema_10": talib.DEMA(c, 10),
        "sma_12": talib.SMA(c, 12),
        "dema_20": talib.DEMA(c, 20),
        "dema_25": talib.DEMA(c, 25),
        "sma_50": talib.SMA(c, 50),
        "dema_90": talib.DEMA(c, 90),
        "sma_100": talib.SMA(c, 100),
        "sma_200": talib.SMA(c, 200),
        "rsi_daily": talib.RSI(c, RSI_PERIOD),
        "stochrsi_daily": stoch_k,
        "macd_line": macd,
        "obv": talib.OBV(c, v),
        "adosc": talib.ADOSC(h, lo, c, v, fastperiod=ADOSC_FAST, slowperiod=ADOSC_SLOW),
        "atr_14": talib.ATR(h, lo, c, 14),
        "adx_14": talib.ADX(h, lo, c, 14),
        "bb_percent_b": percent_b,
    }
    frame = market.select("date", *[pl.col(col).cast(pl.Float64) for col in OHLCV_COLUMNS]).with_columns(
        [pl.Series(name, values).fill_nan(None) for name, values in daily.items()]
    )
    frame = pl.concat([frame, _weekly_indicators(market)], how="horizontal").with_columns(
        _vwap(market, VWAP_PERIOD).fill_nan(None)
    )
    return frame.select("date", *FEATURE_COLUMNS)


def build_features(market: pl.DataFrame) -> pl.DataFrame:
    """``date`` + FEATURE_COLUMNS from the first day every indicator is defined (warm-up dropped).

    Warm-up is only ever at the start; a gap later on would mean broken input, so it is an error
    rather than a silently dropped row (which would splice unrelated days into one window).
    """
    frame = indicator_frame(market)
    complete = frame.select(pl.all_horizontal(pl.col(FEATURE_COLUMNS).is_not_null())).to_series()
    if not complete.any():
        raise FeatureError(
            f"market data has {market.height} rows, too few for the indicators' warm-up "
            f"(sma_200 alone needs 200 trading days, the weekly indicators about 30 weeks)"
        )
    first = int(complete.arg_true()[0])
    out = frame.slice(first)
    gaps = out.select(pl.col(FEATURE_COLUMNS).is_null().any())
    bad = [name for name in FEATURE_COLUMNS if gaps[name][0]]
    if bad:
        row = int(out.select(pl.any_horizontal(pl.col(bad).is_null())).to_series().arg_true()[0])
        raise FeatureError(f"feature(s) {', '.join(bad)} undefined on {out['date'][row]} after the warm-up")
    finite = out.select(pl.col(FEATURE_COLUMNS).is_finite().all())
    bad = [name for name in FEATURE_COLUMNS if not finite[name][0]]
    if bad:
        raise FeatureError(f"feature(s) {', '.join(bad)} are not finite after the warm-up")
    return out
