"""Reading calibration honestly: ECE against what perfect calibration scores, the spread of predictions,
the card's lines, and the known-truth simulation of the ECE rule (fast fixed-seed subset)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.special import expit, logit

from hpo_assets.calibration import calibrators, perfect_calibration
from hpo_assets.calibration.bootstrap import auc_block_sensitivity
from hpo_assets.calibration.evaluation import evaluate, flat, spread
from hpo_assets.calibration.metrics import expected_calibration_error, maximum_calibration_error
from hpo_assets.calibration.model_card import card_markdown, reliability_png
from hpo_assets.simulation.calibration import ar1_probabilities, ece_rates


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = ar1_probabilities(n, rng)
    return (rng.random(n) < p).astype(float), p


def test_simulated_labels_are_bernoulli_p_and_overlap_like_h_day_windows() -> None:
    rng = np.random.default_rng(0)
    p = np.full(4000, 0.3)
    for h in (1, 5):
        y = perfect_calibration.calibrated_labels(p, h, 50, rng)
        assert y.mean() == pytest.approx(0.3, abs=0.005)
        lag1 = np.mean([np.corrcoef(r[:-1], r[1:])[0, 1] for r in y[:10]])
        assert (lag1 < 0.05) if h == 1 else (0.4 < lag1 < 0.8), (h, lag1)


def test_vectorised_ece_equals_the_metric_on_every_simulated_row() -> None:
    y, p = _calibrated(300, 1)
    sims = perfect_calibration.calibrated_labels(p, 3, 5, np.random.default_rng(2))
    for strategy in ("uniform", "quantile"):
        e, m = perfect_calibration.ece_rows(sims, p, 10, strategy)
        np.testing.assert_allclose(e, [expected_calibration_error(r, p, 10, strategy) for r in sims])
        np.testing.assert_allclose(m, [maximum_calibration_error(r, p, 10, strategy) for r in sims])


def test_a_calibrated_predictor_scores_a_positive_ece_within_the_perfect_range_a_shifted_one_above() -> None:
    y, p = _calibrated(500, 3)
    ref = perfect_calibration.reference(y, p, 1, n_sims=500)
    assert ref["ece"] > 0.01  # the plug-in bias: a calibrated predictor does not score 0
    assert 0.01 < ref["perfect_mean"] < 0.06 and ref["perfect_lo"] < ref["ece"] < ref["perfect_hi"]
    assert ref["verdict"] == perfect_calibration.WITHIN and ref["p_value"] > 0.025
    assert ref["excess"] == pytest.approx(ref["ece"] - ref["perfect_mean"])
    off = perfect_calibration.reference(y, expit(logit(p) + 1.0), 1, n_sims=500)
    assert off["verdict"] == perfect_calibration.ABOVE and off["p_value"] < 0.01
    assert perfect_calibration.text(ref).startswith(
        f"{ref['ece']:.4f}: within what perfect calibration scores"
    )


def test_spread_shows_a_collapsed_band_and_what_a_rescaling_does_to_it() -> None:
    p = np.array([0.10, 0.11, 0.12, 0.13, 0.14, 0.30])
    sp = spread(p, base_rate=0.12)
    assert (sp["min"], sp["max"], sp["q50"]) == (0.10, 0.30, pytest.approx(0.125))
    assert sp["share_near_base_rate"] == pytest.approx(5 / 6)
    wide = spread(expit(3 * logit(p) - 2 * logit(0.12)), base_rate=0.12)  # same median, 3x the logit spread
    assert wide["share_near_base_rate"] < sp["share_near_base_rate"] and wide["max"] > 0.6


def _card(y: np.ndarray, z: np.ndarray, z_val: np.ndarray, y_val: np.ndarray) -> dict:
    sel = calibrators.select(z_val, y_val)
    before = evaluate(y, expit(z), 1, 100)
    after = evaluate(y, sel.calibrator.predict(z), 1, 100)
    data = {k: "2020-01-01" for k in ("data_start", "data_end", "train_first", "train_last", "val_first",
                                      "val_last", "test_first", "test_last")}  # fmt: skip
    return {
        "budget": "2M", "horizon": "h1", "horizon_days": 1, "param_count": 1000,
        "trial": {"arch": "d64", "trial_number": 3, "study_name": "s", "objective": "val_auc",
                  "recorded_value": 0.7, "train": {"lr": 0.001}, "max_epochs": 2, "patience": 2, "seed": 42},
        "data": {**data, "n_train": 10, "n_val": len(y_val), "n_test": len(y), "purge_gap": 0},
        "test": {**flat(after, ("auc", "log_loss", "brier", "accuracy")), "positives": int(y.sum()), "seed_aucs": [0.6]},
        "seeds": [42], "saved_seed": 42,
        "reproduction": {"retrained": 0.7, "recorded": 0.7, "abs_diff": 0.0, "tolerance": 1e-4},
        "seed_spread": {"auc_mean": 0.6, "auc_sd": None, "auc_min": 0.6, "auc_max": 0.6},
        "interval_noise": "noise",
        "bootstrap": {"sensitivity": auc_block_sensitivity(y, expit(z), 1, 100)},
        "baselines": [], "vs_baselines": [],
        "calibration": {**sel.to_dict(), "folds": 5, "before": flat(before), "after": flat(after),
                        "bins_after_width": after["bins_width"], "bins_after_mass": after["bins_mass"]},
    }  # fmt: skip


def test_the_card_reads_ece_against_perfect_calibration_and_shows_the_spread() -> None:
    y, p = _calibrated(400, 5)
    y_val, p_val = _calibrated(300, 6)
    card = _card(y, logit(p), logit(p_val), y_val)
    md = card_markdown(card)
    ref = card["calibration"]["before"]["perfect_calibration"]["ece_width"]
    assert f"| ece_width | before | {perfect_calibration.text(ref)} |" in md
    assert "not of the calibration error" in md
    sp = card["calibration"]["after"]["spread"]
    assert f"| after | {sp['min']:.3f} | {sp['max']:.3f} |" in md and "share within ±0.05 of base rate" in md
    assert "Block-length sensitivity: SE of test AUC at blocks of" in md
    assert f"Chosen method: **{card['calibration']['chosen']}**: lowest forward validation log loss" in md
    assert "| none | " in md.split("forward validation log loss |")[1]


def test_reliability_png_has_the_prediction_histogram_under_the_two_panels() -> None:
    y, p = _calibrated(300, 7)
    png = reliability_png(y, p, np.clip(p * 1.5, 0, 1), "t")
    img = imread(io.BytesIO(png))
    assert img.shape[0] > img.shape[1] * 0.6  # 10 x 6.6 inches: taller than the old 10 x 4.4 two panels
    bottom = img[int(img.shape[0] * 0.72) : int(img.shape[0] * 0.9), :, :3]
    red = bottom[..., 0] - bottom[..., 2] > 0.2  # "before" bars (translucent tab:red), bottom strip
    blue = bottom[..., 2] - bottom[..., 0] > 0.2  # the "after" bars
    assert red.mean() > 0.01 and blue.mean() > 0.01


def test_ece_rule_false_alarm_rate_and_coverage_within_their_monte_carlo_bounds() -> None:
    r = ece_rates(60, seed=0, reference_sims=200, bootstrap_resamples=0)
    assert r["settings"]["n_days"] == 250 and 0.09 < r["settings"]["observed_base_rate"] < 0.16
    for key in ("false_miscalibrated", "false_miscalibrated_mass", "false_miscalibrated_h5"):
        assert r[key]["lo"] <= 0.05, (key, r[key])  # the rate is consistent with the <= 5% goal
    cov = r["perfect_range_coverage"]
    assert cov["lo"] <= 0.97 and cov["hi"] >= 0.93, cov
    assert r["power_shift_0.6"]["lo"] > 0.05  # and the rule does fire on a miscalibrated predictor
    assert r["false_miscalibrated_h5_read_as_h1"]["rate"] > r["false_miscalibrated_h5"]["rate"]


def test_pooled_sensitivity_over_folds_matches_the_one_fold_reading_and_lists_each_folds_block() -> None:
    from hpo_assets.calibration.bootstrap import pooled_auc_sensitivity
    from hpo_assets.stats.bootstrap import Fold

    y, p = _calibrated(300, 8)
    one = pooled_auc_sensitivity([Fold(y, {"model": p[None, :]})], "model", 1, 200)
    single = auc_block_sensitivity(y, p, 1, 200)
    assert one["block"] == single["block"]
    for a, b in zip(one["rows"], single["rows"], strict=True):
        assert a["block"] == b["block"] and a["se"] == pytest.approx(b["se"], rel=1e-9)
    y2, p2 = _calibrated(250, 9)
    seeds = np.stack([p2, np.clip(p2 + 0.01, 0, 1)])  # two seeds of the model on fold 2
    two = pooled_auc_sensitivity(
        [Fold(y, {"model": p[None, :]}), Fold(y2, {"model": seeds})], "model", 1, 200
    )
    assert isinstance(two["block"], list) and len(two["block"]) == 2
    assert [r["block"] for r in two["rows"]][1] == two["block"]
    assert two["rows"][1]["se"] < single["rows"][1]["se"]  # two folds pooled: a smaller SE than one
