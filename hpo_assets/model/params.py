"""Architecture shapes and their exact parameter count, from a closed formula (no model is built).

The formula mirrors `PatchTSTClassifier` term by term; `hpo_assets_tests/test_params.py` checks it
against `sum(p.numel())` on real and meta-device models, so a budget really means parameters.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_LABEL = re.compile(r"^d(\d+)-L(\d+)-H(\d+)-F(\d+)$")
# How the model's inputs are normalised: features z-scored with training statistics, or per window (RevIN).
NORMALIZATIONS: tuple[str, ...] = ("zscore", "revin")


@dataclass(frozen=True, order=True)
class Arch:
    """One transformer shape: width, depth, attention heads and feed-forward width."""

    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "d_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Arch.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"Arch.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")

    @property
    def label(self) -> str:
        """Compact name used in tables and trial attributes, e.g. "d64-L4-H8-F256"."""
        return f"d{self.d_model}-L{self.n_layers}-H{self.n_heads}-F{self.d_ff}"

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_ff_ratio(self) -> float:
        return self.d_ff / self.d_model

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_label(cls, label: str) -> Arch:
        """Inverse of `.label`; a malformed label is a ValueError naming it."""
        match = _LABEL.match(label.strip())
        if not match:
            raise ValueError(f"architecture label {label!r} is not of the form 'd64-L4-H8-F256'")
        d, n_layers, h, f = (int(g) for g in match.groups())
        return cls(d, n_layers, h, f)


def n_patches(context: int, patch_len: int, stride: int) -> int:
    """Number of patch tokens cut from a context window (no end padding)."""
    if patch_len < 1 or stride < 1:
        raise ValueError(f"patch_len ({patch_len}) and stride ({stride}) must be >= 1")
    if context < patch_len:
        raise ValueError(f"context ({context}) must be >= patch_len ({patch_len})")
    return (context - patch_len) // stride + 1


def encoder_layer_parameters(d_model: int, d_ff: int) -> int:
    """One pre-norm encoder layer: fused QKV + output projection, two FFN linears, two LayerNorms."""
    attention = 4 * d_model * d_model + 4 * d_model
    feed_forward = 2 * d_model * d_ff + d_ff + d_model
    norms = 4 * d_model
    return attention + feed_forward + norms


def count_parameters(
    arch: Arch, n_features: int, context: int = 80, patch_len: int = 16, stride: int = 8
) -> int:
    """Exact number of trainable parameters of `PatchTSTClassifier(n_features, arch, ...)`."""
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    p = n_patches(context, patch_len, stride)
    d = arch.d_model
    revin = 2 * n_features
    patch_embedding = patch_len * n_features * d + d
    positions = p * d
    encoder = arch.n_layers * encoder_layer_parameters(d, arch.d_ff)
    final_norm = 2 * d
    head = p * d + 1
    return revin + patch_embedding + positions + encoder + final_norm + head
