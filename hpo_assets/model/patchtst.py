"""PatchTST-style binary classifier for multivariate daily series.

Channel handling: **channel-mixing**. Each patch takes `patch_len` consecutive days of *all*
features and becomes one token (a linear embedding of `patch_len * n_features` numbers), so a
window is `n_patches` tokens, not `n_features * n_patches` as in channel-independent PatchTST.
That is ~`n_features` times cheaper and lets attention relate features directly, which is what a
classifier of "does the price rise" needs.

Pipeline: RevIN (per-window, per-feature normalisation with a learned affine; with
`normalization="zscore"` only the affine, on inputs the trainer standardised with training-split
statistics, which keeps the volatility level RevIN removes) -> patching
(context/patch_len/stride) -> linear patch embedding + learned positional embedding -> pre-norm
transformer encoder (fused QKV, `scaled_dot_product_attention`, GELU FFN, dropout on the
residual branches and FFN hidden layer, none on attention probabilities) -> final LayerNorm ->
flatten all tokens -> dropout -> one logit. Train with `BCEWithLogitsLoss`.

`parametrization` ("standard", "mup", "completep") sets the attention scale, residual-branch and
readout multipliers and the readout's init; the optimizer side lives in `model/parametrization.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hpo_assets.model.parametrization import Scaling
from hpo_assets.model.params import NORMALIZATIONS, Arch, n_patches

FAST_DROPOUT = True  # False: FastDropout falls back to F.dropout (benchmarks compare the two)


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a cheaper CPU mask than `F.dropout` (1.4 vs 2.9 ms fwd+bwd per 442k values, 1 thread).

    On CPU torch draws one 32-bit sample per element for the mask, which costs about as much as
    this model's matmuls; here one int64 draw yields four 16-bit lanes, each compared with a threshold. The keep
    probability is exact to 1/65536 and the scale uses that exact value, so E[out] = x. Seeded by
    the global generator like `F.dropout`. Other devices use `F.dropout` (already fused there).
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not FAST_DROPOUT:
        return F.dropout(x, p, True)
    n = x.numel()
    drop_levels = round(p * 65536)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    lanes = words.view(torch.int16)[:n].view(x.shape)
    # a float mask of {0, 1/keep_prob}: one multiply forward and backward (torch.where costs ~2x)
    mask = (lanes >= drop_levels - 32768).to(x.dtype).mul_(65536.0 / (65536 - drop_levels))
    return x * mask


class FastDropout(nn.Dropout):
    """`nn.Dropout` with the cheaper CPU mask of `fast_dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


class RevIN(nn.Module):
    """Reversible instance normalisation (input side only): removes each window's level and scale.

    `normalise` and `affine` are split so the learned per-feature affine can be applied after
    patching (it commutes with it): the unfold then runs on a tensor that needs no gradient.
    """

    def __init__(self, n_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, F), stats over T
        # mean/var by hand: torch.var_mean over a middle dim is ~8x slower on CPU here
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        return centred * torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + self.eps)

    def affine(self, z: torch.Tensor, repeats: int = 1) -> torch.Tensor:
        """Per-feature scale and shift of a tensor whose last dim is `repeats` blocks of features."""
        return z * self.weight.repeat(repeats) + self.bias.repeat(repeats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(self.normalise(x))


class EncoderBlock(nn.Module):
    """Pre-norm transformer layer; same parameters as `nn.TransformerEncoderLayer(norm_first=True)`.

    Dropout acts on the embedding-sized residual branches and the FFN hidden layer; attention
    probabilities are not dropped (PatchTST's default `attn_dropout=0`), which also keeps
    `scaled_dot_product_attention` on its fused kernel instead of the slower math fallback.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        attn_scale: float | None = None,
        branch_mult: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.attn_scale = attn_scale  # None: SDPA's 1/sqrt(head_dim); muP: 1/head_dim (parametrization.py)
        self.branch_mult = branch_mult  # CompleteP's residual-branch multiplier base_layers / n_layers
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.drop = FastDropout(dropout)
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, D)
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, Dh)
        attn = F.scaled_dot_product_attention(q, k, v, scale=self.attn_scale)
        branch = self.drop(self.out_proj(attn.transpose(1, 2).reshape(b, n, d)))
        x = x + (branch if self.branch_mult == 1.0 else branch * self.branch_mult)
        branch = self.drop(self.linear2(self.drop(F.gelu(self.linear1(self.norm2(x))))))
        return x + (branch if self.branch_mult == 1.0 else branch * self.branch_mult)


class PatchTSTClassifier(nn.Module):
    """Window (B, context, n_features) -> one logit per window (B,); see the module docstring."""

    def __init__(
        self,
        n_features: int,
        arch: Arch,
        context: int = 80,
        patch_len: int = 16,
        stride: int = 8,
        dropout: float = 0.1,
        parametrization: str = "standard",
        normalization: str = "revin",
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        # "zscore": the inputs are already standardised with training-split statistics (the trainer
        # does it), so no per-window step; the learned per-feature affine stays (same parameter count).
        self.normalization = normalization
        self.scaling = Scaling.of(parametrization, arch.d_model, arch.n_layers, arch.n_heads, arch.d_ff)
        self.n_features = n_features
        self.arch = arch
        self.context = context
        self.patch_len = patch_len
        self.stride = stride
        self.n_patches = n_patches(context, patch_len, stride)
        d = arch.d_model
        self.revin = RevIN(n_features)
        self.patch_embed = nn.Linear(patch_len * n_features, d)
        self.pos_embed = nn.Parameter(torch.empty(self.n_patches, d))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.emb_drop = FastDropout(dropout)
        self.layers = nn.ModuleList(
            EncoderBlock(
                d, arch.n_heads, arch.d_ff, dropout, self.scaling.attn_scale, self.scaling.branch_mult
            )
            for _ in range(arch.n_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.head_drop = FastDropout(dropout)
        self.head = nn.Linear(self.n_patches * d, 1)
        if self.scaling.zero_readout:  # muP: the readout starts at 0 and reads its input x base_width/width
            nn.init.zeros_(self.head.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, f = x.shape
        if t != self.context or f != self.n_features:
            raise ValueError(
                f"expected windows of shape (B, {self.context}, {self.n_features}), got {tuple(x.shape)}"
            )
        if self.normalization == "revin":
            x = self.revin.normalise(x)
        # (B, T, F) -> (B, n_patches, F, patch_len) -> (B, n_patches, patch_len * F), time-major per patch
        patches = x.unfold(1, self.patch_len, self.stride).transpose(2, 3).reshape(b, self.n_patches, -1)
        patches = self.revin.affine(patches, self.patch_len)
        h = self.emb_drop(self.patch_embed(patches) + self.pos_embed)
        for layer in self.layers:
            h = layer(h)
        h = self.head_drop(self.norm(h).reshape(b, -1))
        mult = self.scaling.readout_mult  # on the head's input, so its bias is not scaled
        return self.head(h if mult == 1.0 else h * mult).squeeze(-1)


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Parameters AdamW must not decay: biases, norm and RevIN affines, positional embedding."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if param_name == "bias" or isinstance(module, nn.LayerNorm | RevIN) or param_name == "pos_embed":
                names.add(full)
    return names
