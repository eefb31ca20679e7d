"""Exact parameter counts: the closed formula equals sum(p.numel()) of the built model."""

from __future__ import annotations

import pytest
import torch

from hpo_assets.model.budgets import budget_space
from hpo_assets.model.params import Arch, count_parameters, n_patches
from hpo_assets.model.patchtst import PatchTSTClassifier


def _numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("arch", "n_features", "context", "patch_len", "stride"),
    [
        (Arch(16, 1, 2, 32), 1, 16, 16, 8),
        (Arch(32, 2, 4, 64), 25, 80, 16, 8),
        (Arch(48, 3, 3, 100), 7, 64, 8, 4),
        (Arch(64, 4, 8, 256), 25, 80, 16, 8),
        (Arch(96, 2, 8, 192), 13, 81, 10, 7),
    ],
)
def test_formula_matches_real_model(
    arch: Arch, n_features: int, context: int, patch_len: int, stride: int
) -> None:
    model = PatchTSTClassifier(n_features, arch, context, patch_len, stride)
    assert count_parameters(arch, n_features, context, patch_len, stride) == _numel(model)


def test_formula_matches_meta_models_at_2b_scale() -> None:
    space = budget_space("2B")
    for entry in (space[0], space[-1]):  # narrowest-deepest and widest configured shapes
        with torch.device("meta"):
            model = PatchTSTClassifier(25, entry.arch)
        assert _numel(model) == entry.param_count == count_parameters(entry.arch, 25)
        assert 1_500_000_000 <= entry.param_count <= 2_500_000_000


def test_arch_label_round_trip_and_validation() -> None:
    arch = Arch(64, 4, 8, 256)
    assert arch.label == "d64-L4-H8-F256"
    assert Arch.from_label(arch.label) == arch
    with pytest.raises(ValueError, match="divisible by n_heads"):
        Arch(100, 2, 8, 200)
    with pytest.raises(ValueError, match="n_layers"):
        Arch(64, 0, 8, 256)
    with pytest.raises(ValueError, match="not of the form"):
        Arch.from_label("64x4")


def test_patch_count_and_bad_patching() -> None:
    assert n_patches(80, 16, 8) == 9
    with pytest.raises(ValueError, match="context"):
        n_patches(8, 16, 8)
    with pytest.raises(ValueError, match="stride"):
        count_parameters(Arch(16, 1, 2, 32), 5, 80, 16, 0)
