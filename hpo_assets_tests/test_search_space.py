"""The structured search space: per-budget ranges, validation, effective repeats, extremes, the sampler."""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpo_assets.model.budgets import budget_space
from hpo_assets.search.extremes import forced_extremes
from hpo_assets.search.space import (
    ARCH_PARAMS,
    PARAM_NAMES,
    TRAIN_PARAMS,
    ArchChoice,
    SearchSpace,
    SearchSpaceError,
    arch_choices,
    configs_from_params,
    load_training_choices,
)
from hpo_assets.search.steering import SpaceSampler

CHOICES = {"lr": [1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.1, 0.2], "weight_decay": [0.0, 0.01],
           "warmup_frac": [0.0, 0.1], "batch_size": [32, 64, 128], "normalization": ["zscore", "revin"]}  # fmt: skip
BUDGETS = ["2M", "20M", "200M", "2B"]


def grid_archs(d_models=(16, 32, 64), layers=(1, 2, 4), heads=(2, 4)) -> list[ArchChoice]:
    return [
        ArchChoice(f"d{d}-L{n}-H{h}-F{4 * d}", d, n, h, 4 * d, d * d * n)
        for d, n, h in itertools.product(d_models, layers, heads)
    ]


def budget(b: str, **kw) -> SearchSpace:
    return SearchSpace.build(arch_choices(budget_space(b)), load_training_choices(b), **kw)


def test_bundled_ranges_reach_the_seed_values_and_budgets_narrow_them() -> None:
    default = load_training_choices()
    assert set(default) == set(TRAIN_PARAMS)
    assert min(default["lr"]) == 1e-5 and max(default["dropout"]) == 0.7
    assert min(default["weight_decay"]) == 0.0 and max(default["weight_decay"]) == 1e-2
    assert max(load_training_choices("2B")["lr"]) <= 3e-4
    assert load_training_choices("2M")["lr"] == default["lr"]


@pytest.mark.parametrize("b", BUDGETS)
def test_every_budget_has_a_structured_space_of_separate_ordinal_parameters(b: str) -> None:
    space = budget(b)
    dists = space.distributions()
    assert list(dists) == list(PARAM_NAMES)
    for name in ARCH_PARAMS:  # ordinal, not one categorical label per shape
        assert isinstance(dists[name], IntDistribution)
    assert isinstance(dists["lr"], FloatDistribution) and dists["lr"].log
    assert isinstance(dists["normalization"], CategoricalDistribution)
    assert space.size == len(space.archs) * math.prod(len(v) for v in space.choices.values())


def test_budget_ranges_file_errors_name_the_file_and_the_problem(tmp_path) -> None:
    bad = tmp_path / "training.yaml"
    bad.write_text("default: [0.1\n")
    with pytest.raises(SearchSpaceError, match="training.yaml"):
        load_training_choices("2M", bad)
    widen = tmp_path / "widen.yaml"
    widen.write_text("default: {lr: [1.0e-4, 1.0e-3]}\nbudgets: {2M: {lr: [1.0e-2]}}\n")
    with pytest.raises(SearchSpaceError, match="may only narrow"):
        load_training_choices("2M", widen)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("default: {lr: [1.0e-4]}\nbudgets: {2M: {momentum: [0.9]}}\n")
    with pytest.raises(SearchSpaceError, match="momentum"):
        load_training_choices("2M", unknown)


@pytest.mark.parametrize(
    ("archs", "choices", "message"),
    [
        ([], CHOICES, "no architectures"),
        (grid_archs()[:1] * 2, CHOICES, "repeats an architecture"),
        (grid_archs(), {k: v for k, v in CHOICES.items() if k != "lr"}, "missing ['lr']"),
        (grid_archs(), {**CHOICES, "momentum": [0.9]}, "unknown ['momentum']"),
        (grid_archs(), {**CHOICES, "lr": []}, "'lr' must be a non-empty list"),
        (grid_archs(), {**CHOICES, "dropout": [0.1, "high"]}, "'dropout' has a non-numeric value 'high'"),
        (grid_archs(), {**CHOICES, "batch_size": [32, 32]}, "'batch_size' repeats a value"),
        (grid_archs(), {**CHOICES, "lr": [1e-2, 1e-4]}, "sorted low -> high"),
        (grid_archs(), {**CHOICES, "normalization": ["minmax"]}, "choose from ['zscore', 'revin']"),
    ],
)
def test_bad_space_is_one_clear_error(archs, choices, message) -> None:
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.build(archs, choices)
    assert message in str(err.value)


def test_effective_repeats_share_a_key() -> None:
    # 100 training samples, batch 128 and 64 -> 1 and 2 steps per epoch; over 2 epochs warm-up 0.1 of
    # 2 steps is 1 step, the same as of 4 steps: (frac 0.1, batch 128) and (frac 0.1, batch 256) collide.
    choices = {**CHOICES, "batch_size": [64, 128, 256], "warmup_frac": [0.0, 0.1, 0.2]}
    space = SearchSpace.build(grid_archs(), choices, n_train=100, max_epochs=2)
    base = {**space.middle()}
    a = space.effective_key({**base, "batch_size": 128})
    b = space.effective_key({**base, "batch_size": 256})
    assert a == b  # both are one full batch of 100 samples
    assert space.effective_key({**base, "warmup_frac": 0.0}) != space.effective_key(
        {**base, "warmup_frac": 0.1}
    )
    assert space.n_effective < space.size


@pytest.mark.parametrize("b", BUDGETS)
def test_six_distinct_extremes_each_at_the_bound_it_names(b: str) -> None:
    space = budget(b)
    middle = space.middle()
    extremes = forced_extremes(space, 6)
    assert [e.extreme_type for e in extremes] == [
        "min_d_model", "max_d_model", "min_n_layers", "max_n_layers", "min_lr", "max_lr"
    ]  # fmt: skip
    keys = [space.effective_key(e.params) for e in extremes]
    assert len(set(keys)) == 6 and space.effective_key(middle) not in keys
    for ext in extremes:
        assert space.contains(ext.params)
        kind, name = ext.extreme_type.split("_", 1)
        values = space.values(name)
        assert ext.params[name] == (values[0] if kind == "min" else values[-1]), ext
        others = [k for k in TRAIN_PARAMS if k != name]
        assert {k: ext.params[k] for k in others} == {k: middle[k] for k in others}


def test_coinciding_corners_take_the_next_distinct_configuration() -> None:
    # One architecture per depth: the widest is also the deepest, so max_n_layers takes the next shape.
    archs = [ArchChoice(f"d{d}-L{n}-H2-F{4 * d}", d, n, 2, 4 * d, 1) for d, n in ((16, 1), (32, 2), (64, 4))]
    space = SearchSpace.build(archs, CHOICES)
    ext = {e.extreme_type: e.params for e in forced_extremes(space, 6)}
    keys = [space.effective_key(p) for p in ext.values()]
    assert len(set(keys)) == len(keys)
    assert ext["max_d_model"]["d_model"] == 64
    assert (
        "max_n_layers" not in ext
        or ext["max_n_layers"]["n_layers"] < 4
        or ext["max_n_layers"]["d_model"] != 64
    )


def test_sampler_proposes_only_valid_untested_configurations() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.build(grid_archs(d_models=(16, 32), layers=(1, 2), heads=(2,)), {
        **CHOICES, "dropout": [0.0], "weight_decay": [0.0], "batch_size": [32], "normalization": ["zscore"]})  # fmt: skip
    sampler = SpaceSampler(space, seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen = set()
    from hpo_assets.search.objective import _suggest

    for _ in range(space.size):  # 4 archs x 3 lr x 2 warm-up = 24: every one exactly once
        trial = study.ask()
        params = _suggest(trial, space)
        assert space.contains(params)
        key = space.effective_key(params)
        assert key not in seen
        seen.add(key)
        study.tell(trial, -float(params["lr"]))
    assert len(seen) == space.size


def test_configs_from_params_builds_the_model_and_run_of_a_trial() -> None:
    params = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff_ratio": 4, "lr": 3e-4, "dropout": 0.7,
              "weight_decay": 1e-3, "warmup_frac": 0.05, "batch_size": 64, "normalization": "zscore"}  # fmt: skip
    arch, cfg = configs_from_params(params, max_epochs=7, seed=3)
    assert (arch.d_model, arch.n_layers, arch.n_heads, arch.d_ff) == (64, 2, 4, 256)
    assert cfg.lr == 3e-4 and cfg.dropout == 0.7 and cfg.warmup_frac == 0.05 and cfg.normalization == "zscore"
    assert cfg.max_epochs == 7 and cfg.seed == 3
    cfg.validate()


def test_nearest_arch_projects_onto_the_valid_set() -> None:
    space = SearchSpace.build(grid_archs(), CHOICES)
    assert space.nearest_arch([30, 2, 2, 4]).label == "d32-L2-H2-F128"
    assert space.nearest_arch([1000, 100, 64, 4]).label == "d64-L4-H4-F256"
    rng = np.random.default_rng(0)
    assert all(space.contains(space.random_params(rng)) for _ in range(20))
