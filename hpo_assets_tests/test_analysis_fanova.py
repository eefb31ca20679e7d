"""The array fANOVA gives Optuna's FanovaImportanceEvaluator's numbers (so the importance report's intervals
and verdicts do not depend on which one runs), and a bad fit says so as Optuna does."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import create_trial

from hpo_assets.analysis.fanova import fanova_importances


def _optuna(
    x: np.ndarray, y: np.ndarray, names: list[str], levels: list[int], trees: int, depth: int, seed: int
):
    study = optuna.create_study(direction="maximize", storage=optuna.storages.InMemoryStorage())
    dists = {n: IntDistribution(0, k - 1) for n, k in zip(names, levels, strict=True)}
    study.add_trials(
        [
            create_trial(
                params={n: int(v) for n, v in zip(names, row, strict=True)},
                distributions=dists,
                value=float(t),
            )
            for row, t in zip(x, y, strict=True)
        ]
    )
    got = FanovaImportanceEvaluator(n_trees=trees, max_depth=depth, seed=seed).evaluate(study)
    return np.array([got[n] for n in names])


@pytest.mark.parametrize(
    ("n", "levels", "trees", "depth", "seed"),
    [
        (45, [4, 3, 2, 5, 6], 16, 8, 0),
        (100, [5, 5, 3, 4, 7, 3], 16, 8, 7),
        (30, [2, 9], 64, 64, 3),
        (12, [3, 3, 3], 4, 2, 1),
    ],
)
def test_array_fanova_equals_optunas_evaluator(
    n: int, levels: list[int], trees: int, depth: int, seed: int
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, k, n) for k in levels])
    y = 0.6 + 0.05 * x[:, 0] - 0.02 * (x[:, 1] - 1) ** 2 + rng.normal(0, 0.01, n)  # planted + noise
    names = [f"p{j}" for j in range(len(levels))]  # sort in column order, as the report passes them
    ours = fanova_importances(x, y, levels, n_trees=trees, max_depth=depth, seed=seed)
    theirs = _optuna(x, y, names, levels, trees, depth, seed)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert ours[:2].max() > 0.2  # a planted parameter is found (not a vacuous equality of zeros)


def test_repeated_rows_and_a_constant_column_match_optuna_too() -> None:
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.integers(0, 4, 40), np.zeros(40, dtype=int), rng.integers(0, 3, 40)])
    x = np.vstack([x, x[:10]])  # bootstrap resamples repeat rows
    y = x[:, 0] * 0.1 + rng.normal(0, 0.02, len(x))
    ours = fanova_importances(x, y, [4, 2, 3], n_trees=16, max_depth=8, seed=2)
    theirs = _optuna(x, y, ["a", "b", "c"], [4, 2, 3], 16, 8, 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert ours[1] == 0.0


def test_constant_objective_raises_like_optuna() -> None:
    x = np.column_stack([np.arange(10) % 3, np.arange(10) % 2])
    with pytest.raises(RuntimeError, match="zero total variance"):
        fanova_importances(x, np.full(10, 0.7), [3, 2], n_trees=4, max_depth=4, seed=0)
