"""Paired model-vs-baseline AUC differences over test folds: the interval is of the difference (same resampled
days, seeds resampled with them), the verdict needs it to exclude 0, pairing narrows it on correlated scores."""

from __future__ import annotations

import numpy as np
import pytest

from hpo_assets.baselines.comparison import fold_aucs, paired_auc_differences, verdict, versus
from hpo_assets.baselines.reference import BaselineFit
from hpo_assets.stats.bootstrap import Fold, auc_rows


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
    assert (
        abs(row["auc_diff"]) < 1e-12 and row["verdict"] == "inconclusive" and row["block"] >= 3
    )  # never shorter than h
    with pytest.raises(ValueError, match="baseline short: 10 test scores for 300 labels"):
        paired_auc_differences(y, p, [BaselineFit("short", {"test": p[:10]})], horizon=1)


def test_verdict_needs_both_ends() -> None:
    assert verdict(None, 0.2) == verdict(-0.1, 0.1) == "inconclusive"
    assert verdict(0.01, 0.2) == "model better" and verdict(-0.2, -0.01) == "baseline better"


def _correlated(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a baseline score and a model = the baseline plus a small independent part (highly correlated)."""
    y = _labels(n, rng)
    base = y + rng.normal(0, 1.5, n)
    return y, base, base + 0.3 * y + rng.normal(0, 0.4, n)


def test_paired_interval_is_narrower_than_two_independent_ones_on_correlated_scores() -> None:
    rng = np.random.default_rng(2)
    folds = []
    for n in (250, 260):
        y, base, model = _correlated(n, rng)
        folds.append(Fold(y, {"model": model[None, :], "logistic": base[None, :]}))
    (row,) = versus(fold_aucs(folds, horizon=1, n_resamples=400))
    assert row["auc_diff_se"] < 0.5 * row["auc_diff_se_unpaired"]
    assert row["auc_diff_lo"] > 0 and row["verdict"] == "model better"  # a real +AUC gain, seen only paired
    # pooled = each fold's difference weighted by its positives x negatives (the pairs it orders)
    pairs = [f.y.sum() * (len(f.y) - f.y.sum()) for f in folds]
    assert row["auc_diff"] == pytest.approx(np.average([f["auc_diff"] for f in row["folds"]], weights=pairs))
    assert len(row["folds"]) == 2 and all(f["auc_diff_se"] > row["auc_diff_se"] * 0.9 for f in row["folds"])


def test_seeds_are_averaged_and_resampled_with_the_days() -> None:
    rng = np.random.default_rng(3)
    y = _labels(300, rng)
    signal = y + rng.normal(0, 1.0, 300)
    seeds = np.stack([signal + rng.normal(0, 1.0, 300) for _ in range(4)])  # 4 retrained seeds
    aucs = fold_aucs([Fold(y, {"model": seeds, "baseline": signal[None, :]})], horizon=1, n_resamples=400)
    point, reps = aucs.pooled["model"]
    per_seed = auc_rows(np.broadcast_to(y, seeds.shape), seeds)
    assert point == pytest.approx(per_seed.mean())  # the mean over seeds, not the best seed
    one_seed = fold_aucs([Fold(y, {"model": seeds[:1], "baseline": signal[None, :]})], 1, 400)
    # resampling the seeds adds their spread: the 4-seed model's replicates are not those of one fixed seed
    assert np.std(reps) > 0 and not np.allclose(reps, one_seed.pooled["model"][1])
    rows = versus(aucs)
    assert (
        rows[0]["baseline"] == "baseline" and rows[0]["auc_diff"] < 0
    )  # noisy seeds rank worse than the signal


def test_a_fold_with_scores_of_the_wrong_shape_is_named() -> None:
    y = np.array([0.0, 1.0] * 50)
    with pytest.raises(ValueError, match=r"fold 1: model has scores of shape \(1, 99\) for 100 test days"):
        fold_aucs([Fold(y, {"model": y[None, :]}), Fold(y, {"model": y[None, :99]})], horizon=1)
