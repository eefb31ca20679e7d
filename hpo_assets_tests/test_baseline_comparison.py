"""Paired model-vs-baseline AUC differences: the interval is of the difference, the verdict needs it to exclude 0."""

from __future__ import annotations

import numpy as np
import pytest

from hpo_assets.baselines.comparison import paired_auc_differences, verdict
from hpo_assets.baselines.reference import BaselineFit


def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(n) < 0.3).astype(np.float64)


def test_a_clearly_better_model_wins_and_an_identical_one_is_inconclusive() -> None:
    rng = np.random.default_rng(0)
    y = _labels(500, rng)
    good = np.clip(0.6 * y + 0.4 * rng.random(500), 0, 1)  # nearly separates the classes
    noise = rng.random(500)
    fits = [BaselineFit("noise", {"test": noise}), BaselineFit("same", {"test": good.copy()})]
    rows = {r["baseline"]: r for r in paired_auc_differences(y, good, fits, horizon=1, n_resamples=300)}
    assert rows["noise"]["auc_diff_lo"] > 0 and rows["noise"]["verdict"] == "model better"
    assert rows["same"]["auc_diff"] == 0.0 and rows["same"]["verdict"] == "inconclusive"
    # Swapped roles: the baseline is the better one.
    back = paired_auc_differences(y, noise, [BaselineFit("good", {"test": good})], horizon=1, n_resamples=300)
    assert back[0]["auc_diff_hi"] < 0 and back[0]["verdict"] == "baseline better"


def test_a_raw_score_baseline_is_ranked_and_a_length_mismatch_is_named() -> None:
    rng = np.random.default_rng(1)
    y = _labels(300, rng)
    p = np.clip(0.5 * y + 0.5 * rng.random(300), 0, 1)
    raw = BaselineFit("atr_ratio", {"test": 100.0 * p + 7.0}, probabilities=False)  # same order as p
    row = paired_auc_differences(y, p, [raw], horizon=3, n_resamples=200)[0]
    assert abs(row["auc_diff"]) < 1e-12 and row["verdict"] == "inconclusive" and row["block"] >= 10
    with pytest.raises(ValueError, match="baseline short: 10 test scores for 300 labels"):
        paired_auc_differences(y, p, [BaselineFit("short", {"test": p[:10]})], horizon=1)


def test_verdict_needs_both_ends() -> None:
    assert verdict(None, 0.2) == verdict(-0.1, 0.1) == "inconclusive"
    assert verdict(0.01, 0.2) == "model better" and verdict(-0.2, -0.01) == "baseline better"
