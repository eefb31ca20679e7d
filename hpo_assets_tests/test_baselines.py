"""Baselines on the study's own split: four reference predictors, chosen on validation, scored with intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hpo_assets.baselines.reference import (
    BASELINES,
    LOGISTIC_C,
    baselines_document,
    fit_baselines,
    stationary_inputs,
)
from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets_tests.conftest import SP500


@pytest.fixture(scope="module")
def data():
    frame = build_features(load_market(SP500))
    return prepare_dataset(frame, 3, start="2010-01-01", end="2016-12-31", val_start="2015-01-01",
                           test_start="2016-01-01")  # fmt: skip


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_rows_cover_every_baseline_and_split_with_intervals(data) -> None:
    doc = baselines_document(data, "h3", n_resamples=100)
    assert doc["horizon"] == "h3"
    assert [(r["model"], r["split"]) for r in doc["rows"]] == [
        (m, s) for m in BASELINES for s in ("validation", "test")
    ]
    for row in doc["rows"]:
        idx = data.split.val if row["split"] == "validation" else data.split.test
        assert row["n"] == len(idx) and row["positives"] == int(np.sum(data.y[idx] == 1))
        assert row["auc_lo"] <= row["auc"] <= row["auc_hi"]
        assert row["block"] >= 3  # Politis-White from the data, never below h
        if row["model"] == "atr_ratio":  # a score, not a probability
            assert row["log_loss"] is None and row["brier"] is None
            names = data.feature_names
            ratio = data.x[idx, names.index("atr_14")] / data.x[idx, names.index("close")]
            assert row["auc"] == pytest.approx(roc_auc_score(data.y[idx], ratio))
        else:
            assert row["log_loss_lo"] <= row["log_loss"] <= row["log_loss_hi"]
        if row["model"] == "majority":
            assert row["auc"] == 0.5
    assert doc["split"]["val_start"] == "2015-01-01" and doc["split"]["test_start"] == "2016-01-01"
    assert doc["inputs"] == stationary_inputs(data.x, data.feature_names)[1]


def test_inputs_are_stationary_where_raw_price_levels_are_not(data) -> None:
    x, names = stationary_inputs(data.x, data.feature_names)
    assert x.shape == (len(data.x), len(data.feature_names) + 2)  # close -> three log returns
    assert "atr_14/close" in names and not any(n in ("close", "sma_200", "obv") for n in names)
    tr, te = data.split.train, data.split.test

    def outside(m: np.ndarray) -> np.ndarray:  # share of test days outside the training range, per column
        return ((m[te] > m[tr].max(axis=0)) | (m[te] < m[tr].min(axis=0))).mean(axis=0)

    raw = outside(np.asarray(data.x, dtype=float))
    assert raw[data.feature_names.index("sma_200")] == 1.0  # every 2016 sma_200 is above 2010-14's
    assert outside(x).max() < 0.01
    # ratios, returns and z-scores do not see the price or volume scale at all
    scaled = np.asarray(data.x, dtype=float).copy()
    for j, n in enumerate(data.feature_names):
        if n in ("volume", "obv", "adosc"):
            scaled[:, j] *= 3.0
        elif n.startswith(("open", "high", "low", "close", "sma_", "dema_", "vwap_", "atr_", "macd_")):
            scaled[:, j] *= 10.0
    np.testing.assert_allclose(stationary_inputs(scaled, data.feature_names)[0], x, atol=1e-9)
    with pytest.raises(ValueError, match="need a 'close' input"):
        stationary_inputs(data.x, [n if n != "close" else "last" for n in data.feature_names])


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_logistic_regularization_is_chosen_on_validation_not_test(data) -> None:
    fits = {f.model: f for f in fit_baselines(data)}
    tr, va, te = data.split.train, data.split.val, data.split.test
    x = stationary_inputs(data.x, data.feature_names)[0]
    losses = {}
    for c in LOGISTIC_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(x[tr], data.y[tr])
        losses[c] = log_loss(data.y[va], model.predict_proba(x[va])[:, 1])
        if c == fits["logistic"].chosen["C"]:
            np.testing.assert_allclose(fits["logistic"].scores["test"], model.predict_proba(x[te])[:, 1])
    assert fits["logistic"].chosen["C"] == min(losses, key=losses.get)
    assert fits["majority"].scores["test"][0] == pytest.approx(float(np.mean(data.y[tr])))
