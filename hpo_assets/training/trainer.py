"""Train one PatchTST classifier honestly: best checkpoint restored, metrics at the best epoch.

What the old trainer got wrong and this one fixes: metrics were taken at the last epoch; weight
decay and warm-up never reached the optimiser; a blown-up loss raised or was scored as a number.
Here AdamW decays weights only (not norms/biases/embeddings' positions), LambdaLR does linear
warm-up then cosine decay per optimiser step, gradients are clipped, early stopping watches the
validation objective, and a non-finite or exploding loss returns status "diverged" with the curve.

Data stay on the device: `x` is one (n_rows, F) tensor and a batch is gathered by index
(`x[t + arange(-context+1, 1)]`), so no window is ever copied host->device per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from hpo_assets.model.parametrization import PARAMETRIZATIONS, clip_groups, optimizer_groups
from hpo_assets.model.params import NORMALIZATIONS, Arch, count_parameters
from hpo_assets.model.patchtst import PatchTSTClassifier, no_decay_parameter_names
from hpo_assets.objectives import OBJECTIVES, RESULT_METRICS
from hpo_assets.settings import model_shape, settings
from hpo_assets.training.cpu_share import free_threads
from hpo_assets.training.device import autocast, bf16_supported, pick_device, prepare_device
from hpo_assets.training.divergence import LOSS_KEYS, first_divergence
from hpo_assets.training.metrics import bce_with_logits, classification_metrics
from hpo_assets.training.schedule import lr_lambda, total_steps, warmup_steps_for

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

Objective = Literal["val_auc", "val_loss"]
_STUDY = settings()["study"]  # defaults shared with the study settings
_SHAPE = model_shape()  # the `model:` input shape, the default of every window/patch argument
CUDA_CHECK_EVERY = 16  # optimiser steps between divergence screens on CUDA (each screen syncs)


@dataclass
class TrainConfig:
    """Everything that steers one training run; `validate()` names the first bad field."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100  # used when warmup_frac is None
    warmup_frac: float | None = None  # warm-up as a fraction of the run's optimiser steps (the search's)
    dropout: float = 0.1
    batch_size: int = 128
    max_epochs: int = int(_STUDY["max_epochs"])
    patience: int = int(_STUDY["patience"])
    objective: Objective = _STUDY["objective"]
    grad_clip: float = 1.0
    # "revin": per-window normalisation in the model; "zscore": features standardised with statistics
    # of the rows the training windows cover (never validation/test rows), no per-window step.
    normalization: Literal["revin", "zscore"] = "revin"
    seed: int = int(_STUDY["seed"])
    device: str | None = None
    eval_batch_size: int = 1024
    min_delta: float = 0.0
    # CPU threads for this run. None: one per core that is free when the run starts (training/cpu_share.py),
    # at most torch's setting; OpenMP threads on cores others keep busy wait for each other (~10x slower).
    num_threads: int | None = None
    cpu_bf16: bool = False  # bf16 autocast on CPU too (AMX/AVX512-BF16 only); CUDA always uses bf16
    # How lr/init/multipliers scale with the shape (model/parametrization.py): standard | mup | completep
    parametrization: str = "standard"

    def validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"TrainConfig.{name} = {getattr(self, name)!r}: {why}")

        def finite(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise bad(name, "must be a finite number")
            return float(value)

        def whole(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise bad(name, f"must be an integer >= {minimum}")

        if finite("lr") <= 0:
            raise bad("lr", "must be > 0")
        if finite("weight_decay") < 0:
            raise bad("weight_decay", "must be >= 0")
        if not 0 <= finite("dropout") < 1:
            raise bad("dropout", "must be in [0, 1)")
        if finite("grad_clip") < 0:
            raise bad("grad_clip", "must be >= 0 (0 disables clipping)")
        if self.warmup_frac is not None and not 0 <= finite("warmup_frac") < 1:
            raise bad("warmup_frac", "must be in [0, 1)")
        if self.normalization not in NORMALIZATIONS:
            raise bad("normalization", f"must be one of {list(NORMALIZATIONS)}")
        if finite("min_delta") < 0:
            raise bad("min_delta", "must be >= 0")
        whole("warmup_steps", 0)
        whole("batch_size", 1)
        whole("eval_batch_size", 1)
        whole("max_epochs", 1)
        whole("patience", 1)
        whole("seed", 0)
        if self.num_threads is not None:
            whole("num_threads", 1)
        if self.objective not in OBJECTIVES:
            raise bad("objective", f"must be one of {sorted(OBJECTIVES)}")
        if self.parametrization not in PARAMETRIZATIONS:
            raise bad("parametrization", f"must be one of {list(PARAMETRIZATIONS)}")
        device = pick_device(self.device)
        if self.cpu_bf16 and device.type == "cpu" and not bf16_supported(device):
            raise bad("cpu_bf16", "this CPU has no bf16 matmul support (AMX or AVX512-BF16); leave it False")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of one run. `metrics` and `model` are those of the best epoch (restored checkpoint).

    `best_epoch` is the 1-based epoch of the best validation objective (the restored checkpoint),
    `best_val_loss` the validation loss *at that epoch* (= metrics["val_loss"]); with objective
    val_auc it need not be the curve's minimum. A diverged run keeps its best earlier epoch (if
    any) restored and measured; `curve` ends with the diverging epoch's record (val_loss None).
    `timings` holds per-epoch seconds split into training compute and validation, for benchmarks.
    """

    status: Literal["ok", "diverged"]
    diverged_reason: str | None
    diverge_epoch: int | None
    metrics: dict[str, Any]
    best_epoch: int | None
    best_val_loss: float | None
    epochs_trained: int
    early_stopped: bool
    curve: list[dict[str, Any]]
    val_logits: np.ndarray
    val_labels: np.ndarray
    param_count: int
    device: str
    duration_sec: float
    model: nn.Module
    timings: list[dict[str, float]] = field(default_factory=list)
    # "zscore" runs: the training-split (mean, std) the inputs were standardised with; the model
    # expects them applied to any later input (test split, a saved model). None under RevIN.
    input_scale: tuple[np.ndarray, np.ndarray] | None = None
    num_threads: int | None = None  # CPU threads the run trained with

    def scale_inputs(self, x: np.ndarray) -> np.ndarray:
        """`x` as this run's model saw its training inputs (standardised under "zscore")."""
        if self.input_scale is None:
            return x
        mean, std = self.input_scale
        return ((x - mean) / std).astype(np.float32)


METRIC_KEYS = RESULT_METRICS


def build_optimizer(model: PatchTSTClassifier, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only (norms, biases, RevIN, positions undecayed).

    The groups' lr / weight decay / eps follow the model's parametrisation (`optimizer_groups`).
    """
    groups = optimizer_groups(model, model.scaling, cfg.lr, cfg.weight_decay, no_decay_parameter_names(model))
    # The fused kernel exists for CPU and CUDA and updates all tensors in one pass.
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type in {"cpu", "cuda"})


def clip_gradients(param_sets: list[list[nn.Parameter]], max_norm: float) -> torch.Tensor:
    """Clip each set's gradient norm to `max_norm` on its own; return the norm over all sets (for screening).

    One set is the usual global-norm clip; `mup`/`completep` clip per parameter role (see
    `model/parametrization.py` for why).
    """
    norms = [nn.utils.clip_grad_norm_(ps, max_norm, foreach=True) for ps in param_sets]
    return norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms))


def _check_inputs(
    x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, context: int, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D (n_rows, n_features) array, got shape {x.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y has {y.shape[0]} rows but x has {x.shape[0]}")
    out = []
    for name, idx in (("train_idx", train_idx), ("val_idx", val_idx)):
        idx = np.asarray(idx)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{name} must be a non-empty 1-D integer array of window end rows")
        if idx.min() < context - 1 or idx.max() >= x.shape[0]:
            raise ValueError(
                f"{name} holds rows outside [{context - 1}, {x.shape[0] - 1}] "
                f"(a window needs {context} rows ending at its index)"
            )
        labels = y[idx]
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{name} includes {int((~np.isfinite(labels)).sum())} unlabelled (NaN) rows")
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError(f"labels at {name} must be 0 or 1")
        first, last = int(idx.min()) - context + 1, int(idx.max()) + 1
        if not np.all(np.isfinite(x[first:last])):
            raise ValueError(
                f"x has non-finite values inside the windows of {name} (rows {first}..{last - 1})"
            )
        out.append(idx.astype(np.int64))
    if cfg.objective == "val_auc" and np.unique(y[out[1]]).size < 2:
        raise ValueError(
            "the validation labels hold one class only, so val_auc is undefined; use objective val_loss"
        )
    return x, y, out[0], out[1]


def _better(value: float | None, best: float | None, objective: str, min_delta: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if OBJECTIVES[objective] == "maximize" else value < best - min_delta


def _auc(labels: np.ndarray, logits: np.ndarray) -> float | None:
    if np.unique(labels).size < 2 or not np.all(np.isfinite(logits)):
        return None
    return float(roc_auc_score(labels, logits))


def train(
    x: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    arch: Arch,
    cfg: TrainConfig,
    context: int = _SHAPE.context,
    patch_len: int = _SHAPE.patch_len,
    stride: int = _SHAPE.stride,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train on windows ending at `train_idx`, early-stop on `val_idx`; see the module docstring.

    `on_epoch(record)` runs after every completed epoch; what it raises (e.g. optuna.TrialPruned)
    propagates. Numerical blow-ups never raise: they return status "diverged".
    """
    cfg.validate()
    x, y, train_idx, val_idx = _check_inputs(x, y, train_idx, val_idx, context, cfg)
    scale = zscore_stats(x, train_idx, context) if cfg.normalization == "zscore" else None
    if scale is not None:
        x = ((x - scale[0]) / scale[1]).astype(np.float32)
    device = pick_device(cfg.device)
    prepare_device(device)
    started = time.perf_counter()
    n_features = x.shape[1]
    rng_devices = [device] if device.type == "cuda" else []
    threads = torch.get_num_threads()
    try:
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        elif device.type == "cpu":
            torch.set_num_threads(free_threads(threads))
        used_threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(cfg.seed)
            model = PatchTSTClassifier(
                n_features,
                arch,
                context,
                patch_len,
                stride,
                cfg.dropout,
                cfg.parametrization,
                normalization=cfg.normalization,
            ).to(device)
            run = _Run(model, x, y, train_idx, val_idx, cfg, device, context)
            run.fit(on_epoch)
        result = run.result(count_parameters(arch, n_features, context, patch_len, stride))
    finally:
        torch.set_num_threads(threads)
    result.duration_sec = time.perf_counter() - started
    result.num_threads = used_threads
    result.input_scale = scale
    return result


def zscore_stats(x: np.ndarray, train_idx: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean/std of the rows the training windows cover (train split only); std 0 -> 1."""
    covered = np.zeros(x.shape[0] + 1, dtype=np.int64)
    np.add.at(covered, train_idx - context + 1, 1)
    np.add.at(covered, train_idx + 1, -1)
    rows = np.cumsum(covered[:-1]) > 0
    mean = x[rows].mean(axis=0, dtype=np.float64)
    std = x[rows].std(axis=0, dtype=np.float64)
    return mean, np.where(std > 0, std, 1.0)


def train_prepared(
    data: PreparedData,
    arch: Arch,
    cfg: TrainConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    patch_len: int = _SHAPE.patch_len,
    stride: int = _SHAPE.stride,
) -> TrainResult:
    """`train` on a PreparedData: its features, labels, train/val split and context."""
    return train(
        data.x,
        data.y,
        data.split.train,
        data.split.val,
        arch,
        cfg,
        context=data.context,
        patch_len=patch_len,
        stride=stride,
        on_epoch=on_epoch,
    )


class _Run:
    """The state of one training run (kept in one object so `train` reads as the recipe)."""

    def __init__(
        self,
        model: PatchTSTClassifier,
        x: np.ndarray,
        y: np.ndarray,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        cfg: TrainConfig,
        device: torch.device,
        context: int,
    ) -> None:
        self.model, self.cfg, self.device = model, cfg, device
        nb = device.type == "cuda"
        self.x = torch.from_numpy(x).to(device, non_blocking=nb)
        self.y = torch.from_numpy(y).to(device, non_blocking=nb)
        self.train_idx = torch.from_numpy(train_idx).to(device, non_blocking=nb)
        self.val_idx = torch.from_numpy(val_idx).to(device, non_blocking=nb)
        self.val_labels = y[val_idx].astype(np.float32)
        self.offsets = torch.arange(-context + 1, 1, device=device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.bf16: bool | None = True if (cfg.cpu_bf16 and device.type == "cpu") else None
        self.optimizer = build_optimizer(model, cfg, device)
        self.clip_sets = clip_groups(self.optimizer.param_groups, model.scaling)
        steps = total_steps(len(train_idx), cfg.batch_size, cfg.max_epochs)
        self.warmup_steps = (
            cfg.warmup_steps if cfg.warmup_frac is None else warmup_steps_for(cfg.warmup_frac, steps)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.warmup_steps, steps)
        )
        self.curve: list[dict[str, Any]] = []
        self.timings: list[dict[str, float]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.status: Literal["ok", "diverged"] = "ok"
        self.diverged_reason: str | None = None
        self.diverge_epoch: int | None = None
        self.early_stopped = False

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        return self.x[idx[:, None] + self.offsets]

    def fit(self, on_epoch: Callable[[dict[str, Any]], None] | None) -> None:
        cfg = self.cfg
        for epoch in range(1, cfg.max_epochs + 1):
            t0, cpu0 = time.perf_counter(), time.process_time()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, compute = self.train_epoch(epoch)
            if self.status == "diverged":
                self.curve.append(self._record(epoch, train_loss, None, None, lr, time.perf_counter() - t0))
                return
            t_eval = time.perf_counter()
            logits = self.predict(self.val_idx)
            eval_seconds = time.perf_counter() - t_eval
            val_loss = bce_with_logits(logits, self.val_labels) if np.all(np.isfinite(logits)) else math.nan
            val_auc = _auc(self.val_labels, logits)
            seconds = time.perf_counter() - t0
            record = self._record(epoch, train_loss, val_loss, val_auc, lr, seconds)
            self.curve.append(record)
            self.timings.append(
                {
                    "epoch": epoch,
                    "seconds": seconds,
                    "compute_seconds": compute,
                    "eval_seconds": eval_seconds,
                    "cpu_seconds": time.process_time() - cpu0,
                }
            )
            broke = first_divergence([{k: record[k] for k in ("epoch", *LOSS_KEYS)}])
            if broke is not None:  # the shared rule (training/divergence.py), as the trial table applies it
                self._diverge(epoch, broke[1])
                return
            value = val_auc if cfg.objective == "val_auc" else val_loss
            if _better(value, self.best_value, cfg.objective, cfg.min_delta):
                self.best_value, self.best_epoch = value, epoch
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if on_epoch is not None:
                on_epoch(dict(record))
            if (
                self.best_epoch is not None
                and epoch - self.best_epoch >= cfg.patience
                and epoch < cfg.max_epochs
            ):
                self.early_stopped = True
                return

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over shuffled training windows; returns (mean loss, seconds in fwd/bwd/step).

        Losses are screened every step on CPU (free) and every `CUDA_CHECK_EVERY` steps on CUDA,
        where reading a loss back stalls the GPU queue.
        """
        cfg, model = self.cfg, self.model
        model.train()
        order = torch.randperm(len(self.train_idx), generator=self.generator).to(self.device)
        idx_all = self.train_idx[order]
        check_every = 1 if self.device.type == "cpu" else CUDA_CHECK_EVERY
        n_steps = math.ceil(len(idx_all) / cfg.batch_size)
        pending: list[tuple[int, int, torch.Tensor, torch.Tensor | None]] = []
        total, count, compute = 0.0, 0, 0.0
        for step in range(n_steps):
            idx = idx_all[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb, yb = self.windows(idx), self.y[idx]
            t = time.perf_counter()
            with autocast(self.device, self.bf16):
                logits = model(xb)
            loss = self.loss_fn(logits.float(), yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = clip_gradients(self.clip_sets, cfg.grad_clip) if cfg.grad_clip > 0 else None
            pending.append((step, len(idx), loss.detach(), grad_norm))
            if len(pending) >= check_every or step == n_steps - 1:
                for k, n, loss_t, norm_t in pending:
                    value = loss_t.item()
                    if self._screen(epoch, k, value, norm_t):
                        return value, compute + time.perf_counter() - t
                    total += value * n
                    count += n
                pending.clear()
            self.optimizer.step()
            self.scheduler.step()
            compute += time.perf_counter() - t
        return total / count, compute

    def _screen(self, epoch: int, step: int, loss: float, grad_norm: torch.Tensor | None) -> bool:
        """Stop at the first non-finite batch loss or gradient (and say True): the epoch is lost anyway.

        The epoch's record then holds that loss as its train_loss, so the shared rule reads the same
        epoch as diverged; an exploding but finite loss is judged per epoch by that rule.
        """
        where = f"at epoch {epoch}, step {step + 1}"
        if not math.isfinite(loss):
            self._diverge(epoch, f"train_loss={loss!r} (not finite) {where}")
        elif grad_norm is not None and not math.isfinite(grad_norm.item()):
            self._diverge(epoch, f"non-finite gradient norm {where}")
        return self.status == "diverged"

    @torch.inference_mode()
    def predict(self, idx: torch.Tensor) -> np.ndarray:
        self.model.eval()
        parts = []
        for start in range(0, len(idx), self.cfg.eval_batch_size):
            with autocast(self.device, self.bf16):
                parts.append(self.model(self.windows(idx[start : start + self.cfg.eval_batch_size])).float())
        return torch.cat(parts).cpu().numpy()

    def _diverge(self, epoch: int, reason: str) -> None:
        self.status, self.diverge_epoch, self.diverged_reason = "diverged", epoch, reason

    def _record(
        self,
        epoch: int,
        train_loss: float,
        val_loss: float | None,
        val_auc: float | None,
        lr: float,
        seconds: float,
    ) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "train_loss": float(train_loss),
            "val_loss": None if val_loss is None else float(val_loss),
            "val_auc": val_auc,
            "lr": float(lr),
            "seconds": float(seconds),
        }

    def result(self, param_count: int) -> TrainResult:
        metrics: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
        logits = np.empty(0, dtype=np.float32)
        labels = np.empty(0, dtype=np.float32)
        best_val_loss = None
        if self.best_state is not None and self.best_epoch is not None:  # set together, at the best epoch
            self.model.load_state_dict(self.best_state)
            logits = self.predict(self.val_idx)
            labels = self.val_labels
            computed = classification_metrics(logits, labels)
            metrics.update({k: computed[k] for k in METRIC_KEYS if k in computed})
            best = self.curve[self.best_epoch - 1]
            metrics["train_loss"] = best["train_loss"]
            best_val_loss = best["val_loss"]
        self.model.eval()
        return TrainResult(
            status=self.status,
            diverged_reason=self.diverged_reason,
            diverge_epoch=self.diverge_epoch,
            metrics=metrics,
            best_epoch=self.best_epoch,
            best_val_loss=best_val_loss,
            epochs_trained=len(self.curve),
            early_stopped=self.early_stopped,
            curve=self.curve,
            val_logits=logits,
            val_labels=labels,
            param_count=param_count,
            device=str(self.device),
            duration_sec=0.0,
            model=self.model.cpu(),
            timings=self.timings,
        )
