"""Derived fields exactly as DESIGN.md defines them, on hand-made rows whose answers are known."""

from __future__ import annotations

import math

import polars as pl
import pytest

from hpo_assets.trials.derive import derive_table, finish_row
from hpo_assets.trials.names import parse_study_name
from hpo_assets.trials.schema import COLUMN_DOCS, COLUMNS, TRIAL_SCHEMA, to_table


def _row(num: int, **kw: object) -> dict:
    base = {
        "study": "s",
        "source": "optuna_storage",
        "budget": "2M",
        "trial_num": num,
        "state": "COMPLETE",
        "direction": "maximize",
        "d_model": 64,
        "n_layers": 4,
        "n_heads": 4,
        "d_ff": 256,
        "lr": 1e-3,
        "dropout": 0.1,
        "forced_extreme": False,
        "learning_curve": [],
    }
    return finish_row({**base, **kw})


def _curve(vals: list[float]) -> list[dict]:
    return [
        {"epoch": i + 1, "train_loss": 0.5, "val_loss": v, "val_auc": None, "lr": None, "seconds": None}
        for i, v in enumerate(vals)
    ]


def test_every_column_has_a_type_and_a_description() -> None:
    assert set(COLUMN_DOCS) == set(TRIAL_SCHEMA) == set(COLUMNS)
    assert all(COLUMN_DOCS[c].strip() for c in COLUMNS)
    assert len(COLUMNS) - 1 >= 35


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hpo-2M-h1", ("2M", "h1", None)),
        ("hpo_2m_1_a50", ("2M", "h1", "a50")),
        ("hpo_200m_1_a50", ("200M", "h1", "a50")),
        ("phase6a_2M_h1_threshold_1pct", ("2M", "h1", None)),
        ("hpo-2B-h5", ("2B", "h5", None)),
        ("my_study", (None, None, None)),
    ],
)
def test_study_names(name: str, expected: tuple) -> None:
    parsed = parse_study_name(name)
    assert (parsed.budget, parsed.horizon, parsed.tier) == expected


def test_curve_fields_and_divergence_at_the_first_bad_epoch() -> None:
    row = _row(0, epochs_config=10, learning_curve=_curve([0.7, 0.6, 0.65, 12.0, math.nan]))
    assert (row["min_val_loss_epoch"], row["min_val_loss"], row["epochs_trained"]) == (2, 0.6, 5)
    assert row["best_epoch"] is None  # no source said which epoch its metrics measure: not guessed
    assert row["early_stopped"] is False  # shorter than configured, but diverged: not stopped by patience
    assert row["diverged"] and row["diverge_epoch"] == 4
    assert row["last_good_loss"] == 0.65 and row["loss_at_diverge"] == 12.0
    assert "val_loss=12.0 at epoch 4" in row["diverged_reason"]
    assert row["state"] == "FAIL" and row["objective"] is None
    curve = to_table([row])["learning_curve"][0].to_list()
    assert [r["val_loss"] for r in curve] == [0.7, 0.6, 0.65, 12.0, None]  # NaN becomes null in the table


def test_not_diverged_and_not_early_stopped_when_all_epochs_ran() -> None:
    row = _row(0, objective=0.6, epochs_config=3, learning_curve=_curve([0.7, 0.6, 0.65]))
    assert not row["diverged"] and row["diverged_reason"] is None and row["early_stopped"] is False
    assert row["objective"] == 0.6 and row["state"] == "COMPLETE"


def test_metrics_epoch_is_the_recorded_one_not_the_lowest_loss() -> None:
    row = finish_row(
        {"state": "COMPLETE", "objective": 0.62, "val_auc": 0.62, "epochs_config": 4,
         "learning_curve": _curve([0.70, 0.65, 0.66])},
        recorded={"metrics_epoch": 3, "early_stopped": True},
    )  # fmt: skip
    assert (row["best_epoch"], row["min_val_loss_epoch"], row["min_val_loss"]) == (3, 2, 0.65)


@pytest.mark.parametrize(
    ("state", "kw", "recorded", "expected"),
    [
        ("COMPLETE", {"epochs_config": 10}, {"early_stopped": True}, True),  # the trainer's own flag wins
        ("COMPLETE", {"epochs_config": 3}, {"early_stopped": False}, False),
        ("COMPLETE", {"epochs_config": 10}, {}, True),  # import: fewer epochs than configured
        ("COMPLETE", {"epochs_config": 3}, {}, False),
        ("COMPLETE", {}, {}, None),  # epochs_config unknown: cannot tell
        ("PRUNED", {"epochs_config": 10}, {}, False),  # pruned, not patience
        ("FAIL", {"epochs_config": 10}, {}, False),
        ("PRUNED", {"epochs_config": 10}, {"early_stopped": True}, False),
        ("RUNNING", {"epochs_config": 10}, {}, None),
    ],
)
def test_early_stopped_means_patience_only(
    state: str, kw: dict, recorded: dict, expected: bool | None
) -> None:
    row = finish_row({"state": state, "objective": 0.6, "learning_curve": _curve([0.7, 0.6, 0.65]), **kw},
                     recorded=recorded)  # fmt: skip
    assert row["early_stopped"] is expected


def test_a_diverged_short_run_is_not_early_stopped() -> None:
    row = finish_row(
        {"state": "COMPLETE", "objective": 0.6, "epochs_config": 10, "learning_curve": _curve([0.7, 9.0])}
    )
    assert row["diverged"] and row["epochs_trained"] == 2 and row["early_stopped"] is False


def test_guard_and_sentinel_and_unknown_epochs() -> None:
    guard = finish_row(
        {"state": "FAIL", "learning_curve": []}, guard_fired=True, guard_reason="loss exploded", guard_epoch=7
    )
    assert guard["diverged"] and guard["diverge_epoch"] == 7 and guard["diverged_reason"] == "loss exploded"
    sentinel = _row(0, objective=100.0, val_loss=100.0)
    assert sentinel["diverged"] and sentinel["state"] == "FAIL" and "100.0" in sentinel["state_reason"]
    unknown = _row(0, objective=0.6)
    assert unknown["early_stopped"] is None and unknown["epochs_trained"] is None


def test_study_level_fields() -> None:
    rows = [
        _row(0, objective=0.70),
        _row(1, objective=0.70),  # same params as 0 -> duplicate_of 0, tied rank 1
        _row(2, objective=0.60, lr=1e-4),
        _row(
            3,
            state="FAIL",
            lr=1e-2,
            d_model=512,
            n_layers=2,
            n_heads=8,
            learning_curve=_curve([0.7, math.inf]),
        ),
        _row(4, objective=0.65, lr=1e-4, d_model=256, n_layers=2, n_heads=8),
        _row(5, state="PRUNED", objective=None),  # same params as 0 but pruned: points at 0
        _row(0, study="t", direction="minimize", objective=0.3, d_model=8, n_layers=8),
        _row(1, study="t", direction="minimize", objective=0.2, d_model=512, n_layers=100),  # ratio 0.195
    ]
    df = derive_table(to_table(rows))
    s = {r["trial_num"]: r for r in df.filter(pl.col("study") == "s").iter_rows(named=True)}
    assert [s[i]["rank_in_study"] for i in range(6)] == [1, 1, 4, None, 3, None]
    assert [s[i]["duplicate_of"] for i in range(6)] == [None, 0, None, None, None, 0]
    assert s[0]["is_best_in_study"] and s[1]["is_best_in_study"] and not s[4]["is_best_in_study"]
    # nearest non-diverged COMPLETE of the same budget in log(d_model, n_layers, n_heads): trial 4
    assert (s[3]["similar_successful_study"], s[3]["similar_successful_trial"]) == ("s", 4)
    assert s[0]["similar_successful_trial"] is None
    t = {r["trial_num"]: r for r in df.filter(pl.col("study") == "t").iter_rows(named=True)}
    assert (t[1]["rank_in_study"], t[0]["rank_in_study"]) == (1, 2)  # minimize
    assert t[0]["arch_category"] == "narrow-deep" and t[0]["arch_ratio"] == 1.0
    assert s[0]["arch_category"] == "wide-shallow" and s[0]["arch_ratio"] == pytest.approx(4 / 64)
    assert t[1]["arch_category"] == "balanced"


def test_a_study_still_running_is_shown_as_such_and_left_out_of_verdicts() -> None:
    from hpo_assets.analysis.scaling import winners
    from hpo_assets.trials.extract import study_overview

    rows = [
        _row(0, study="hpo-2M-h1", objective=0.60, horizon=1),
        _row(1, study="hpo-2M-h1", state="RUNNING", objective=None, horizon=1),  # the nightly run met it here
        _row(2, study="hpo-2M-h1", state="WAITING", objective=None, horizon=1),
        _row(0, study="hpo-20M-h1", budget="20M", objective=0.55, horizon=1),
    ]
    df = derive_table(to_table(rows))
    flags = dict(df.group_by("study").agg(pl.col("study_in_progress").unique()).iter_rows())
    assert flags == {"hpo-2M-h1": [True], "hpo-20M-h1": [False]}
    overview = {r["study"]: r["in_progress"] for r in study_overview(df).iter_rows(named=True)}
    assert overview == {"hpo-2M-h1": True, "hpo-20M-h1": False}
    assert winners(df)["study"].to_list() == ["hpo-20M-h1"], "the running study's best so far is no verdict"
    finished = derive_table(to_table([r for r in rows if r["state"] == "COMPLETE"]))
    assert sorted(winners(finished)["study"].to_list()) == ["hpo-20M-h1", "hpo-2M-h1"]
