"""Coordinate check (Tensor Programs V, sec. 6): does an activation's typical coordinate size depend on width?

Models of growing width (same depth, head size and FFN ratio) take the same few AdamW steps through
the trainer's own optimizer groups and clipping; then the mean |coordinate| of the residual stream
after the last block, of its change since initialisation, and of the logits is measured on a fixed
batch. Under a parametrisation that transfers (muP) these stay flat in width; under `standard` the
updates grow with width and so do the measurements. The test suite asserts both; the README's GPU
protocol runs it at the 2B widths in bf16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpo_assets.model.parametrization import clip_groups
from hpo_assets.model.params import Arch
from hpo_assets.model.patchtst import PatchTSTClassifier
from hpo_assets.training.device import autocast
from hpo_assets.training.trainer import TrainConfig, build_optimizer, clip_gradients


@dataclass(frozen=True)
class CoordStats:
    width: int
    hidden: float  # mean |h| of the residual stream after the last block
    hidden_delta: float  # mean |h - h_at_init|
    logit: float  # mean |logit|


def coordinate_check(
    parametrization: str,
    widths: Sequence[int] = (64, 128, 256, 512),
    steps: int = 4,
    lr: float = 1e-2,
    n_layers: int = 2,
    head_dim: int = 32,
    ff_ratio: int = 4,
    n_features: int = 4,
    context: int = 32,
    patch_len: int = 8,
    stride: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    bf16: bool | None = None,
) -> list[CoordStats]:
    """Per width, the coordinate sizes after `steps` AdamW steps on one fixed random batch (seeded).

    `lr` is deliberately large (the check looks for blow-up, not for a good model); no warm-up,
    no weight decay, no dropout, the trainer's gradient clipping at 1.0.
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, context, n_features, generator=gen).to(dev)
    y = (x[:, -1, 0] > 0).float()
    loss_fn = nn.BCEWithLogitsLoss()
    out = []
    captured: list[torch.Tensor] = []  # the last block's output, appended by a forward hook
    for width in widths:
        torch.manual_seed(seed)
        arch = Arch(width, n_layers, max(1, width // head_dim), ff_ratio * width)
        model = PatchTSTClassifier(n_features, arch, context, patch_len, stride, 0.0, parametrization).to(dev)
        cfg = TrainConfig(
            lr=lr, weight_decay=0.0, warmup_steps=0, dropout=0.0, parametrization=parametrization
        )
        optimizer = build_optimizer(model, cfg, dev)
        clip_sets = clip_groups(optimizer.param_groups, model.scaling)
        captured.clear()
        hook = model.layers[-1].register_forward_hook(lambda _m, _i, o: captured.append(o.detach().float()))
        with torch.no_grad(), autocast(dev, bf16):
            model(x)
        h0 = captured.pop()
        model.train()
        for _ in range(steps):
            with autocast(dev, bf16):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(clip_sets, 1.0)
            optimizer.step()
        model.eval()
        captured.clear()
        with torch.no_grad(), autocast(dev, bf16):
            logits = model(x).float()
        h = captured.pop()
        hook.remove()
        out.append(
            CoordStats(
                width=width,
                hidden=float(h.abs().mean()),
                hidden_delta=float((h - h0).abs().mean()),
                logit=float(logits.abs().mean()),
            )
        )
    return out


def growth(stats: Sequence[CoordStats], field: str) -> float:
    """Fitted ratio of a measurement from the narrowest to the widest model (1.0 = flat in width).

    A least-squares line through log(value) vs log(width), read at both ends: less noisy than the
    ratio of the two end points, which hangs on one small random batch each.
    """
    w = np.log([s.width for s in stats])
    v = np.log([getattr(s, field) for s in stats])
    slope = np.polyfit(w, v, 1)[0]
    return float(np.exp(slope * (w[-1] - w[0])))
