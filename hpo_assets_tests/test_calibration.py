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


def test_selection_is_cross_fitted_and_flags_small_isotonic() -> None:
    z, y = _overconfident(400, 4)
    sel = calibrators.select(z, y)
    assert set(sel.scores) == set(calibrators.METHODS)
    assert sel.method != "none"  # the raw model is over-confident: any calibration beats it out of fold
    assert sel.scores[sel.method] == min(s for s in sel.scores.values() if s is not None)
    assert any(w.startswith("isotonic: validation set has 400 samples") for w in sel.warnings)
    # already-calibrated logits: nothing beats "none" by much, so the cross-fitted scores are close
    zc, yc = _overconfident(4000, 5)
    big = calibrators.select(zc / 3.0 - 0.5 / 3.0, yc)
    assert big.warnings == []
    assert big.scores["none"] == pytest.approx(min(v for v in big.scores.values() if v), abs=0.005)


def test_block_bootstrap_keeps_blocks_and_covers_the_value() -> None:
    idx = bootstrap.block_indices(100, 10, 5, seed=0)
    assert idx.shape == (5, 100)
    assert np.all(np.diff(idx[:, :10], axis=1) == 1)  # first block is ten consecutive samples
    assert bootstrap.block_length(500, 3) == 10 and bootstrap.block_length(500, 20) == 20
    assert bootstrap.block_length(8000, 1) == 20  # n^(1/3)
    z, y = _overconfident(600, 6)
    ev = evaluate(y, expit(z), horizon=3, n_resamples=200)
    for name, iv in ev["metrics"].items():
        assert iv["lo"] <= iv["value"] <= iv["hi"], name
        assert iv["block"] == 10 and iv["resamples"] == 200
    assert sum(b["count"] for b in ev["bins_width"]) == 600 == sum(b["count"] for b in ev["bins_mass"])
    row = flat(ev, ("auc",))
    assert set(row) == {"auc", "auc_lo", "auc_hi"}


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
