"""Assets of group `market`: validated daily bars (`market_data`) and model inputs with labels (`features`)."""

# No `from __future__ import annotations`: Dagster reads the Config and resource annotations at runtime.

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from hpo_assets import outputs
from hpo_assets import settings as project_settings
from hpo_assets.data.dataset import load_prepared
from hpo_assets.data.features import FEATURE_COLUMNS, FeatureError, build_features
from hpo_assets.data.market import MarketDataError, default_market_path, load_market
from hpo_assets.data.splits import SplitError, shared_days
from hpo_assets.data.targets import add_labels, label_column, label_metadata, positive_rates
from hpo_assets.defs.metadata import table
from hpo_assets.defs.resources import HpoPaths

_DATA = project_settings.settings()["data"]


def _rate(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.float(round(value, 4))


def _preview(frame: pl.DataFrame, n: int = 3) -> pl.DataFrame:
    return pl.concat([frame.head(n), frame.tail(n)]) if frame.height > 2 * n else frame


class MarketDataConfig(dg.Config):
    path: str = Field(
        default="",
        description="CSV (optionally .gz) or Parquet file of daily OHLCV bars; relative paths are taken "
        "from the project root; empty = the bundled S&P 500 (data.market_file in defaults.yaml).",
    )


class FeaturesConfig(dg.Config):
    threshold: float = Field(
        default=float(_DATA["threshold"]),
        description="Label: a rise of at least this fraction (0.01 = 1%) within the horizon.",
    )
    label_mode: str = Field(
        default=str(_DATA["label_mode"]),
        description='"high": max(High[t+1..t+h]); "close": max(Close[t+1..t+h]).',
    )
    horizons: list[int] = Field(
        default=list(_DATA["horizons"]), description="Horizons (trading days) to label."
    )


@dg.asset(
    group_name="market",
    kinds={"polars", "parquet"},
    description="Daily OHLCV bars, validated (dates, order, prices, High/Low consistency, gaps), "
    "from the bundled S&P 500 or a configured CSV/Parquet file.",
)
def market_data(
    context: dg.AssetExecutionContext, config: MarketDataConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    source = project_settings.project_path(config.path) if config.path.strip() else default_market_path()
    try:
        frame = load_market(source)
    except MarketDataError as exc:
        raise dg.Failure(
            description=str(exc), metadata={"source": str(source)}, allow_retries=False
        ) from None
    target = outputs.write_parquet(frame, paths.outputs(*outputs.MARKET_FILE))
    context.log.info(f"{frame.height} daily bars from {source} -> {target}")
    gaps = frame["date"].diff().dt.total_days()
    widest = int(gaps.arg_max()) if frame.height > 1 else 0  # type: ignore[arg-type]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "rows": frame.height,
            "first_date": str(frame["date"].min()),
            "last_date": str(frame["date"].max()),
            "columns": ", ".join(frame.columns),
            "longest_gap_days": int(gaps.max()) if frame.height > 1 else 0,  # type: ignore[arg-type]
            "longest_gap": f"{frame['date'][max(widest - 1, 0)]}..{frame['date'][widest]}",
            "source": dg.MetadataValue.path(str(source)),
            "path": dg.MetadataValue.path(str(target)),
            "preview": table(_preview(frame)),
        }
    )


@dg.asset(
    group_name="market",
    deps=[market_data],
    kinds={"polars", "parquet"},
    description="The 25 model inputs (OHLCV + 20 TA-Lib/polars indicators, warm-up dropped) "
    "and one binary label column per horizon.",
)
def features(
    context: dg.AssetExecutionContext, config: FeaturesConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    source = paths.outputs(*outputs.MARKET_FILE)
    if not source.is_file():
        raise dg.Failure(
            description=f"market data file {source} not found: materialize `market_data` first",
            allow_retries=False,
        )
    market = outputs.read_parquet(source)
    try:
        frame = add_labels(
            build_features(market), tuple(config.horizons), config.threshold, config.label_mode
        )
    except (FeatureError, ValueError) as exc:
        raise dg.Failure(description=f"features: {exc}", allow_retries=False) from None
    target = outputs.write_parquet(
        frame,
        paths.outputs(*outputs.FEATURES_FILE),
        metadata=label_metadata(config.threshold, config.label_mode),  # studies record the label definition
    )
    rates = positive_rates(frame, config.horizons)
    context.log.info(
        f"{len(FEATURE_COLUMNS)} features x {frame.height} rows -> {target}; positive rates {rates}"
    )
    preview_cols = [
        "date",
        "close",
        "rsi_daily",
        "rsi_weekly",
        "macd_line",
        "bb_percent_b",
        "vwap_20",
        *[label_column(h) for h in config.horizons],
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "n_features": len(FEATURE_COLUMNS),
            "rows_after_warmup": frame.height,
            "warmup_rows_dropped": market.height - frame.height,
            "first_date": str(frame["date"].min()),
            "last_date": str(frame["date"].max()),
            "threshold": config.threshold,
            "label_mode": config.label_mode,
            **{f"positive_rate_h{h}": _rate(r) for h, r in rates.items()},
            "feature_columns": ", ".join(FEATURE_COLUMNS),
            "path": dg.MetadataValue.path(str(target)),
            "preview": table(_preview(frame.select(preview_cols))),
        }
    )


def _features_or_none(paths: HpoPaths) -> tuple[Path, pl.DataFrame | None]:
    target = paths.outputs(*outputs.FEATURES_FILE)
    return target, (outputs.read_parquet(target) if target.is_file() else None)


@dg.asset_check(
    asset=features, description="No NaN or infinite value in any of the 25 model inputs after warm-up."
)
def features_finite(paths: HpoPaths) -> dg.AssetCheckResult:
    target, frame = _features_or_none(paths)
    if frame is None:
        return dg.AssetCheckResult(passed=False, description=f"{target} not found")
    x = frame.select(FEATURE_COLUMNS).to_numpy().astype(np.float64)
    bad = ~np.isfinite(x)
    per_column = {name: int(n) for name, n in zip(FEATURE_COLUMNS, bad.sum(axis=0), strict=True) if n}
    return dg.AssetCheckResult(
        passed=not per_column,
        metadata={
            "rows": frame.height,
            "non_finite_values": int(bad.sum()),
            "columns_with_non_finite": ", ".join(per_column) or "none",
        },
    )


@dg.asset_check(
    asset=features, description="Every label column has a positive rate strictly between 0 and 1."
)
def label_rates_in_range(paths: HpoPaths) -> dg.AssetCheckResult:
    target, frame = _features_or_none(paths)
    if frame is None:
        return dg.AssetCheckResult(passed=False, description=f"{target} not found")
    horizons = [int(c.removeprefix("label_h")) for c in frame.columns if c.startswith("label_h")]
    rates = positive_rates(frame, horizons)
    passed = bool(horizons) and all(r is not None and 0.0 < r < 1.0 for r in rates.values())
    return dg.AssetCheckResult(
        passed=passed,
        metadata={f"positive_rate_h{h}": _rate(r) for h, r in rates.items()} | {"horizons": len(horizons)},
    )


@dg.asset_check(
    asset=features,
    description="The default split of every horizon shares no day between train, validation and test "
    "and has enough samples of each class to measure validation AUC.",
)
def split_no_leakage(paths: HpoPaths) -> dg.AssetCheckResult:
    target, frame = _features_or_none(paths)
    if frame is None:
        return dg.AssetCheckResult(passed=False, description=f"{target} not found")
    horizons = [int(c.removeprefix("label_h")) for c in frame.columns if c.startswith("label_h")]
    rows, problems = [], []
    for h in horizons:
        try:
            data = load_prepared(target, h)
        except SplitError as exc:
            problems.append(f"h{h}: {exc}")
            continue
        shared = shared_days(data.split, len(data.y))
        s = data.split.summary()
        rows.append(
            {
                "horizon": h,
                "n_train": s["n_train"],
                "n_val": s["n_val"],
                "n_test": s["n_test"],
                "pos_val": s["pos_val"],
                "neg_val": s["neg_val"],
                "purge_gap": s["purge_gap"],
                "shared_days": sum(shared.values()),
            }
        )
        if any(shared.values()):
            problems.append(f"h{h}: days read by two parts {shared}")
    metadata: dict[str, Any] = {
        "horizons_checked": len(horizons),
        "problems": "; ".join(problems) or "none",
    }
    if rows:
        metadata["splits"] = table(pl.DataFrame(rows))
    return dg.AssetCheckResult(passed=bool(horizons) and not problems, metadata=metadata)
