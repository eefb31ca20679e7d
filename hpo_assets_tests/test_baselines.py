"""Baselines on the study's own split: four reference predictors, chosen on validation, scored with intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hpo_assets.baselines.reference import BASELINES, LOGISTIC_C, baselines_document, fit_baselines
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
        assert row["block"] >= 10
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


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_logistic_regularization_is_chosen_on_validation_not_test(data) -> None:
    fits = {f.model: f for f in fit_baselines(data)}
    tr, va, te = data.split.train, data.split.val, data.split.test
    losses = {}
    for c in LOGISTIC_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(data.x[tr].astype(float), data.y[tr])
        losses[c] = log_loss(data.y[va], model.predict_proba(data.x[va].astype(float))[:, 1])
        if c == fits["logistic"].chosen["C"]:
            np.testing.assert_allclose(
                fits["logistic"].scores["test"], model.predict_proba(data.x[te].astype(float))[:, 1]
            )
    assert fits["logistic"].chosen["C"] == min(losses, key=losses.get)
    assert fits["majority"].scores["test"][0] == pytest.approx(float(np.mean(data.y[tr])))
