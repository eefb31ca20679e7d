"""Calibration metrics against hand-worked values, and calibrators on a synthetic over-confident model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve

from hpo_assets.calibration import bootstrap, calibrators
from hpo_assets.calibration.evaluation import evaluate, flat
from hpo_assets.calibration.metrics import (
    expected_calibration_error,
    logloss,
    maximum_calibration_error,
    reliability_bins,
)


def test_ece_of_a_perfectly_calibrated_predictor_is_zero() -> None:
    # p = 0.2 on five samples with one positive, p = 0.7 on ten samples with seven positives.
    p = np.array([0.2] * 5 + [0.7] * 10)
    y = np.array([1, 0, 0, 0, 0] + [1] * 7 + [0] * 3)
    for strategy in ("uniform", "quantile"):
        assert expected_calibration_error(y, p, 10, strategy) == pytest.approx(0.0, abs=1e-12)
        assert maximum_calibration_error(y, p, 10, strategy) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_constant_predictor_is_the_gap_to_the_base_rate() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])  # rate 3/8
    for p in (0.1, 0.5, 0.9):
        for strategy in ("uniform", "quantile"):
            assert expected_calibration_error(y, np.full(8, p), 10, strategy) == pytest.approx(abs(3 / 8 - p))


def test_hand_worked_two_bin_ece_skips_empty_bins() -> None:
    # bin [0.1, 0.2): p 0.15 x4, 1 positive -> gap |0.25 - 0.15| = 0.10 on 4 of 10
    # bin [0.8, 0.9): p 0.85 x6, 3 positives -> gap |0.5 - 0.85| = 0.35 on 6 of 10
    p = np.array([0.15] * 4 + [0.85] * 6)
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0, 0, 0])
    bins = reliability_bins(y, p, 10, "uniform")
    assert bins.count.tolist() == [4, 6]  # the eight empty bins are not there at all
    assert expected_calibration_error(y, p) == pytest.approx(0.4 * 0.10 + 0.6 * 0.35)
    assert maximum_calibration_error(y, p) == pytest.approx(0.35)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_bins_match_scikit_learn_calibration_curve(strategy: str) -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, 500)
    y = (rng.random(500) < p).astype(float)
    bins = reliability_bins(y, p, 10, strategy)
    true, pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(bins.rate, true)
    np.testing.assert_allclose(bins.confidence, pred)
    assert bins.count.sum() == 500


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        expected_calibration_error([0, 1], [0.5])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        expected_calibration_error([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        expected_calibration_error([0, 1], [0.5, 1.5])
    with pytest.raises(calibrators.CalibrationError, match="both classes"):
        calibrators.fit("platt", [0.1, 0.2], [1, 1])
    with pytest.raises(calibrators.CalibrationError, match="'method': one of"):
        calibrators.Calibrator.from_dict({"method": "beta", "params": {}})
    with pytest.raises(calibrators.CalibrationError, match="lacks parameter"):
        calibrators.Calibrator.from_dict({"method": "platt", "params": {"a": 1.0}})


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True probability q; the model's logit is 3x the true logit plus a shift (over-confident, biased)."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < q).astype(float)
    return 3.0 * logit(q) + 0.5, y


@pytest.mark.parametrize("method", ["platt", "isotonic", "temperature", "temperature_bias"])
def test_every_method_reduces_calibration_error_on_held_out_data(method: str) -> None:
    z_fit, y_fit = _overconfident(3000, 1)
    z_new, y_new = _overconfident(3000, 2)
    before = expected_calibration_error(y_new, expit(z_new))
    cal = calibrators.fit(method, z_fit, y_fit)
    after = expected_calibration_error(y_new, cal.predict(z_new))
    assert before > 0.1
    assert after < before / 2, (method, before, after)
    assert logloss(y_new, cal.predict(z_new)) < logloss(y_new, expit(z_new))
    # a JSON round trip gives the same probabilities
    again = calibrators.Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again.predict(z_new), cal.predict(z_new))


def test_temperature_recovers_the_over_confidence_factor() -> None:
    rng = np.random.default_rng(3)
    q = rng.uniform(0.05, 0.95, 20000)
    y = (rng.random(q.size) < q).astype(float)
    cal = calibrators.fit("temperature", 3.0 * logit(q), y)
    assert cal.params["temperature"] == pytest.approx(3.0, rel=0.1)
    platt = calibrators.fit("platt", 3.0 * logit(q), y)
    assert platt.params["a"] == pytest.approx(1 / 3, rel=0.1) and abs(platt.params["b"]) < 0.1


def test_selection_is_forward_and_flags_small_isotonic() -> None:
    z, y = _overconfident(400, 4)
    sel = calibrators.select(z, y)
    assert set(sel.scores) == set(calibrators.METHODS) == set(sel.cross_fitted)
    assert sel.method != "none"  # the raw model is 3x over-confident: calibration beats it beyond the noise
    assert sel.scores[sel.method] == min(s for s in sel.scores.values() if s is not None)
    assert sel.vs_none["hi"] < 0 and sel.to_dict()["forward"] == {"fit_days": 240, "score_days": 160, "purge": 0,
                                                                  "fit_share": 0.6}  # fmt: skip
    assert any(w.startswith("isotonic: validation set has 400 samples") for w in sel.warnings)
    # already-calibrated logits: a method may score a hair lower forward, but not beyond the noise: none kept
    zc, yc = _overconfident(4000, 5)
    big = calibrators.select(zc / 3.0 - 0.5 / 3.0, yc)
    assert big.method == "none"
    assert big.scores["none"] == pytest.approx(min(v for v in big.scores.values() if v), abs=0.005)
    if big.best_forward != "none":
        assert big.vs_none["hi"] >= 0 and "within the noise: kept none" in big.warnings[0]


def test_forward_split_purges_the_label_overlap() -> None:
    fit_idx, score_idx = calibrators.forward_split(100, horizon=5)
    assert fit_idx.tolist() == list(range(60)) and score_idx.tolist() == list(range(64, 100))


def test_a_shift_in_time_is_caught_forward_where_cross_fitting_is_fooled() -> None:
    # Validation whose early 60% is 3x over-confident and whose late 40% (like the test period after it)
    # is calibrated. Pooled cross-fitting sees over-confidence and picks a temperature; fitted early and
    # scored late, every rescaling does worse than none.
    rng = np.random.default_rng(11)
    q = rng.uniform(0.05, 0.6, 3000)
    z = logit(q)
    z[:1800] *= 3.0
    y = (rng.random(3000) < q).astype(float)
    sel = calibrators.select(z, y, methods=("none", "temperature", "platt"))
    cross = sel.cross_fitted
    assert min(cross, key=lambda m: cross[m] or 9) != "none"  # what the old rule would have chosen
    assert sel.method == "none" and sel.scores["none"] < sel.scores["temperature"]


def test_block_length_comes_from_the_data_and_is_never_below_h() -> None:
    rng = np.random.default_rng(6)
    n = 500
    iid = rng.standard_normal(n)
    persistent = np.repeat(rng.standard_normal(n // 50), 50) + 0.1 * rng.standard_normal(n)  # 50-day regimes
    assert bootstrap.block_length(n, 3, [iid]) == 3
    assert bootstrap.block_length(n, 1, [persistent]) >= 20
    assert bootstrap.block_indices(100, 10, 5, seed=0).shape == (5, 100)
    # an AUC whose informativeness changes in regimes: the block follows, and the metric intervals name it
    y = (rng.random(n) < 0.3).astype(float)
    regime = np.repeat(rng.random(n // 50) < 0.5, 50)
    p = np.clip(np.where(regime, 0.25 + 0.4 * (y - 0.3), 0.3) + 0.1 * rng.random(n), 0, 1)
    ev = evaluate(y, p, horizon=3, n_resamples=200)
    assert ev["metrics"]["auc"]["block"] >= 10 and ev["metrics"]["auc"]["block_from"] == "per-day series"
    for name, iv in ev["metrics"].items():
        assert iv["lo"] <= iv["value"] <= iv["hi"], name
        assert iv["block"] >= 3 and iv["resamples"] == 200 and iv["kind"] == "stationary"
    assert sum(b["count"] for b in ev["bins_width"]) == n == sum(b["count"] for b in ev["bins_mass"])
    assert set(flat(ev, ("auc",))) == {"auc", "auc_lo", "auc_hi"}
    # a bare statistic gets its block from its jackknife influence, close to the AUC's own series
    from hpo_assets.calibration.metrics import auc

    iv = bootstrap.interval(lambda i: auc(y[i], p[i]), n, 3, n_resamples=50)
    assert iv["block_from"] == "jackknife influence"
    assert abs(iv["block"] - ev["metrics"]["auc"]["block"]) <= max(3, ev["metrics"]["auc"]["block"] // 3)
    sens = bootstrap.auc_block_sensitivity(y, p, 3, n_resamples=300)
    b = sens["block"]
    assert b == ev["metrics"]["auc"]["block"]
    assert [r["block"] for r in sens["rows"]] == [max(3, round(b / 2)), b, 2 * b]
    assert all(r["lo"] < auc(y, p) < r["hi"] and r["se"] > 0 for r in sens["rows"])
    assert bootstrap.sensitivity_text(sens).startswith(
        f"SE of test AUC at blocks of {max(3, round(b / 2))} / {b}"
    )


def test_undefined_metrics_are_none_never_zero() -> None:
    ev = evaluate(np.zeros(50), np.full(50, 0.3), horizon=1, n_resamples=50)
    assert ev["metrics"]["auc"]["value"] is None and ev["metrics"]["auc"]["lo"] is None
    assert ev["metrics"]["ece_width"]["value"] == pytest.approx(0.3)


def test_fast_metrics_equal_scikit_learn_with_ties() -> None:
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    from hpo_assets.calibration.metrics import accuracy, auc, brier

    rng = np.random.default_rng(7)
    p = np.round(rng.random(300), 1)  # many ties
    y = (rng.random(300) < p).astype(float)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert logloss(y, np.clip(p, 0.01, 0.99)) == pytest.approx(log_loss(y, np.clip(p, 0.01, 0.99)))
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p))
    assert accuracy(y, p) == pytest.approx(accuracy_score(y, p >= 0.5))
    assert auc(np.ones(5), p[:5]) is None
