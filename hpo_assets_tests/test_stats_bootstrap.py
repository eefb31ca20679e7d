"""The one block bootstrap: its block length against arch's (the oracle), its resampling shapes, the
vectorised AUC against scikit-learn, and the paired rule's error rates on simulations with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hpo_assets.simulation.comparisons import Scenario, simulate
from hpo_assets.stats import bootstrap as bs
from hpo_assets.stats.paired import paired_on_folds
from hpo_assets.stats.selection import expected_inflation


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal()
    return x


@pytest.mark.parametrize(("n", "phi"), [(120, 0.5), (500, 0.9), (565, 0.97), (250, 0.0)])
def test_block_length_matches_arch_politis_white(n: int, phi: float) -> None:
    arch = pytest.importorskip("arch.bootstrap")
    x = _ar1(n, phi, seed=n)
    oracle = arch.optimal_block_length(x)
    assert bs.optimal_block_length(x, "stationary") == pytest.approx(
        float(oracle["stationary"].iloc[0]), rel=1e-9
    )
    assert bs.optimal_block_length(x, "circular") == pytest.approx(
        float(oracle["circular"].iloc[0]), rel=1e-9
    )


def test_block_length_follows_the_dependence_and_is_never_below_the_horizon() -> None:
    persistent, white = _ar1(500, 0.95, 1), np.random.default_rng(2).normal(size=500)
    assert bs.block_length(500, 1, [persistent]) > 3 * bs.block_length(500, 1, [white])
    assert bs.block_length(500, 5, [white]) == 5  # white noise alone would pick ~1 day
    assert bs.block_length(40, 1, [persistent]) <= 10  # a resample keeps at least 4 blocks


@pytest.mark.parametrize("kind", ["stationary", "circular"])
def test_block_indices_have_the_asked_mean_block_and_stay_in_range(kind: str) -> None:
    idx = bs.block_indices(300, 20, 400, seed=1, kind=kind)
    assert idx.shape == (400, 300) and idx.min() >= 0 and idx.max() < 300
    steps = np.diff(idx, axis=1)
    continues = (steps == 1) | (steps == -299)  # the circular wrap continues a block
    assert 1 / np.mean(~continues) == pytest.approx(20, rel=0.15)
    with pytest.raises(ValueError, match="bootstrap kind"):
        bs.block_indices(10, 2, 3, kind="moving")  # type: ignore[arg-type]  # a bad kind is refused by name


def test_vectorised_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random((5, 200)) < 0.2).astype(int)
    s = np.round(rng.normal(size=(5, 200)) + y, 1)  # rounding makes ties
    assert bs.auc_rows(y, s) == pytest.approx(
        [roc_auc_score(a, b) for a, b in zip(y, s, strict=True)], abs=1e-12
    )
    assert np.isnan(bs.auc_rows(np.zeros((1, 10)), s[:1, :10])[0])


def test_auc_influence_averages_to_the_auc() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(300) < 0.3).astype(int)
    s = rng.normal(size=300) + y
    infl = bs.auc_influence(y, s)
    assert infl[y == 1].mean() == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert infl[y == 0].mean() == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_paired_interval_is_narrower_than_unpaired_when_models_share_their_errors() -> None:
    rng = np.random.default_rng(5)
    n = 400
    z, shared = rng.normal(size=n), rng.normal(size=n)
    y = (z + rng.normal(size=n) > 1).astype(int)
    a = z + shared + 0.2 * rng.normal(size=(3, n))
    b = 1.1 * z + shared + 0.2 * rng.normal(size=(3, n))
    fold = bs.Fold(y, {"a": a, "b": b})
    p = paired_on_folds([fold], "a", "b", 1, 500)
    rs = bs.draw([fold], 1, 500)
    sa = np.nanstd(bs.mean_auc([fold], "a", rs)[1])
    sb = np.nanstd(bs.mean_auc([fold], "b", rs)[1])
    assert p.se < 0.5 * np.hypot(sa, sb)
    assert p.seeds == {"a": 3, "b": 3} and "paired" in p.noise


def test_a_maximum_of_noisy_trials_is_inflated_by_about_the_expected_maximum_of_the_noise() -> None:
    flat = [0.70] * 50  # every configuration equal: the whole maximum is luck
    assert expected_inflation(flat, seed_sd=0.012) == pytest.approx(0.012 * 2.25, rel=0.08)
    spread = list(np.linspace(0.50, 0.90, 50))  # true differences dwarf the noise: little luck in the winner
    assert expected_inflation(spread, seed_sd=0.012) < 0.5 * expected_inflation(flat, seed_sd=0.012)
    assert expected_inflation([0.7, 0.71]) is None


@pytest.mark.slow
def test_the_paired_rule_holds_its_error_rate_and_covers_on_known_truth() -> None:
    # fixed-seed subset of benchmarks/stats_calibration.py: 4 folds x 125 days, 5 seeds per model
    null = simulate(Scenario("equal", 0.66, 0.0), n_sims=40, n_resamples=200, seed=11)
    assert null["sims"] >= 30
    assert null["fires_ci"][0] <= 0.05  # the false-positive rate is consistent with <= 5%
    assert null["coverage_ci"][1] >= 0.93  # and coverage with >= 93%
    big = simulate(Scenario("+0.10", 0.62, 0.10), n_sims=16, n_resamples=200, seed=12)
    assert big["right_direction"] >= 0.8 and big["coverage_ci"][1] >= 0.93
