"""PatchTSTClassifier: shapes, per-window normalisation, which parameters are decayed."""

from __future__ import annotations

import pytest
import torch

from hpo_assets.model.params import Arch
from hpo_assets.model.patchtst import PatchTSTClassifier, fast_dropout, no_decay_parameter_names


def test_forward_gives_one_logit_per_window() -> None:
    torch.manual_seed(0)
    model = PatchTSTClassifier(6, Arch(16, 2, 4, 32), context=40, patch_len=8, stride=4).eval()
    out = model(torch.randn(5, 40, 6))
    assert out.shape == (5,)
    assert torch.isfinite(out).all()


def test_wrong_window_shape_is_named() -> None:
    model = PatchTSTClassifier(6, Arch(16, 1, 2, 32), context=40, patch_len=8, stride=4)
    with pytest.raises(ValueError, match=r"\(B, 40, 6\)"):
        model(torch.randn(2, 39, 6))


def test_revin_makes_output_invariant_to_level_and_scale() -> None:
    """Per-window normalisation: shifting/scaling each feature of a window changes nothing."""
    torch.manual_seed(0)
    model = PatchTSTClassifier(3, Arch(16, 1, 2, 32), context=32, patch_len=8, stride=8).eval()
    x = torch.randn(4, 32, 3)
    shifted = x * torch.tensor([10.0, 0.5, 3.0]) + torch.tensor([100.0, -2.0, 7.0])
    with torch.no_grad():
        assert torch.allclose(model(x), model(shifted), atol=1e-4)
        assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-4)


def test_no_decay_covers_norms_biases_positions_only() -> None:
    model = PatchTSTClassifier(4, Arch(16, 1, 2, 32), context=32, patch_len=8, stride=8)
    skip = no_decay_parameter_names(model)
    assert {"pos_embed", "revin.weight", "norm.weight", "layers.0.norm1.weight", "head.bias"} <= skip
    decayed = {n for n, _ in model.named_parameters()} - skip
    assert decayed == {
        "patch_embed.weight",
        "layers.0.qkv.weight",
        "layers.0.out_proj.weight",
        "layers.0.linear1.weight",
        "layers.0.linear2.weight",
        "head.weight",
    }


@pytest.mark.parametrize("p", [0.1, 0.5, 0.7])
def test_fast_dropout_keeps_the_right_share_unbiased(p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = fast_dropout(x, p, training=True)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005
    assert abs(out.mean().item() - 1.0) < 0.02  # inverted scaling keeps the expectation
    assert torch.equal(fast_dropout(x, p, training=False), x)
    torch.manual_seed(0)
    assert torch.equal(fast_dropout(x, p, training=True), out)  # seeded like F.dropout


def test_fast_dropout_passes_gradient_through_kept_units_only() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 9, 32, requires_grad=True)
    out = fast_dropout(x, 0.3, training=True)
    out.sum().backward()
    kept = out.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 65536 / (65536 - round(0.3 * 65536))))
    assert torch.all(x.grad[~kept] == 0)


def test_revin_affine_after_patching_equals_revin_before_patching() -> None:
    torch.manual_seed(0)
    model = PatchTSTClassifier(3, Arch(16, 1, 2, 32), context=32, patch_len=8, stride=4).eval()
    with torch.no_grad():
        model.revin.weight.copy_(torch.tensor([1.0, 2.0, -0.5]))
        model.revin.bias.copy_(torch.tensor([0.3, -1.0, 0.0]))
        x = torch.randn(4, 32, 3)
        ref_norm = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-5)
        ref_norm = ref_norm * model.revin.weight + model.revin.bias
        assert torch.allclose(model.revin(x), ref_norm, atol=1e-5)
        patches = ref_norm.unfold(1, 8, 4).transpose(2, 3).reshape(4, model.n_patches, -1)
        h = model.patch_embed(patches) + model.pos_embed
        for layer in model.layers:
            h = layer(h)
        ref = model.head(model.norm(h).reshape(4, -1)).squeeze(-1)
        assert torch.allclose(model(x), ref, atol=1e-5)
