"""The report's first screen: the campaign grid, one headline per horizon with its interval, terms, the
studies side by side; wide tables folded away."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from hpo_assets.analysis.grid import campaign_grid, grid_cell, horizon_headlines, winners_side_by_side
from hpo_assets.analysis.inputs import baselines_path
from hpo_assets.analysis.report import front_page, render
from hpo_assets.analysis.scaling import scaling
from hpo_assets.trials.extract import extract
from hpo_assets_tests.conftest import EXPORTS_DIR
from hpo_assets_tests.test_analysis import _card, _table, _trial


def _live(budget: str, n: int, best: float) -> list[dict]:
    return [_trial(f"hpo-{budget}-h1", i, budget=budget, objective=best - 0.01 * i, source="optuna_storage",
                   source_path="mem", duration_sec=360.0, lr=1e-4 * (i + 1)) for i in range(n)]  # fmt: skip


def _attrs(_source: str | None, _path: str | None, study: str) -> dict:
    return {"n_trials_target": 12}  # what a live study records (runner: n_trials_target)


def test_grid_of_imports_says_imported_with_their_trials_and_compute() -> None:
    table = extract([str(EXPORTS_DIR)]).table
    grid = campaign_grid(table, None, budgets=["2M", "20M", "200M", "2B"], horizons=["h1", "h3"])
    assert grid.height == 8  # every budget x horizon, also those not started
    cell = grid.filter((pl.col("budget") == "2M") & (pl.col("horizon") == "h1")).row(0, named=True)
    assert cell["state"] == "imported" and cell["trials_done"] == 50 and cell["best_trial"] == 15
    assert (
        cell["best_objective"] == pl.Series([0.7302]).round(4)[0]
        or abs(cell["best_objective"] - 0.7302) < 1e-4
    )
    assert grid.filter(pl.col("budget") == "2B")["state"].to_list() == ["not started", "not started"]
    assert grid_cell(grid.row(grid.height - 1, named=True)) == "not started"


def test_a_live_cell_shows_target_hours_to_finish_and_state() -> None:
    table = _table(_live("2M", 6, 0.70))
    r = campaign_grid(table, None, read_attrs=_attrs).row(0, named=True)
    assert (r["state"], r["trials_done"], r["trials_target"]) == ("stopped short", 6, 12)
    assert abs(r["compute_hours"] - 0.6) < 1e-9 and abs(r["hours_to_finish"] - 0.6) < 1e-9
    assert grid_cell(r).startswith("6/12 trials · best val_auc 0.7000 · 36.0 min")
    assert "(+36.0 min to finish)" in grid_cell(r)


def test_studies_of_one_budget_on_two_feature_sets_get_a_row_each() -> None:
    # the demo's 2M|h1 study (tier a20) next to the imported a50 one: never summed into "62/12 trials"
    live = _table(_live("2M", 6, 0.70))
    table = pl.concat([live, extract([str(EXPORTS_DIR / "hpo_2m_1_a50")]).table], how="diagonal_relaxed")
    rows = {r["row"]: r for r in campaign_grid(table, None, read_attrs=_attrs).iter_rows(named=True)}
    assert set(rows) == {"2M a20", "2M a50"}
    a20 = rows["2M a20"]
    assert (a20["trials_done"], a20["trials_target"], a20["best_objective"]) == (6, 12, 0.70)
    assert rows["2M a50"]["state"] == "imported" and rows["2M a50"]["best_trial"] == 15


def test_headline_per_horizon_compares_budgets_paired_and_the_best_model_with_the_best_baseline(
    tmp_path: Path,
) -> None:
    table = _table(_live("2M", 3, 0.70) + _live("20M", 3, 0.71))
    _card(tmp_path, "hpo-2M-h1", "2M", 2_000_000, 1.0, seed=1)
    _card(tmp_path, "hpo-20M-h1", "20M", 20_000_000, 1.6, seed=2)
    for budget, diff in (("2M", -0.06), ("20M", -0.02)):  # the card's paired model - baseline rows
        path = tmp_path / "models" / f"{budget}_h1" / "card.json"
        card = json.loads(path.read_text())
        card["vs_baselines"] = [{"baseline": "majority", "auc_diff": 0.2, "auc_diff_lo": 0.1, "auc_diff_hi": 0.3, "verdict": "model better"},
                                {"baseline": "logistic", "auc_diff": diff, "auc_diff_lo": diff - 0.05, "auc_diff_hi": diff - 0.01, "verdict": "baseline better"}]  # fmt: skip
        path.write_text(json.dumps(card))
    bl = baselines_path(tmp_path, "h1")
    bl.parent.mkdir(parents=True)
    bl.write_text(json.dumps({"horizon": "h1", "rows": [{"model": "logistic", "split": "test", "auc": 0.70},
                                                        {"model": "majority", "split": "test", "auc": 0.5}]}))  # fmt: skip
    sec = scaling(table, outputs_root=tmp_path, read_logits=lambda *a: None, plot=False, n_boot=200)
    (line,) = horizon_headlines(sec.data["verdicts"], sec.tables["points"], tmp_path)
    assert (
        line.startswith("h1 a20: 20M - 2M = +0.")
        and "paired over test folds on 2 test fold(s), 500 days" in line
    )
    assert (
        "IMPROVES" in line
        and "Best model (20M, test AUC 0." in line
        and "− logistic = -0.020 [-0.070, -0.030]" in line
    )
    assert (
        "(baseline better)" in line and "majority" not in line
    )  # the best real baseline, not the constant one


def test_the_page_opens_with_the_grid_and_headlines_and_folds_wide_tables(tmp_path: Path) -> None:
    table = extract([str(EXPORTS_DIR)]).table
    sec = scaling(table, plot=False)
    front = front_page([sec], table, None)
    page, md = render([sec], pl.DataFrame(), {}, front=front)
    assert (
        page.index("<h2>Campaign</h2>")
        < page.index("<h2>Headlines, one per horizon</h2>")
        < page.index("<h2>Details</h2>")
    )
    assert page.index("What the terms mean") < page.index(sec.title)
    assert "<details><summary>points (" in page  # section tables collapsed
    assert "<table>" not in page.replace("<div class=wide><table>", "")  # every table scrolls inside its box
    assert md.startswith("# HPO report") and "## Campaign" in md and "| budget | h1 |" in md
    side = winners_side_by_side(table)
    assert side.columns == ["parameter", "2M|h1", "20M|h1", "200M|h1"]
    assert "warmup_steps" not in side["parameter"].to_list()  # no winner recorded it: no empty row
    assert set(front.plots) == {"studies_h1"}  # no learning curves in these exports: no empty panel
