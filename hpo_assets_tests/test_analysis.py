"""The analysis library on small constructed tables whose answers are known, and on the shipped examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from hpo_assets.analysis import importance as imp
from hpo_assets.analysis.consistency import consistency
from hpo_assets.analysis.coverage import classify, coverage
from hpo_assets.analysis.inputs import baselines_path, model_card_path, stored_val_outputs
from hpo_assets.analysis.intervals import block_bootstrap_auc, fit_log_slope, hanley_mcneil, hanley_mcneil_se
from hpo_assets.analysis.scaling import label_notes, scaling
from hpo_assets.trials.derive import derive_table
from hpo_assets.trials.extract import extract
from hpo_assets.trials.schema import to_table
from hpo_assets_tests.conftest import EXPORTS_DIR

FAST = imp.ImportanceSettings(fanova_bootstrap=4, fanova_shuffles=40, ped_bootstrap=20, ped_shuffles=40)


def _trial(study: str, num: int, **kw) -> dict:
    base = {
        "study": study, "source": "test", "source_path": "mem", "budget": "2M", "horizon": "h1", "tier": "a20",
        "trial_num": num, "state": "COMPLETE", "direction": "maximize", "objective_name": "val_auc", "diverged": False,
        "d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "param_count": 2_000_000, "lr": 1e-4,
        "dropout": 0.1, "weight_decay": 0.0, "warmup_steps": 100, "epochs_config": 20, "batch_size": 64,
    }  # fmt: skip
    base.update(kw)
    if base["state"] == "COMPLETE" and "val_auc" not in kw and base.get("objective") is not None:
        base["val_auc"] = base["objective"]
    return base


def _table(rows: list[dict]) -> pl.DataFrame:
    return derive_table(to_table(rows))


# ---- intervals ----------------------------------------------------------------------------------------------


def test_hanley_mcneil_matches_the_issue_figure_for_the_default_h1_split() -> None:
    # 424 validation samples, 84 positives: SE about 0.034 at AUC 0.73
    assert hanley_mcneil_se(0.73, 84, 340) == pytest.approx(0.0334, abs=5e-4)
    est = hanley_mcneil(0.73, 424, 84)
    assert est.hi - est.lo == pytest.approx(2 * 1.96 * 0.0334, abs=2e-3)
    assert hanley_mcneil(0.73, None, None).has_interval is False


def test_block_bootstrap_interval_covers_the_auc_and_needs_both_classes() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.25).astype(int)
    scores = labels * 0.8 + rng.normal(0, 1, 400)
    short = block_bootstrap_auc(scores, labels, horizon_days=1, n_boot=300)
    assert short.lo < short.value < short.hi
    assert short.evidence == "validation_logits" and "selection-biased" in short.noise
    assert block_bootstrap_auc(scores, np.zeros(400), horizon_days=1).value is None  # one class: no AUC


def test_slope_fit_recovers_a_planted_slope_with_an_interval() -> None:
    n = [1e6, 1e7, 1e8, 1e9]
    err = [0.30 - 0.02 * math.log10(x) for x in n]
    fit = fit_log_slope(n, err, [0.001] * 4)
    assert fit.slope == pytest.approx(-0.02) and fit.slope_lo < -0.02 < fit.slope_hi < 0


# ---- coverage -----------------------------------------------------------------------------------------------


def test_planted_repeats_are_counted_with_their_compute_hours() -> None:
    rows = [
        _trial("s", 0, objective=0.70, val_loss=0.60, duration_sec=3600.0),
        _trial("s", 1, objective=0.71, val_loss=0.59, lr=1e-3, duration_sec=3600.0),
        _trial("s", 2, objective=0.70, val_loss=0.60, duration_sec=3600.0),  # exact repeat of 0
        _trial("s", 3, objective=0.71, val_loss=0.59, lr=1e-3, duration_sec=1800.0),  # exact repeat of 1
        # same run as 0 with another warm-up (bit-identical results): effective repeat
        _trial("s", 4, objective=0.70, val_loss=0.60, warmup_steps=500, duration_sec=720.0),
        _trial("s", 5, state="FAIL", objective=None, diverged=True, diverged_reason="val_loss=nan", lr=1e-2, duration_sec=360.0),
        _trial("s", 6, state="PRUNED", objective=0.6, lr=1e-5, duration_sec=36.0),
        _trial("s", 7, state="FAIL", objective=None, state_reason="duplicate of #0: enqueued configuration already tested", duration_sec=1.0),
        _trial("s", 8, state="FAIL", objective=None, lr=3e-3, state_reason="CUDA out of memory", duration_sec=72.0),
        _trial("s", 9, objective=0.72, val_loss=0.58, dropout=0.3, duration_sec=3600.0),
    ]  # fmt: skip
    kinds = classify(_table(rows)).sort("trial_num")["kind"].to_list()
    assert kinds == ["useful", "useful", "exact_repeat", "exact_repeat", "effective_repeat", "diverged",
                     "pruned", "skipped", "failed", "useful"]  # fmt: skip
    row = coverage(_table(rows)).tables["studies"].row(0, named=True)
    assert (row["exact_repeat"], row["effective_repeat"], row["diverged"], row["failed"], row["pruned"]) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert row["exact_repeat_hours"] == pytest.approx(1.5)
    assert row["effective_repeat_hours"] == pytest.approx(0.2)
    assert row["wasted_hours"] == pytest.approx(1.5 + 0.2 + 0.1 + 0.02)  # a pruned trial is not waste
    assert row["exact_repeat_pct"] == pytest.approx(20.0)
    assert row["skipped"] == 1 and row["wasted"] == 5
    # the pruner's early stop saved the median COMPLETE trial (3600 s) minus what it ran (36 s)
    assert row["pruned_hours"] == pytest.approx(0.01) and row["pruned_saved_hours"] == pytest.approx(0.99)


def test_examples_have_10_13_15_exact_repeats_with_forced_trials_restored() -> None:
    cov = coverage(extract([str(EXPORTS_DIR)]).table)
    per = {r["study"]: r["exact_repeat"] for r in cov.tables["studies"].iter_rows(named=True)}
    assert per == {"hpo_2m_1_a50": 10, "hpo_20m_1_a50": 13, "hpo_200m_1_a50": 15}
    hours = cov.tables["studies"].filter(pl.col("study") == "hpo_2m_1_a50")["exact_repeat_hours"][0]
    assert 0 < hours < cov.tables["studies"].filter(pl.col("study") == "hpo_2m_1_a50")["compute_hours"][0]
    assert cov.tables["studies"]["second_half_near_best_pct"].is_not_null().all()


# ---- importance ---------------------------------------------------------------------------------------------


def _planted_importance_table(n: int = 60, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    lrs = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
    rows = []
    for i in range(n):
        k = int(rng.integers(0, 6))
        drop = float(rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]))
        width = int(rng.choice([32, 64, 128]))
        value = (
            0.55 + 0.03 * k + float(rng.normal(0, 0.005))
        )  # lr drives the objective; dropout and width are noise
        rows.append(
            _trial("planted", i, objective=value, lr=lrs[k], dropout=drop, d_model=width, d_ff=4 * width)
        )
    return _table(rows)


def test_a_planted_parameter_ranks_first_and_clears_the_noise_floor_a_noise_parameter_does_not() -> None:
    rows, notes = imp.study_importance(_planted_importance_table(), FAST)
    table = pl.DataFrame(rows)
    for kind in imp.EVALUATORS:
        t = table.filter(pl.col("evaluator") == kind)
        lr = t.filter(pl.col("parameter") == "lr").row(0, named=True)
        drop = t.filter(pl.col("parameter") == "dropout").row(0, named=True)
        assert lr["rank"] == 1, kind
        assert lr["distinguishable"] and lr["boot_lo"] > lr["noise_floor"], kind
        assert not drop["distinguishable"], kind
        assert drop["verdict"] == "not distinguishable from noise"
    assert set(table["parameter"]) == {"lr", "dropout", "width", "ff_width"}  # constant parameters left out


def test_pure_noise_study_has_no_distinguishable_parameter() -> None:
    rng = np.random.default_rng(3)
    rows = [
        _trial("noise", i, objective=0.6 + float(rng.normal(0, 0.01)), lr=float(10 ** rng.uniform(-5, -2)),
               dropout=float(rng.uniform(0, 0.5)))
        for i in range(50)
    ]  # fmt: skip
    rows_out, _ = imp.study_importance(_table(rows), FAST)
    assert rows_out and not any(r["distinguishable"] for r in rows_out)


def test_a_study_with_one_objective_value_says_so_instead_of_failing() -> None:
    rows = [  # 20 distinct configurations, one objective
        _trial(
            "flat",
            i,
            objective=0.5,
            lr=[1e-5, 1e-4, 3e-4, 1e-3][i % 4],
            dropout=[0.0, 0.1, 0.2, 0.3, 0.4][i % 5],
        )
        for i in range(20)
    ]
    rows_out, notes = imp.study_importance(_table(rows), FAST)
    assert rows_out == [] and any("same objective" in n for n in notes)
    part = imp.importance(_table(rows), "2M", "h1", FAST)
    assert part.tables["importances"].is_empty() and "enough COMPLETE trials" in part.headline[0]


def test_large_studies_are_subsampled_for_fanova_and_say_so() -> None:
    small = imp.ImportanceSettings(
        fanova_max_trials=30, fanova_bootstrap=2, fanova_shuffles=1, ped_bootstrap=5, ped_shuffles=2
    )
    rows, notes = imp.study_importance(_planted_importance_table(80), small)
    fan = [r for r in rows if r["evaluator"] == "fanova"]
    ped = [r for r in rows if r["evaluator"] == "ped_anova"]
    assert {r["n_used"] for r in fan} == {30} and {r["n_used"] for r in ped} == {fan[0]["n_trials"]}
    assert any("subsample of 30" in n for n in notes)


def test_importance_partition_and_summary_sections() -> None:
    df = _planted_importance_table(40)
    part = imp.importance(df, "2M", "h1", FAST)
    assert part.tables["importances"].height > 0 and part.plots["bars"].startswith(b"\x89PNG")
    empty = imp.importance(df, "2B", "h5", FAST)
    assert empty.tables["importances"].is_empty() and "No study" in empty.headline[0]
    summ = imp.summary([part.tables["importances"], empty.tables["importances"]])
    side = summ.tables["importances"]
    assert set(side["evaluator"]) == set(imp.EVALUATORS) and set(side["budget"]) == {"2M"}
    assert summ.plots["heatmap_fanova"].startswith(b"\x89PNG")


# ---- scaling ------------------------------------------------------------------------------------------------


def _scaling_table(values: dict[str, tuple[int, float]], n: int, pos: int, trials: int = 2) -> pl.DataFrame:
    rows = []
    for i, (budget, (count, auc)) in enumerate(values.items()):
        rows.append(_trial(f"hpo-{budget}-h1", 0, budget=budget, objective=auc, param_count=count))
        for t in range(1, trials):
            rows.append(_trial(f"hpo-{budget}-h1", t, budget=budget, objective=auc - 0.01 * t, param_count=count,
                               lr=1e-3 + i + t))  # fmt: skip
    return _table(rows).with_columns(val_size=pl.lit(n), val_positives=pl.lit(pos))


def _no_logits(*_args) -> None:
    return None


def test_validation_maxima_get_no_direction_and_print_their_inflation() -> None:
    # the seed's case: three maxima a third of a standard error apart; and a clear one: neither gets a direction
    for values in ({"2M": (2_000_000, 0.7178), "20M": (20_000_000, 0.7246), "200M": (200_000_000, 0.7147)},
                   {"2M": (2_000_000, 0.60), "20M": (20_000_000, 0.70), "200M": (200_000_000, 0.80)}):  # fmt: skip
        sec = scaling(_scaling_table(values, 424, 84, trials=6), read_logits=_no_logits, plot=False)
        v = sec.tables["verdicts"].row(0, named=True)
        assert v["verdict"] == "no verdict" and "selection-biased" in v["reason"]
        assert set(sec.tables["points"]["evidence"]) == {"hanley_mcneil"}
        assert sec.tables["points"]["expected_inflation"].min() > 0  # a maximum over noisy trials is inflated
        assert "expected inflation of each maximum: 2M +0.0" in v["reason"]
    assert v["mdd"] == pytest.approx(2.8 * math.sqrt(2) * 0.034, rel=0.15)
    assert "NO VERDICT" in sec.headline[0] and "200M - 2M = +0.200" in sec.headline[0]


def _card(root: Path, study: str, budget: str, params: int, true_shift: float, *, trial: int = 0,
          seeds: int = 3, seed: int = 0, identity: dict | None = None) -> None:  # fmt: skip
    """A model card with test predictions on 2 folds of a shared latent signal: `true_shift` scales how
    much of the signal the model sees (the same days and labels for every budget)."""
    rng = np.random.default_rng(100)
    n = 250
    z = np.cumsum(rng.normal(size=2 * n)) * 0.1 + rng.normal(size=2 * n)
    y = (z + rng.normal(size=2 * n) > 1.0).astype(int)
    shared = rng.normal(size=2 * n)  # what every model gets wrong alike: their AUCs are correlated
    own = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        logit = true_shift * z + shared + 0.3 * own.normal(size=2 * n)
        for i in range(2 * n):
            rows.append({"fold": i // n, "date": f"2017-{1 + i // 42:02d}-{i % 42:02d}", "label": int(y[i]), "seed": s,
                         "logit": float(logit[i]), "p_calibrated": 0.5})  # fmt: skip
    folder = model_card_path(root, budget, "h1").parent
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).write_parquet(folder / "test_predictions.parquet")
    card = {"budget": budget, "horizon": "h1", "param_count": params, "study": study,
            "trial": {"study_name": study, "trial_number": trial},
            "data_identity": identity or {"horizon_days": 1, "test_start": "2017-01-01"},
            "test": {"auc": 0.6, "auc_lo": 0.5, "auc_hi": 0.7, "n": 2 * n, "positives": int(y.sum())}}  # fmt: skip
    (folder / "card.json").write_text(json.dumps(card))


def test_test_evidence_is_compared_paired_and_a_clear_improvement_improves(tmp_path: Path) -> None:
    sizes = {"2M": 2_000_000, "20M": 20_000_000, "200M": 200_000_000}
    df = _scaling_table({b: (n, 0.70) for b, n in sizes.items()}, 424, 84)
    for k, (b, n) in enumerate(sizes.items()):
        _card(tmp_path, f"hpo-{b}-h1", b, n, 1.0 + 0.4 * k, seed=k)
    sec = scaling(df, outputs_root=tmp_path, read_logits=_no_logits, plot=False, n_boot=300)
    v = sec.tables["verdicts"].row(0, named=True)
    assert set(sec.tables["points"]["evidence"]) == {"test"}
    assert v["verdict"] == "improves" and v["diff_lo"] > 0 and v["comparison"] == "paired over test folds"
    assert (
        v["test_folds"] == 2 and v["test_days"] == 500 and "of their 3 and 3 seeds" in v["comparison_noise"]
    )
    # the paired interval is far narrower than the two points' own intervals combined
    pts = {r["budget"]: r for r in sec.tables["points"].iter_rows(named=True)}
    assert v["diff_hi"] - v["diff_lo"] < 0.5 * 2 * 1.96 * math.hypot(pts["2M"]["se"], pts["200M"]["se"])
    assert v["slope"] is not None and v["slope_lo"] is not None
    assert v["mdd"] == pytest.approx(2.8 * (v["diff_hi"] - v["diff_lo"]) / (2 * 1.96), rel=0.25)


def test_equal_models_on_the_same_days_are_inconclusive(tmp_path: Path) -> None:
    df = _scaling_table({"2M": (2_000_000, 0.70), "20M": (20_000_000, 0.71)}, 424, 84)
    _card(tmp_path, "hpo-2M-h1", "2M", 2_000_000, 1.0, seed=1)
    _card(tmp_path, "hpo-20M-h1", "20M", 20_000_000, 1.0, seed=2)
    v = (
        scaling(df, outputs_root=tmp_path, read_logits=_no_logits, plot=False, n_boot=300)
        .tables["verdicts"]
        .row(0, named=True)
    )
    assert v["verdict"] == "inconclusive" and v["diff_lo"] < 0 < v["diff_hi"] and "includes 0" in v["reason"]


def test_a_card_is_evidence_only_for_its_own_study_trial_and_data(tmp_path: Path) -> None:
    df = _scaling_table({"2M": (2_000_000, 0.70), "20M": (20_000_000, 0.71)}, 424, 84)
    _card(tmp_path, "another-study", "2M", 1_566_003, 1.0)  # e.g. the demo's own study next to an import
    _card(tmp_path, "hpo-20M-h1", "20M", 20_000_000, 1.0, trial=1)  # the study's best is trial 0 now
    bl = baselines_path(tmp_path, "h1")
    bl.parent.mkdir(parents=True)
    bl.write_text(json.dumps({"horizon": "h1", "rows": [{"model": "majority", "split": "test", "auc": 0.5, "n": 400, "positives": 80}]}))  # fmt: skip
    sec = scaling(df, outputs_root=tmp_path, read_logits=_no_logits, plot=False)
    pts = {r["budget"]: r for r in sec.tables["points"].iter_rows(named=True)}
    assert pts["2M"]["evidence"] == "hanley_mcneil" and pts["2M"]["value"] == 0.70
    assert pts["2M"]["param_count"] == 2_000_000  # its own winner's count, not the card's
    assert pts["20M"]["evidence"] == "hanley_mcneil"
    assert any("is for study another-study trial 0, not hpo-2M-h1" in n for n in sec.notes)
    assert any("retrained trial 1 of hpo-20M-h1, whose best trial is now 0" in n for n in sec.notes)
    assert sec.tables["baselines"]["model"].to_list() == ["majority"]


def test_evidence_kinds_are_never_mixed_in_a_verdict(tmp_path: Path) -> None:
    df = _scaling_table({"2M": (2_000_000, 0.60), "20M": (20_000_000, 0.90)}, 424, 84)
    _card(tmp_path, "hpo-20M-h1", "20M", 20_000_000, 3.0)
    v = (
        scaling(df, outputs_root=tmp_path, read_logits=_no_logits, plot=False)
        .tables["verdicts"]
        .row(0, named=True)
    )
    assert v["verdict"] == "no verdict" and "evidence kinds differ (2M: validation, 20M: test)" in v["reason"]


def test_a_card_on_other_data_is_not_used(tmp_path: Path) -> None:
    journal = tmp_path / "hpo-2M-h1.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name="hpo-2M-h1", storage=storage, direction="maximize")
    study.set_user_attr("test_start", "2016-10-01")
    study.add_trial(optuna.trial.create_trial(value=0.7))
    df = _table([_trial("hpo-2M-h1", 0, objective=0.7, source="optuna_storage", source_path=str(journal))])
    _card(tmp_path, "hpo-2M-h1", "2M", 2_000_000, 1.0, identity={"test_start": "2017-01-01"})
    sec = scaling(df, outputs_root=tmp_path, read_logits=_no_logits, plot=False)
    assert sec.tables["points"]["evidence"][0] != "test"
    assert any("test_start: card '2017-01-01', study '2016-10-01'" in n for n in sec.notes)


def test_the_slope_interval_widens_when_points_do_not_lie_on_a_line() -> None:
    n = [1e6, 1e7, 1e8, 1e9]
    line = fit_log_slope(n, [0.30, 0.29, 0.28, 0.27], [0.005] * 4)
    zigzag = fit_log_slope(n, [0.30, 0.26, 0.30, 0.26], [0.005] * 4)
    assert line.widened_by == 1.0 and zigzag.widened_by > 3 and zigzag.chi2 > 50
    assert (zigzag.slope_hi - zigzag.slope_lo) > 3 * (line.slope_hi - line.slope_lo)
    assert zigzag.slope_lo < 0 < zigzag.slope_hi


def test_stored_validation_logits_are_read_from_a_real_optuna_storage(tmp_path: Path) -> None:
    journal = tmp_path / "hpo-2M-h1.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name="hpo-2M-h1", storage=storage, direction="maximize")
    study.set_user_attr("n_train", 1800)
    rng = np.random.default_rng(1)
    labels = (rng.random(300) < 0.3).astype(int).tolist()
    logits = (np.asarray(labels) + rng.normal(0, 1, 300)).tolist()
    study.add_trial(
        optuna.trial.create_trial(value=0.7, user_attrs={"val_logits": logits, "val_labels": labels})
    )
    got = stored_val_outputs("optuna_storage", str(journal), "hpo-2M-h1", 0)
    assert got is not None and got[1] == labels and got[0][:3] == pytest.approx(logits[:3])
    df = _table([_trial("hpo-2M-h1", 0, objective=0.7, source="optuna_storage", source_path=str(journal))])
    pts = scaling(df, plot=False, n_boot=200).tables["points"].row(0, named=True)
    assert pts["evidence"] == "validation_logits" and pts["lo"] < pts["value"] < pts["hi"]
    assert pts["n_train"] == 1800 and pts["samples_per_param"] == pytest.approx(1800 / 2_000_000)
    rule = consistency(df).tables["best_trials"]["near_best_rule"][0]
    assert f"300 samples / {sum(labels)} positives" in rule  # SE of the best from the stored labels
    assert stored_val_outputs("template_export", "x", "s", 0) is None


# ---- consistency --------------------------------------------------------------------------------------------


def test_consistency_uses_one_standard_error_and_flags_edges() -> None:
    rows = [_trial("s", i, objective=v, lr=lr, dropout=d)
            for i, (v, lr, d) in enumerate([(0.75, 1e-3, 0.1), (0.74, 1e-4, 0.3), (0.60, 1e-5, 0.2), (0.59, 1e-4, 0.2)])]  # fmt: skip
    df = _table(rows).with_columns(val_size=pl.lit(424), val_positives=pl.lit(84))
    sec = consistency(df)
    best = sec.tables["best_trials"].row(0, named=True)
    assert (
        best["trial_num"] == 0 and best["near_best_trials"] == 2 and "Hanley-McNeil" in best["near_best_rule"]
    )
    dist = sec.tables["near_best_distribution"].filter(pl.col("parameter") == "lr")
    assert sorted(dist["value"].to_list()) == ["0.0001", "0.001"]
    edges = {(r["parameter"], r["edge"]) for r in sec.tables["edge_flags"].iter_rows(named=True)}
    assert ("lr", "highest tried") in edges and ("dropout", "lowest tried") in edges


# ---- warm starts --------------------------------------------------------------------------------------------


def test_report_says_per_study_whether_it_was_warm_started_and_from_what() -> None:
    from hpo_assets.analysis.report import render
    from hpo_assets.analysis.warm_start import warm_starts

    rows = [_trial("hpo-2M-h1", i, objective=0.7 + 0.01 * i) for i in range(3)]
    rows += [
        _trial("hpo-20M-h1", 0, budget="20M", objective=0.74, transferred_from="hpo-2M-h1#2"),
        _trial("hpo-20M-h1", 1, budget="20M", objective=0.71, transferred_from="hpo-2M-h1#2"),
        _trial("hpo-20M-h1", 2, budget="20M", objective=0.72),
    ]
    sec = warm_starts(_table(rows))
    by_study = {r["study"]: r for r in sec.tables["studies"].iter_rows(named=True)}
    assert (
        by_study["hpo-2M-h1"]["warm_started"] is False and by_study["hpo-2M-h1"]["transferred_from"] is None
    )
    warm = by_study["hpo-20M-h1"]
    assert (warm["warm_started"], warm["transferred_from"], warm["transferred_trials"]) == (
        True,
        "hpo-2M-h1#2",
        2,
    )
    assert warm["best_is_transferred"] is True  # trial 0 (0.74) is the best and was transferred
    assert sec.headline[0] == "1 of 2 studies were warm-started:"
    assert "hpo-20M-h1 (20M, h1) from hpo-2M-h1#2" in sec.headline[1]
    _, md = render([sec], pl.DataFrame(), {})
    assert "Warm-started studies" in md and "hpo-2M-h1#2" in md
    cold = warm_starts(_table(rows[:3]))
    assert cold.headline == ["All 1 studies were searched from scratch (no transfer_from)."]


def test_sections_round_trip_through_an_object_store_path() -> None:
    from upath import UPath

    from hpo_assets.analysis.section import Section, load_section, write_section

    folder = UPath("memory://analysis-test/out")
    sec = Section(
        "demo_section",
        "Demo",
        headline=["one"],
        tables={"t": pl.DataFrame({"a": [1, 2]})},
        plots={"p": b"\x89PNG.."},
    )
    written = write_section(sec, folder)
    assert str(written["json"]).startswith("memory://")
    back = load_section(folder, "demo_section")
    assert (
        back.headline == ["one"]
        and back.tables["t"]["a"].to_list() == [1, 2]
        and back.plots["p"] == b"\x89PNG.."
    )


def test_label_notes_flag_only_labels_that_do_not_measure_size() -> None:
    points = pl.DataFrame({"horizon": ["h1", "h1", "h1", "h3"], "tier": ["", "", "", ""],
                           "budget": ["2M", "20M", "200M", "20M"],
                           "param_count": [2_100_000, 19_000_000, 19_000_000, None]})  # fmt: skip
    notes = label_notes(points)
    assert notes == [
        "h1: budget 200M's best trial has 19,000,000 parameters (0.095x its label); the x axis and the verdict use the count.",
        "h1: budgets 20M, 200M share a best trial of 19,000,000 parameters: one model size under 2 labels, not 2 sizes.",
    ]
    assert label_notes(points.filter(pl.col("budget") == "2M")) == []  # within its +-25% band
    # A label that names no size (an imported study's own name) is compared with nothing, not an error.
    named = pl.DataFrame({"horizon": ["h1"], "tier": [""], "budget": ["a50-large"], "param_count": [1_000]})
    assert label_notes(named) == []


def test_the_shipped_examples_next_to_a_demo_card_keep_their_own_numbers(tmp_path: Path) -> None:
    # after `make demo` the demo's own 2M|h1 card sits at models/2M_h1: it must not become the import's point
    _card(tmp_path, "hpo-2M-h1", "2M", 1_566_003, 2.0)
    sec = scaling(extract([str(EXPORTS_DIR)]).table, outputs_root=tmp_path, plot=False)
    p = sec.tables["points"].filter(pl.col("budget") == "2M").row(0, named=True)
    assert (p["study"], p["trial_num"], p["param_count"]) == ("hpo_2m_1_a50", 15, 236_175)
    assert p["evidence"] != "test" and p["value"] == pytest.approx(0.7302, abs=1e-4)
    assert any("is for study hpo-2M-h1 trial 0, not hpo_2m_1_a50" in n for n in sec.notes)
    assert set(sec.tables["points"]["evidence"]) != {"test"}
