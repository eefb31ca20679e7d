"""How the model and its optimizer scale with shape, so one learning rate means one thing at every budget.

`standard` is PyTorch's usual parametrisation: one AdamW learning rate for every tensor, so the
per-coordinate change of a hidden activation after an update grows with width and the best `lr`
moves from budget to budget. `mup` is the maximal-update parametrisation for Adam (Tensor Programs
V, Yang et al. 2022, Table 3), expressed relative to ONE fixed base shape (`BASE_SHAPE`, the same for
every budget, so `lr` is "the learning rate this base model would use"):

- hidden matrices (QKV, attention output, FFN in/out): Adam lr x base_fan_in / fan_in; their init
  variance is the fan-in one PyTorch already uses (sigma_base^2 x base_fan_in / fan_in); weight
  decay x fan_in / base_fan_in so AdamW's lr*wd shrink per step stays that of the base model;
- attention logits scaled by sqrt(base_head_dim) / head_dim (1/d_head, equal to 1/sqrt(d_head) at the
  base head size);
- readout (`head`): zero-initialised and its output multiplied by base_width / width, lr unchanged
  (equivalent to lr x 1/fan_in on an unmultiplied readout);
- input weights (patch embedding, positions), biases and norms: unchanged;
- Adam's epsilon x base_width / width (gradients of width-n tensors shrink like 1/n).

`completep` is mup plus depth (CompleteP, Dey et al. 2025, alpha = 1): every residual branch is
multiplied by base_layers / n_layers and the epsilon of the tensors inside the blocks is further
multiplied by base_layers / n_layers; with alpha = 1 the depth factor of the learning rates is 1.

Gradient clipping and warm-up (see `training/trainer.py`): under `mup`/`completep` the gradient norm
is clipped per parameter role (`clip_groups`), not globally. A global norm adds the hidden matrices,
whose gradient norm does not shrink with width under muP, to the readout/input/vector tensors,
whose norms do, so whether (and how hard) the clip fires - and thus how much it shrinks the hidden
updates - depends on width and on the other roles; per role it depends on that role alone.
Warm-up and the cosine decay are a common multiplier of every group's learning rate
(LambdaLR scales each group's own initial lr), so the per-role ratios hold at every step.

No parameter is added or removed: the multipliers are Python floats, so `model/params.py`'s exact
count holds for every parametrisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Kind = Literal["standard", "mup", "completep"]
PARAMETRIZATIONS: tuple[str, ...] = ("standard", "mup", "completep")
ADAM_EPS = 1e-8
ROLES: tuple[str, ...] = ("input", "hidden", "readout", "vector", "block_vector")


@dataclass(frozen=True)
class BaseShape:
    """The shape whose learning rate every budget shares (muP's "base model")."""

    d_model: int = 128
    n_layers: int = 4
    head_dim: int = 32
    d_ff: int = 512


BASE_SHAPE = BaseShape()


def check_parametrization(kind: str) -> Kind:
    """`kind` itself, or one ValueError naming the valid choices."""
    if kind not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization {kind!r} is not one of {list(PARAMETRIZATIONS)}")
    return kind  # type: ignore[return-value]


@dataclass(frozen=True)
class Scaling:
    """The multipliers of one architecture under one parametrisation (all 1 under `standard`)."""

    kind: Kind
    width_mult: float  # d_model / base d_model
    ff_mult: float  # d_ff / base d_ff
    depth_mult: float  # n_layers / base n_layers
    attn_scale: float | None  # None: SDPA's default 1/sqrt(head_dim)
    branch_mult: float  # residual-branch multiplier
    readout_mult: float  # multiplier of the head's output
    zero_readout: bool

    @classmethod
    def of(
        cls, kind: str, d_model: int, n_layers: int, n_heads: int, d_ff: int, base: BaseShape = BASE_SHAPE
    ) -> Scaling:
        kind = check_parametrization(kind)
        width, ff, depth = d_model / base.d_model, d_ff / base.d_ff, n_layers / base.n_layers
        if kind == "standard":
            return cls(kind, width, ff, depth, None, 1.0, 1.0, False)
        head_dim = d_model // n_heads
        branch = 1.0 / depth if kind == "completep" else 1.0
        return cls(kind, width, ff, depth, math.sqrt(base.head_dim) / head_dim, branch, 1.0 / width, True)

    @property
    def is_standard(self) -> bool:
        return self.kind == "standard"


def parameter_roles(model: nn.Module) -> dict[str, str]:
    """Each parameter name -> its muP role, from the model's structure (see the module docstring).

    hidden: weight matrices inside the encoder blocks; readout: `head.weight`; input: the patch
    embedding's weight and the positional embedding; block_vector: biases and norms inside the
    blocks; vector: every other bias/norm/RevIN affine.
    """
    roles: dict[str, str] = {}
    for name, param in model.named_parameters():
        in_block = name.startswith("layers.")
        if name == "head.weight":
            role = "readout"
        elif name in ("patch_embed.weight", "pos_embed"):
            role = "input"
        elif in_block and param.ndim == 2:
            role = "hidden"
        elif in_block:
            role = "block_vector"
        else:
            role = "vector"
        roles[name] = role
    return roles


def optimizer_groups(
    model: nn.Module,
    scaling: Scaling,
    lr: float,
    weight_decay: float,
    no_decay: set[str],
    eps: float = ADAM_EPS,
) -> list[dict[str, Any]]:
    """AdamW parameter groups: one per (role, lr, weight decay, eps) combination, each named by `role`.

    Under `standard` every tensor gets the optimizer's `lr` and `eps`, and `weight_decay` unless it
    is in `no_decay` (two groups, "decay" then "no_decay"). Under `mup`/`completep` the rules of the module docstring apply; the hidden
    matrices reading the FFN's hidden layer (`linear2`) scale with d_ff's ratio, the others with
    d_model's.
    """
    if scaling.is_standard:
        named = list(model.named_parameters())
        return [
            {
                "params": [p for n, p in named if n not in no_decay],
                "role": "decay",
                "weight_decay": weight_decay,
            },
            {"params": [p for n, p in named if n in no_decay], "role": "no_decay", "weight_decay": 0.0},
        ]
    roles = parameter_roles(model)
    groups: dict[tuple[str, float, float, float], list[nn.Parameter]] = {}
    s = scaling
    for name, param in model.named_parameters():
        role = roles[name]
        wd = 0.0 if name in no_decay else weight_decay
        p_lr, p_eps = lr, eps / s.width_mult
        if role == "hidden":
            fan_mult = s.ff_mult if name.endswith("linear2.weight") else s.width_mult
            p_lr, wd = lr / fan_mult, wd * fan_mult
        if s.kind == "completep" and role in ("hidden", "block_vector"):
            p_eps /= s.depth_mult
        groups.setdefault((role, p_lr, wd, p_eps), []).append(param)
    return [
        {"params": params, "role": role, "lr": p_lr, "weight_decay": wd, "eps": p_eps}
        for (role, p_lr, wd, p_eps), params in groups.items()
    ]


def clip_groups(optimizer_param_groups: list[dict[str, Any]], scaling: Scaling) -> list[list[nn.Parameter]]:
    """The sets of tensors whose gradient norm is clipped together (see the module docstring).

    `standard`: one set, all tensors (today's global-norm clip). `mup`/`completep`: one set per role.
    """
    if scaling.is_standard:
        return [[p for g in optimizer_param_groups for p in g["params"]]]
    by_role: dict[str, list[nn.Parameter]] = {}
    for g in optimizer_param_groups:
        by_role.setdefault(g["role"], []).extend(g["params"])
    return list(by_role.values())
