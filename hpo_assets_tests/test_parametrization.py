"""muP / CompleteP: exact counts, optimizer groups, clipping and warm-up, and the coordinate check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpo_assets.model.parametrization import (
    BASE_SHAPE,
    PARAMETRIZATIONS,
    Scaling,
    clip_groups,
    parameter_roles,
)
from hpo_assets.model.params import Arch, count_parameters
from hpo_assets.model.patchtst import PatchTSTClassifier
from hpo_assets.training.coord_check import coordinate_check, growth
from hpo_assets.training.trainer import TrainConfig, build_optimizer, clip_gradients, lr_lambda, train

torch.set_num_threads(1)
WIDE = Arch(512, 8, 16, 1024)  # width 4x, depth 2x, d_ff 2x the base shape


def _groups_by_name(model: PatchTSTClassifier, cfg: TrainConfig) -> dict[str, dict]:
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    ids = {id(p): n for n, p in model.named_parameters()}
    return {ids[id(p)]: g for g in opt.param_groups for p in g["params"]}


@pytest.mark.parametrize("kind", PARAMETRIZATIONS)
@pytest.mark.parametrize("arch", [Arch(64, 2, 4, 256), Arch(96, 3, 3, 192), WIDE])
def test_parameter_count_is_the_closed_formula_for_every_parametrization(kind: str, arch: Arch) -> None:
    with torch.device("meta"):
        model = PatchTSTClassifier(25, arch, parametrization=kind)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(arch, 25)
    assert sum(1 for _ in model.buffers()) == 0  # multipliers are floats, not stored tensors


def test_standard_is_todays_model_and_optimizer() -> None:
    torch.manual_seed(0)
    model = PatchTSTClassifier(4, Arch(64, 2, 4, 256), 32, 8, 8)
    assert model.scaling == Scaling.of("standard", 64, 2, 4, 256)
    assert model.layers[0].attn_scale is None and model.layers[0].branch_mult == 1.0
    assert model.head.weight.abs().sum() > 0  # not zero-initialised
    decay, no_decay = build_optimizer(
        model, TrainConfig(lr=2e-3, weight_decay=0.1), torch.device("cpu")
    ).param_groups
    assert (decay["lr"], decay["weight_decay"], no_decay["weight_decay"]) == (2e-3, 0.1, 0.0)
    assert decay["eps"] == no_decay["eps"] == 1e-8


@pytest.mark.parametrize("kind", ["mup", "completep"])
def test_mup_groups_scale_hidden_lr_keep_lr_times_wd_and_scale_eps(kind: str) -> None:
    model = PatchTSTClassifier(4, WIDE, 32, 8, 8, parametrization=kind)
    lr, wd = 1e-3, 0.01
    by_name = _groups_by_name(model, TrainConfig(lr=lr, weight_decay=wd, parametrization=kind))
    roles = parameter_roles(model)
    m_width, m_ff, m_depth = 4.0, 2.0, 2.0
    for name, group in by_name.items():
        role = roles[name]
        if role == "hidden":
            fan = m_ff if name.endswith("linear2.weight") else m_width
            assert group["lr"] == pytest.approx(lr / fan)
            assert group["lr"] * group["weight_decay"] == pytest.approx(lr * wd)  # AdamW shrink per step
        else:
            assert group["lr"] == lr, name
        in_block = role in ("hidden", "block_vector")
        expected_eps = 1e-8 / m_width / (m_depth if kind == "completep" and in_block else 1.0)
        assert group["eps"] == pytest.approx(expected_eps), name
    assert roles["head.weight"] == "readout" and roles["patch_embed.weight"] == "input"
    assert roles["layers.3.qkv.weight"] == "hidden" and roles["layers.3.norm1.weight"] == "block_vector"
    assert by_name["pos_embed"]["weight_decay"] == 0.0 and by_name["norm.weight"]["weight_decay"] == 0.0
    # the model side: zero readout read at 1/width, 1/head_dim attention, CompleteP branch multiplier
    assert torch.count_nonzero(model.head.weight) == 0
    assert model.scaling.readout_mult == pytest.approx(1 / m_width)
    assert model.layers[0].attn_scale == pytest.approx(math.sqrt(BASE_SHAPE.head_dim) / 32)
    assert model.layers[0].branch_mult == (1 / m_depth if kind == "completep" else 1.0)


def test_base_shape_under_mup_uses_the_learning_rate_as_given() -> None:
    base = Arch(
        BASE_SHAPE.d_model, BASE_SHAPE.n_layers, BASE_SHAPE.d_model // BASE_SHAPE.head_dim, BASE_SHAPE.d_ff
    )
    model = PatchTSTClassifier(4, base, 32, 8, 8, parametrization="completep")
    groups = build_optimizer(
        model, TrainConfig(lr=3e-4, weight_decay=0.01, parametrization="completep"), torch.device("cpu")
    ).param_groups
    assert {g["lr"] for g in groups} == {3e-4} and {g["eps"] for g in groups} == {1e-8}
    assert model.layers[0].attn_scale == pytest.approx(1 / math.sqrt(BASE_SHAPE.head_dim))


def test_bad_parametrization_is_named() -> None:
    with pytest.raises(ValueError, match=r"parametrization.*'mup'"):
        TrainConfig(parametrization="mu-p").validate()
    with pytest.raises(ValueError, match=r"'mu-p' is not one of \['standard', 'mup', 'completep'\]"):
        PatchTSTClassifier(4, Arch(64, 2, 4, 256), 32, 8, 8, parametrization="mu-p")


def _fill_grads(model: torch.nn.Module, readout: float) -> None:
    for name, p in model.named_parameters():
        p.grad = torch.full_like(p, readout if name == "head.weight" else 1e-3)


@pytest.mark.parametrize(
    ("kind", "hidden_untouched"), [("standard", False), ("mup", True), ("completep", True)]
)
def test_clipping_is_per_role_under_mup_and_global_under_standard(kind: str, hidden_untouched: bool) -> None:
    """A gradient spike in the readout shrinks the hidden matrices' update only under a global clip."""
    model = PatchTSTClassifier(4, Arch(64, 2, 4, 256), 32, 8, 8, parametrization=kind)
    opt = build_optimizer(model, TrainConfig(parametrization=kind), torch.device("cpu"))
    sets = clip_groups(opt.param_groups, model.scaling)
    _fill_grads(model, readout=100.0)
    hidden = model.layers[0].linear1.weight
    before_hidden, before_norm = (
        hidden.grad.clone(),
        torch.cat([p.grad.flatten() for p in model.parameters()]).norm(),
    )
    total = clip_gradients(sets, 1.0)
    assert float(total) == pytest.approx(
        float(before_norm), rel=1e-5
    )  # the screened norm is the unclipped one
    assert torch.equal(hidden.grad, before_hidden) == hidden_untouched
    assert float(model.head.weight.grad.norm()) == pytest.approx(1.0, rel=1e-4)  # the spike itself is clipped
    assert len(sets) == (1 if kind == "standard" else len(set(parameter_roles(model).values())))


@pytest.mark.parametrize("kind", PARAMETRIZATIONS)
def test_warmup_scales_every_group_alike_so_mup_ratios_hold(kind: str) -> None:
    model = PatchTSTClassifier(4, WIDE, 32, 8, 8, parametrization=kind)
    opt = build_optimizer(model, TrainConfig(lr=1e-3, parametrization=kind), torch.device("cpu"))
    initial = [g["lr"] for g in opt.param_groups]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(10, 100))
    for step in range(1, 40):
        opt.step()
        sched.step()
        factor = lr_lambda(10, 100)(step)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([lr * factor for lr in initial])
    if kind != "standard":
        assert len(set(initial)) > 1  # the hidden groups really run at another lr


def test_mup_training_learns_and_diverges_like_standard_at_the_base_shape() -> None:
    """At the base width the readout's zero init is the only difference; both learn the planted signal."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 4)).astype(np.float32)
    y = (np.convolve(x[:, 0], np.ones(4), "same") > 0).astype(np.float32)
    cfg = TrainConfig(
        lr=3e-3, warmup_steps=5, batch_size=64, max_epochs=4, patience=4, dropout=0.0, parametrization="mup"
    )
    res = train(
        x,
        y,
        np.arange(31, 500),
        np.arange(500, 700),
        Arch(32, 1, 2, 64),
        cfg,
        context=32,
        patch_len=8,
        stride=8,
    )
    assert res.status == "ok" and res.metrics["val_auc"] > 0.75


@pytest.fixture(scope="module")
def coord() -> dict[str, list]:
    return {kind: coordinate_check(kind, widths=(64, 128, 256, 512), steps=4) for kind in PARAMETRIZATIONS}


@pytest.mark.parametrize("kind", ["mup", "completep"])
def test_coordinate_check_is_flat_in_width_under_mup(coord: dict[str, list], kind: str) -> None:
    stats = coord[kind]
    for field in ("hidden", "hidden_delta", "logit"):
        assert 0.5 < growth(stats, field) < 2.0, (field, stats)


def test_coordinate_check_grows_with_width_under_standard(coord: dict[str, list]) -> None:
    stats = coord["standard"]
    assert growth(stats, "hidden") > 4.0, stats  # the residual stream blows up with width
    assert growth(stats, "hidden_delta") > 4.0, stats
    assert growth(stats, "logit") > 2.0, stats  # bounded by the loss, but still not flat


def test_study_trainer_passes_the_parametrization_to_the_run() -> None:
    """`hpo_study`'s trainer trains the configured parametrisation (same seed: other curves)."""
    from types import SimpleNamespace

    from hpo_assets.search.objective import TorchTrainer
    from hpo_assets.search.space import ArchChoice

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    data = SimpleNamespace(
        x=x, y=y, split=SimpleNamespace(train=np.arange(31, 300), val=np.arange(300, 400)), context=32
    )
    arch = ArchChoice("d64-L1-H2-F128", 64, 1, 2, 128, 0)
    hp = {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 0, "dropout": 0.0, "batch_size": 64}
    curves = {
        kind: [
            r["train_loss"]
            for r in TorchTrainer(data, 2, 2, "val_loss", 0, "cpu", 8, 8, 1, parametrization=kind)(
                arch, hp, lambda r: None
            ).curve
        ]
        for kind in ("standard", "mup")
    }
    assert curves["standard"] != curves["mup"]
    # zero readout: mup's first loss is log(2) up to the first steps' learning
    assert curves["mup"][0] == pytest.approx(math.log(2), abs=0.05)
