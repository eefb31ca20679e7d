"""The array PED-ANOVA gives Optuna's PedAnovaImportanceEvaluator's numbers on the report's kind of study
(integer parameters, a target where lower is better), so intervals and verdicts do not depend on it."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import create_trial

from hpo_assets.analysis.ped_anova import ped_anova_importances


def _optuna(x: np.ndarray, loss: np.ndarray, levels: list[int]) -> np.ndarray:
    names = [f"p{j}" for j in range(len(levels))]
    dists = {n: IntDistribution(0, k - 1) for n, k in zip(names, levels, strict=True)}
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.add_trials(
        [
            create_trial(
                params={n: int(v) for n, v in zip(names, row, strict=True)}, distributions=dists, value=0.0
            )
            for row in x
        ]
    )
    by_number = dict(enumerate(loss))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = PedAnovaImportanceEvaluator().evaluate(study, target=lambda t: float(by_number[t.number]))
    return np.array([got[n] for n in names])


@pytest.mark.parametrize(
    ("n", "levels", "seed"),
    [
        (45, [4, 3, 2, 5, 6], 0),
        (100, [5, 5, 3, 4, 7, 3], 1),
        (12, [2, 9], 2),
        (300, [60, 4, 3], 3),
        (25, [3, 3], 4),
    ],
)
def test_array_ped_anova_equals_optunas_evaluator(n: int, levels: list[int], seed: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, k, n) for k in levels])
    loss = -(0.05 * x[:, 0]) + rng.normal(0, 0.01, n)  # the planted parameter is column 0
    loss[:3] = np.round(loss[:3], 1)  # ties at the cut-off
    ours = ped_anova_importances(x, loss, levels)
    np.testing.assert_allclose(ours, _optuna(x, loss, levels), rtol=1e-9, atol=1e-12)
    assert ours[0] == ours.max() and ours[0] > 0  # not a vacuous equality of zeros


def test_bootstrap_repeats_shuffles_and_non_finite_losses_match_optuna_too() -> None:
    rng = np.random.default_rng(9)
    x = np.column_stack([rng.integers(0, 4, 50), rng.integers(0, 3, 50)])
    loss = x[:, 1] * 0.1 + rng.normal(0, 0.05, 50)
    idx = rng.integers(0, 50, 50)  # a bootstrap resample: repeated rows share their loss
    np.testing.assert_allclose(
        ped_anova_importances(x[idx], loss[idx], [4, 3]),
        _optuna(x[idx], loss[idx], [4, 3]),
        rtol=1e-9,
        atol=1e-12,
    )
    shuffled = rng.permutation(loss)
    np.testing.assert_allclose(
        ped_anova_importances(x, shuffled, [4, 3]), _optuna(x, shuffled, [4, 3]), rtol=1e-9, atol=1e-12
    )
    loss[[3, 7]] = [np.nan, np.inf]
    np.testing.assert_allclose(
        ped_anova_importances(x, loss, [4, 3]), _optuna(x, loss, [4, 3]), rtol=1e-9, atol=1e-12
    )
