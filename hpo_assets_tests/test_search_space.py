"""The search space: validation, the middle configuration, forced extremes and steering geometry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpo_assets.model.budgets import budget_space
from hpo_assets.search.extremes import forced_extremes
from hpo_assets.search.space import (
    PARAM_NAMES,
    TRAIN_PARAMS,
    ArchChoice,
    SearchSpace,
    SearchSpaceError,
    arch_choices,
    load_training_choices,
)

CHOICES = {"lr": [1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.1, 0.2], "weight_decay": [0.0, 0.01],
           "warmup_steps": [0, 100], "batch_size": [32, 64, 128]}  # fmt: skip


def grid_archs(d_models=(16, 32, 64), layers=(1, 2, 4), heads=(2, 4)) -> list[ArchChoice]:
    return [
        ArchChoice(f"d{d}-L{n}-H{h}-F{4 * d}", d, n, h, 4 * d, d * d * n)
        for d, n, h in itertools.product(d_models, layers, heads)
    ]


def test_bundled_choices_build_a_space_for_every_budget() -> None:
    choices = load_training_choices()
    assert set(choices) == set(TRAIN_PARAMS)
    for budget in ("2M", "20M", "200M", "2B"):
        space = SearchSpace.build(arch_choices(budget_space(budget)), choices)
        assert space.size == len(space.archs) * np.prod([len(v) for v in choices.values()])
        dists = space.distributions()
        assert list(dists) == list(PARAM_NAMES)


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
    ],
)
def test_bad_space_is_one_clear_error(archs, choices, message) -> None:
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.build(archs, choices)
    assert message in str(err.value)


def test_unreadable_choices_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("lr: [0.1\n")
    with pytest.raises(SearchSpaceError, match="space.yaml"):
        load_training_choices(bad)


def test_middle_is_the_centre_of_the_space() -> None:
    space = SearchSpace.build(grid_archs(), CHOICES)
    middle = space.middle()
    assert middle["arch"] == "d32-L2-H2-F128"  # centre in d_model and depth; heads tie -> first entry
    assert middle["lr"] == 1e-3 and middle["dropout"] == 0.1 and middle["batch_size"] == 64
    assert middle["weight_decay"] == 0.0 and middle["warmup_steps"] == 0  # (len - 1) // 2 for even lists


@pytest.mark.parametrize("budget", ["2M", "20M", "200M", "2B"])
def test_extremes_are_distinct_real_corners_and_never_the_middle(budget: str) -> None:
    space = SearchSpace.build(arch_choices(budget_space(budget)), load_training_choices())
    middle = space.middle()
    extremes = forced_extremes(space, 6)
    assert extremes, "a budget space with a range of shapes has extremes"
    archs = [e.params["arch"] for e in extremes]
    assert len(set(archs)) == len(archs)
    assert middle["arch"] not in archs
    for ext in extremes:
        assert ext.params != middle
        assert {k: ext.params[k] for k in TRAIN_PARAMS} == {k: middle[k] for k in TRAIN_PARAMS}
        kind, dim = ext.extreme_type.split("_", 1)
        values = [getattr(a, dim) for a in space.archs]
        target = min(values) if kind == "min" else max(values)
        assert getattr(space.arch(ext.params["arch"]), dim) == target, ext


def test_extreme_prefers_the_entry_closest_to_the_middle_in_other_dims() -> None:
    space = SearchSpace.build(grid_archs(), CHOICES)
    by_type = {e.extreme_type: e.params["arch"] for e in forced_extremes(space, 6)}
    assert by_type["min_d_model"] == "d16-L2-H2-F64"
    assert by_type["max_d_model"] == "d64-L2-H2-F256"
    assert by_type["min_n_layers"] == "d32-L1-H2-F128"
    assert by_type["max_n_layers"] == "d32-L4-H2-F128"
    assert by_type["max_n_heads"] == "d32-L2-H4-F128"
    assert len(forced_extremes(space, 2)) == 2 and forced_extremes(space, 0) == []


def test_a_dimension_without_range_has_no_extremes() -> None:
    # Every architecture has 2 heads: no head extremes; and never the middle architecture.
    space = SearchSpace.build(grid_archs(heads=(2,)), CHOICES)
    types = [e.extreme_type for e in forced_extremes(space, 6)]
    assert types == ["min_d_model", "max_d_model", "min_n_layers", "max_n_layers"]
    single = SearchSpace.build(grid_archs(d_models=(32,), layers=(2,), heads=(2,)), CHOICES)
    assert forced_extremes(single, 6) == []


def test_nearest_untested_moves_one_step_and_reports_exhaustion() -> None:
    choices = {
        "lr": [1e-3, 1e-2],
        "dropout": [0.0],
        "weight_decay": [0.0],
        "warmup_steps": [0],
        "batch_size": [32],
    }
    space = SearchSpace.build(grid_archs(d_models=(16, 32), layers=(1,), heads=(2,)), choices)
    assert space.size == 4
    rng = np.random.default_rng(0)
    start = ("d16-L1-H2-F64", 1e-3, 0.0, 0.0, 0, 32)
    tested = {start}
    new = space.nearest_untested(start, tested, rng)
    # Nearest: one training step (lr) or one architecture step, both distance 1; never the far corner.
    assert new in {("d16-L1-H2-F64", 1e-2, 0.0, 0.0, 0, 32), ("d32-L1-H2-F128", 1e-3, 0.0, 0.0, 0, 32)}
    every = {("d16-L1-H2-F64", lr, 0.0, 0.0, 0, 32) for lr in (1e-3, 1e-2)}
    every |= {("d32-L1-H2-F128", lr, 0.0, 0.0, 0, 32) for lr in (1e-3, 1e-2)}
    assert space.nearest_untested(start, every, rng) is None
    left = every - {("d32-L1-H2-F128", 1e-2, 0.0, 0.0, 0, 32)}
    assert space.nearest_untested(start, left, rng) == ("d32-L1-H2-F128", 1e-2, 0.0, 0.0, 0, 32)
