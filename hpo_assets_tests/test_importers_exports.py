"""Export folders (template and legacy style), per-trial JSON folders, and a corpus of broken files made from the real exports."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from hpo_assets.trials.extract import extract
from hpo_assets.trials.importers import read_sources
from hpo_assets_tests.conftest import EXPORTS_DIR

REAL = {"hpo_2m_1_a50": "2M", "hpo_20m_1_a50": "20M", "hpo_200m_1_a50": "200M"}


@pytest.fixture(scope="module")
def real_table() -> pl.DataFrame:
    return extract([str(EXPORTS_DIR)]).table


def test_reads_all_150_real_trials_with_budgets_and_tier_from_the_folder_names(
    real_table: pl.DataFrame,
) -> None:
    assert real_table.height == 150
    got = dict(real_table.group_by("study").agg(pl.col("budget").unique()).iter_rows())
    assert {k: v for k, v in got.items()} == {k: [v] for k, v in REAL.items()}
    assert real_table["tier"].unique().to_list() == ["a50"]
    assert real_table["horizon"].unique().to_list() == ["h1"]
    assert set(real_table["source"].unique()) == {"template_export"}


def test_forced_trials_get_their_parameters_from_user_attrs(real_table: pl.DataFrame) -> None:
    raw = json.loads((EXPORTS_DIR / "hpo_2m_1_a50" / "all_trials.json").read_text())
    assert raw[0]["params"] == {}
    t0 = real_table.filter((pl.col("study") == "hpo_2m_1_a50") & (pl.col("trial_num") == 0)).row(
        0, named=True
    )
    ua = raw[0]["user_attrs"]
    assert (t0["d_model"], t0["n_layers"], t0["n_heads"]) == (
        ua["forced_d_model"],
        ua["forced_n_layers"],
        ua["forced_n_heads"],
    )
    assert t0["d_ff"] == ua["forced_d_model"] * ua["forced_d_ff_ratio"]
    assert (t0["lr"], t0["dropout"], t0["weight_decay"]) == (
        ua["forced_learning_rate"],
        ua["forced_dropout"],
        ua["forced_weight_decay"],
    )
    assert t0["forced_extreme"] is True and t0["extreme_type"] == "min_d_model"
    forced = real_table.filter(pl.col("trial_num") < 6)
    assert forced["d_model"].null_count() == 0 and forced["lr"].null_count() == 0


def test_ranks_by_auc_descending_and_agrees_with_best_params(real_table: pl.DataFrame) -> None:
    for study in REAL:
        best_file = json.loads((EXPORTS_DIR / study / "best_params.json").read_text())
        rows = real_table.filter(pl.col("study") == study)
        best = rows.filter(pl.col("rank_in_study") == 1)
        assert best_file["best_trial"] in best["trial_num"].to_list()
        assert best["objective"].max() == pytest.approx(best_file["best_value"])
        ranked = rows.filter(pl.col("rank_in_study").is_not_null()).sort("rank_in_study")
        assert ranked["objective"].is_sorted(descending=True)


def test_duplicates_match_an_independent_count_of_identical_configurations(real_table: pl.DataFrame) -> None:
    for study in REAL:
        trials = json.loads((EXPORTS_DIR / study / "all_trials.json").read_text())
        keys = Counter()
        expected = 0
        for t in trials:
            params = t["params"] or {
                k.removeprefix("forced_"): v
                for k, v in t["user_attrs"].items()
                if k.startswith("forced_") and k != "forced_extreme"
            }
            key = json.dumps(params, sort_keys=True)
            expected += keys[key] > 0
            keys[key] += 1
        got = real_table.filter((pl.col("study") == study) & pl.col("duplicate_of").is_not_null()).height
        assert got == expected and got > 0
    dup = real_table.filter(pl.col("duplicate_of").is_not_null()).row(0, named=True)
    orig = real_table.filter(
        (pl.col("study") == dup["study"]) & (pl.col("trial_num") == dup["duplicate_of"])
    ).row(0, named=True)
    assert orig["trial_num"] < dup["trial_num"] and orig["params_json"] == dup["params_json"]


def test_empty_csv_metrics_stay_null_never_invented(real_table: pl.DataFrame) -> None:
    for col in ("precision", "recall", "pred_min", "pred_max", "val_loss", "epochs_config"):
        assert real_table[col].null_count() == 150, col


# ---- broken-file corpus, made from the real files ----


def _copy(study: str, dest: Path) -> Path:
    out = dest / study
    shutil.copytree(EXPORTS_DIR / study, out)
    return out


def _items(folder: Path) -> list[dict]:
    return json.loads((folder / "all_trials.json").read_text())


def _write(folder: Path, items: list[dict] | str) -> None:
    (folder / "all_trials.json").write_text(items if isinstance(items, str) else json.dumps(items))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    # not JSON at all
    f = _copy("hpo_2m_1_a50", root / "not_json")
    _write(f, "<html>this is not json</html>")
    # a list cut short in the middle of item 20
    f = _copy("hpo_2m_1_a50", root / "truncated")
    text = json.dumps(_items(f), indent=1)
    cut = text.index('"number": 20')
    _write(f, text[: cut + 5])
    # item 3 missing `number`, item 4 missing `value`, item 5 unknown state, items 6/7/8 NaN / null / Infinity values
    f = _copy("hpo_20m_1_a50", root / "bad_items")
    items = _items(f)
    del items[3]["number"]
    del items[4]["value"]
    items[5]["state"] = "TrialState.EXPLODED"
    text = json.dumps(items)
    for n, token in ((6, "NaN"), (7, "null"), (8, "Infinity")):
        old = json.dumps(items[n]["value"])
        text = text.replace(f'"number": {n}, "value": {old}', f'"number": {n}, "value": {token}', 1)
    _write(f, text)
    # CSV with an extra column and a missing one; forced trial 1 without forced_* attrs (params must come from the CSV)
    f = _copy("hpo_200m_1_a50", root / "bad_csv")
    csv_path = f / "trial_metrics.csv"
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("pred_max")
    rows = [[*line.split(",")[:drop], *line.split(",")[drop + 1 :], "x"] for line in lines]
    rows[0][-1] = "surprise"
    csv_path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    items = _items(f)
    items[1]["user_attrs"] = {
        k: v
        for k, v in items[1]["user_attrs"].items()
        if not k.startswith("forced_") or k == "forced_extreme"
    }
    _write(f, items)
    # an empty folder
    (root / "empty").mkdir()
    return root


def test_broken_corpus_reports_each_problem_and_imports_the_rest(corpus: Path) -> None:
    result = read_sources([str(corpus)])
    problems = [str(p) for p in result.all_problems]
    by_study = {s.study: s for s in result.studies}

    def has(*words: str) -> bool:
        return any(all(w in p for w in words) for p in problems)

    # not JSON: reported by path, nothing read from it
    assert has("not_json/hpo_2m_1_a50/all_trials.json", "not valid JSON")
    # truncated list: the 20 complete items are kept
    assert has("truncated/hpo_2m_1_a50/all_trials.json", "cut short", "20 complete items")
    # bad items: each one named; the other trials imported
    assert has("bad_items", "[item 3]", "`number` missing")
    assert has("bad_items", "[item 4]", "no `value`")
    assert has("bad_items", "[item 5]", "unknown state", "EXPLODED")
    for n in (6, 7, 8):
        assert has("bad_items", f"[item {n}]", "COMPLETE with value")
    # CSV columns reported
    assert has(
        "bad_csv", "trial_metrics.csv", "unexpected columns ['surprise']", "missing columns ['pred_max']"
    )
    # empty folder
    assert has("empty", "no studies found")

    assert by_study["hpo_2m_1_a50"].source_path.endswith("truncated/hpo_2m_1_a50")
    assert len(by_study["hpo_2m_1_a50"].rows) == 20
    assert len(by_study["hpo_20m_1_a50"].rows) == 48 and by_study["hpo_20m_1_a50"].skipped == 2
    assert len(by_study["hpo_200m_1_a50"].rows) == 50
    assert result.n_read == 118 and result.n_skipped == 2

    table = extract([str(corpus)]).table
    bad = table.filter(pl.col("study") == "hpo_20m_1_a50")
    for n in (4, 6, 7, 8):
        row = bad.filter(pl.col("trial_num") == n).row(0, named=True)
        assert row["state"] == "COMPLETE" and row["objective"] is None, n
        assert row["state_reason"] and "objective left null" in row["state_reason"], n
        assert row["rank_in_study"] is None
    # forced trial whose user_attrs lost forced_*: its parameters come from the CSV row
    t1 = table.filter((pl.col("study") == "hpo_200m_1_a50") & (pl.col("trial_num") == 1)).row(0, named=True)
    assert t1["d_model"] == 384 and t1["n_layers"] == 10 and t1["lr"] == pytest.approx(5e-5)


def test_a_nonexistent_path_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = read_sources([str(tmp_path / "nope"), str(EXPORTS_DIR / "hpo_2m_1_a50")])
    assert result.n_read == 50
    assert [p.problem for p in result.all_problems] == ["does not exist"]


def test_legacy_export_is_read_with_the_same_meaning(tmp_path: Path) -> None:
    src = EXPORTS_DIR / "hpo_2m_1_a50"
    folder = tmp_path / "hpo_2m_1_legacy"
    folder.mkdir()
    items = [
        {"number": t["number"], "value": t["value"], "params": t["params"], "state": "COMPLETE"}
        for t in json.loads((src / "all_trials.json").read_text())
    ]
    (folder / "all_trials.json").write_text(json.dumps(items))
    best = json.loads((src / "best_params.json").read_text())
    (folder / "best_params.json").write_text(
        json.dumps(
            {
                k: best[k]
                for k in (
                    "experiment",
                    "budget",
                    "horizon",
                    "n_trials",
                    "best_trial",
                    "best_value",
                    "best_params",
                    "search_space",
                )
            }
            | {"total_time_min": 12.5, "timestamp": "2026-01-01T00:00:00"}
        )
    )
    table = extract([str(tmp_path)]).table
    assert table.height == 50 and table["source"].unique().to_list() == ["legacy_export"]
    assert table["budget"].unique().to_list() == ["2M"] and table["tier"].null_count() == 50
    assert table.filter(pl.col("rank_in_study") == 1)["trial_num"].to_list() == [best["best_trial"]]
    # forced trials with params {} and no user_attrs: unknown parameters stay null
    assert table.filter(pl.col("trial_num") < 6)["d_model"].null_count() == 6


def _trial_file(num: int, value: float, curve: list[tuple[float, float]], state: str = "COMPLETE") -> dict:
    return {
        "trial_number": num,
        "value": value,
        "state": state,
        "params": {
            "learning_rate": 1e-3,
            "epochs": 10,
            "weight_decay": 0.0,
            "warmup_steps": 50,
            "dropout": 0.1,
        },
        "datetime_start": "2025-01-01T00:00:00",
        "datetime_complete": "2025-01-01T00:01:00",
        "duration_seconds": 60.0,
        "architecture": {
            "d_model": 64 * (num + 1),
            "n_layers": 4,
            "n_heads": 4,
            "d_ff": 256,
            "param_count": 2_000_000,
        },
        "user_attrs": {
            "arch_idx": num,
            "learning_curve": [
                {"epoch": i, "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(curve)
            ],
            "val_accuracy": 0.55,
            "train_accuracy": 0.6,
        },
    }


def test_per_trial_json_folder_min_loss_and_sentinel_divergence(tmp_path: Path) -> None:
    study = tmp_path / "phase6a_2M_h1_threshold_1pct" / "trials"
    study.mkdir(parents=True)
    nan = float("nan")
    files = {
        0: _trial_file(0, 0.62, [(0.7, 0.66), (0.6, 0.62), (0.55, 0.63)]),
        1: _trial_file(1, 0.60, [(0.7, 0.65), (0.6, 0.60)]),
        2: _trial_file(2, 100.0, [(0.7, 0.69), (5.0, 0.68), (nan, nan)]),
    }
    for n, data in files.items():
        (study / f"trial_{n:03d}.json").write_text(json.dumps(data))
    (study / "trial_003.json").write_text('{"trial_number": 3, "value": ')
    result = read_sources([str(tmp_path)])
    assert [p.path.endswith("trial_003.json") for p in result.all_problems] == [True]
    table = extract([str(tmp_path)]).table
    assert table.height == 3
    assert (table["budget"].unique().to_list(), table["horizon"].unique().to_list()) == (["2M"], ["h1"])
    assert table["direction"].unique().to_list() == ["minimize"]
    t = {r["trial_num"]: r for r in table.iter_rows(named=True)}
    assert t[1]["rank_in_study"] == 1 and t[0]["rank_in_study"] == 2  # val loss minimised
    assert (
        t[0]["min_val_loss_epoch"] == 1
        and t[0]["min_val_loss"] == pytest.approx(0.62)
        and t[0]["epochs_trained"] == 3
    )
    assert t[0]["best_epoch"] is None  # which epoch `value` measures is not recorded: left null, not guessed
    assert t[0]["label_threshold"] == pytest.approx(0.01)  # the folder name says threshold_1pct
    # no tier, so no input count: the formula cannot apply and the recorded count stays
    assert t[0]["n_features"] is None and t[0]["param_count"] == 2_000_000
    assert t[0]["early_stopped"] is True and t[0]["epochs_config"] == 10 and t[0]["lr"] == pytest.approx(1e-3)
    div = t[2]
    assert div["diverged"] and div["state"] == "FAIL" and div["objective"] is None
    assert "100.0" in div["state_reason"] and div["rank_in_study"] is None
    assert (
        div["diverge_epoch"] == 2
        and div["last_good_loss"] == pytest.approx(0.68)
        and div["loss_at_diverge"] is None
    )
    assert (div["similar_successful_study"], div["similar_successful_trial"]) == (
        "phase6a_2M_h1_threshold_1pct",
        1,
    )
    assert div["learning_curve"][2]["val_loss"] is None  # NaN is not carried into the table
