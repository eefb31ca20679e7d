"""The `market` group assets and their checks, materialized for real on an ephemeral instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from hpo_assets.defs.assets import market
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.settings import DATA_DIR


def run(selection: list[str] | None = None, path: str | None = None) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"market_data": {"config": {"path": path}}}} if path is not None else None
    return dg.materialize(
        [*dg.load_assets_from_modules([market]), *dg.load_asset_checks_from_modules([market])],
        resources={"paths": HpoPaths()},
        run_config=run_config,
        selection=selection,
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    data = failures[0].step_failure_data
    assert data.user_failure_data is not None
    return str(data.user_failure_data.description)


def test_market_and_features_materialize_with_metadata(isolated_dirs: Path) -> None:
    result = run()
    assert result.success
    m = result.asset_materializations_for_node("market_data")[0].metadata
    assert m["rows"].value == 5031
    assert m["first_date"].value == "1999-01-04" and m["last_date"].value == "2018-12-31"
    preview = m["preview"].value
    assert [c.name for c in preview.schema.columns][:2] == ["date", "open"]
    assert preview.records[0].data["date"] == "1999-01-04"
    assert m["longest_gap_days"].value == 7 and m["longest_gap"].value == "2001-09-10..2001-09-17"  # 9/11
    market_file = isolated_dirs / "outputs" / "market" / "market_data.parquet"
    assert m["path"].value == str(market_file) and pl.read_parquet(market_file).height == 5031

    f = result.asset_materializations_for_node("features")[0].metadata
    assert f["n_features"].value == 25
    assert f["rows_after_warmup"].value == 5031 - 199 and f["warmup_rows_dropped"].value == 199
    for h in (1, 3, 5):
        assert 0.0 < f[f"positive_rate_h{h}"].value < 1.0
    assert f["positive_rate_h1"].value < f["positive_rate_h5"].value  # a longer horizon hits 1% more often
    frame = pl.read_parquet(isolated_dirs / "outputs" / "features" / "features.parquet")
    assert frame.height == 4832 and {"label_h1", "label_h3", "label_h5"} <= set(frame.columns)

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"features_finite", "label_rates_in_range", "split_no_leakage"}
    assert all(e.passed for e in checks.values())
    assert checks["split_no_leakage"].metadata["horizons_checked"].value == 3
    assert checks["features_finite"].metadata["non_finite_values"].value == 0


def test_configured_path_and_wrong_path_keep_the_last_good_file(isolated_dirs: Path, tmp_path: Path) -> None:
    ok = run(["market_data"], path=str(DATA_DIR / "nasdaq_daily.csv.gz"))
    assert ok.success
    target = isolated_dirs / "outputs" / "market" / "market_data.parquet"
    before = target.read_bytes()

    missing = tmp_path / "no_such_file.csv"
    bad = run(["market_data"], path=str(missing))
    assert not bad.success
    assert failure_message(bad) == f"market data file not found: {missing}"
    assert target.read_bytes() == before

    broken = tmp_path / "broken.csv"
    broken.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,10,10.5,9,11,100\n")
    bad = run(["market_data"], path=str(broken))
    assert "row 1 (line 2) (2020-01-02): High is below max(Open, Close)" in failure_message(bad)
    assert target.read_bytes() == before


def test_features_without_market_data_says_what_to_do(isolated_dirs: Path) -> None:
    result = run(["features"])
    assert not result.success
    assert "materialize `market_data` first" in failure_message(result)


def test_split_check_fails_when_validation_is_too_small(isolated_dirs: Path) -> None:
    """A 5% threshold in one day is rare: the leakage check must refuse the unusable validation set."""
    result = dg.materialize(
        [*dg.load_assets_from_modules([market]), *dg.load_asset_checks_from_modules([market])],
        resources={"paths": HpoPaths()},
        raise_on_error=False,
        run_config={"ops": {"features": {"config": {"threshold": 0.05, "horizons": [1]}}}},
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["split_no_leakage"].passed
    assert "validation set has" in checks["split_no_leakage"].metadata["problems"].value


def test_bad_label_mode_is_one_clear_failure(isolated_dirs: Path) -> None:
    result = dg.materialize(
        dg.load_assets_from_modules([market]),
        resources={"paths": HpoPaths()},
        raise_on_error=False,
        run_config={"ops": {"features": {"config": {"label_mode": "low"}}}},
    )
    assert failure_message(result) == "features: label mode 'low' is not one of high, close"
