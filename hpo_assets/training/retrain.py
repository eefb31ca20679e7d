"""Retrain a study's trial under its own protocol, with several seeds, and predict any split.

A `TrialRecipe` is everything needed to train a trial again: its architecture and training
parameters (`configs_from_trial`, the one place that knows how a trial's params map to a model and a
training configuration), the study's protocol (seed, epochs, patience, objective, parametrization)
and its data window and split dates. The first seed of a retrain is the trial's own, so the same
run both reproduces the trial and contributes to the seed spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpo_assets import settings as project_settings
from hpo_assets.model.params import Arch, count_parameters
from hpo_assets.training.trainer import TrainConfig, train_prepared

if TYPE_CHECKING:
    import optuna

    from hpo_assets.data.dataset import PreparedData

TRAIN_KEYS = ("lr", "dropout", "weight_decay", "warmup_steps", "batch_size")


class RetrainError(ValueError):
    """A study or trial that cannot be retrained (no COMPLETE trial, missing parameters); names it."""


def configs_from_trial(
    params: Mapping[str, Any], user_attrs: Mapping[str, Any]
) -> tuple[Arch, dict[str, Any]]:
    """(architecture, training parameters) of a trial: the mapping of the current search space.

    Today a trial's params hold `arch` (a label like d64-L4-H8-F256) and the five training choices;
    the architecture dimensions are also in its user attrs. A structured space (separate
    width/depth/heads/ff) replaces only this function.
    """
    dims = ("d_model", "n_layers", "n_heads", "d_ff")
    if all(k in params for k in ("d_model", "n_layers", "n_heads", "d_ff_ratio")):  # the structured space
        d = int(params["d_model"])
        arch = Arch(d, int(params["n_layers"]), int(params["n_heads"]), int(params["d_ff_ratio"]) * d)
    elif all(k in params for k in dims):
        arch = Arch(*(int(params[k]) for k in dims))
    elif all(k in user_attrs for k in dims):
        arch = Arch(*(int(user_attrs[k]) for k in dims))
    elif "arch" in params:
        arch = Arch.from_label(str(params["arch"]))
    else:
        raise RetrainError(f"trial params {sorted(params)} name no architecture")
    # warm-up: a fraction of the run's steps (structured space, search/space.py) or a step count (older studies)
    keys = [k for k in TRAIN_KEYS if k != "warmup_steps"] + [
        "warmup_frac" if "warmup_frac" in params else "warmup_steps"
    ]
    missing = [k for k in keys if k not in params]
    if missing:
        raise RetrainError(f"trial params lack training parameter(s) {', '.join(missing)}")
    hp = {k: params[k] for k in keys}
    if "normalization" in params:
        hp["normalization"] = str(params["normalization"])
    if "warmup_steps" in hp:
        hp["warmup_steps"] = int(hp["warmup_steps"])
    return arch, {**hp, "batch_size": int(hp["batch_size"])}


@dataclass(frozen=True)
class TrialRecipe:
    """One trial and the protocol of its study (see the module docstring)."""

    study_name: str
    trial_number: int
    arch: Arch
    train: dict[str, Any]
    seed: int
    max_epochs: int
    patience: int
    objective: str
    value: float | None
    parametrization: str = "standard"
    context: int = 80
    patch_len: int = 16
    stride: int = 8
    n_features: int = 25
    start: str | None = None
    end: str | None = None
    val_start: str | None = None
    test_start: str | None = None
    budget: str | None = None
    horizon: str | None = None
    assumed: tuple[str, ...] = field(default=())  # protocol fields the study did not record
    num_threads: int | None = None  # CPU threads the trial trained with (None: not recorded)

    @property
    def param_count(self) -> int:
        return count_parameters(self.arch, self.n_features, self.context, self.patch_len, self.stride)

    def with_train(self, train: Mapping[str, Any]) -> TrialRecipe:
        return replace(self, train=dict(train))

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "trial_number": self.trial_number,
            "arch": self.arch.label,
            **self.arch.to_dict(),
            "param_count": self.param_count,
            "train": dict(self.train),
            "seed": self.seed,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "objective": self.objective,
            "recorded_value": self.value,
            "parametrization": self.parametrization,
            "context": self.context,
            "patch_len": self.patch_len,
            "stride": self.stride,
            "n_features": self.n_features,
            "start": self.start,
            "end": self.end,
            "val_start": self.val_start,
            "test_start": self.test_start,
            "assumed": list(self.assumed),
            "num_threads": self.num_threads,
        }


def best_trial_recipe(study: optuna.Study, defaults: Mapping[str, Any] | None = None) -> TrialRecipe:
    """The recipe of the study's best COMPLETE trial; protocol fields the study lacks come from `defaults`.

    `defaults` is a `study:`-like mapping (seed, max_epochs, patience, start, end, val_start,
    test_start); the fields taken from it are listed in `recipe.assumed`.
    """
    from optuna.trial import TrialState

    complete = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
    ]
    complete = [t for t in complete if math.isfinite(t.value)]  # type: ignore[arg-type]
    if not complete:
        raise RetrainError(f"study {study.study_name!r} has no COMPLETE trial with a finite objective")
    best = study.best_trial
    arch, hp = configs_from_trial(best.params, best.user_attrs)
    ua = study.user_attrs
    fallback = dict(project_settings.settings()["study"])
    fallback.update(defaults or {})
    assumed: list[str] = []

    def pick(key: str, attr: Any = None) -> Any:
        if attr not in (None, ""):
            return attr
        if ua.get(key) not in (None, ""):
            return ua[key]
        assumed.append(key)
        value = fallback.get(key)
        return None if value in (None, "") else value

    return TrialRecipe(
        study_name=study.study_name,
        trial_number=best.number,
        arch=arch,
        train=hp,
        seed=int(pick("seed")),
        max_epochs=int(pick("max_epochs", best.user_attrs.get("epochs_config"))),
        patience=int(pick("patience")),
        objective=str(ua.get("objective") or "val_auc"),
        value=float(best.value) if best.value is not None else None,
        parametrization=str(ua.get("parametrization") or "standard"),
        context=int(ua.get("context") or 80),
        patch_len=int(ua.get("patch_len") or 16),
        stride=int(ua.get("stride") or 8),
        n_features=int(ua.get("n_features") or 25),
        start=pick("start", ua.get("data_start")),
        end=pick("end", ua.get("data_end")),
        val_start=pick("val_start"),
        test_start=pick("test_start"),
        budget=ua.get("budget"),
        horizon=ua.get("horizon"),
        assumed=tuple(assumed),
        num_threads=_threads(best.user_attrs.get("num_threads")) or _threads(ua.get("cpu_threads")),
    )


def _threads(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass
class SeedRun:
    """One retrain: its seed, validation metrics at the restored best epoch, logits, weights."""

    seed: int
    status: str
    reason: str | None
    val_metrics: dict[str, Any]
    best_epoch: int | None
    epochs_trained: int
    val_logits: np.ndarray
    test_logits: np.ndarray
    model: torch.nn.Module | None
    param_count: int
    duration_sec: float
    input_scale: tuple[np.ndarray, np.ndarray] | None = None  # "zscore": train-split (mean, std)

    @property
    def usable(self) -> bool:
        return self.best_epoch is not None and self.val_logits.size > 0


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, x: np.ndarray, idx: np.ndarray, context: int, batch: int = 1024
) -> np.ndarray:
    """Logits of the windows ending at rows `idx` of `x` (float32, on the model's device)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.empty(0, dtype=np.float32)
    model.eval()
    device = next(model.parameters()).device
    offsets = np.arange(-context + 1, 1)
    out = []
    for start in range(0, idx.size, batch):
        rows = idx[start : start + batch]
        windows = torch.from_numpy(
            np.ascontiguousarray(x[rows[:, None] + offsets[None, :]], dtype=np.float32)
        )
        out.append(model(windows.to(device)).float().cpu().numpy())
    return np.concatenate(out)


def seeds_for(recipe: TrialRecipe, k: int) -> list[int]:
    """The trial's own seed first, then the next k - 1 integers."""
    if k < 1:
        raise RetrainError(f"number of seeds must be >= 1, got {k}")
    return [recipe.seed + i for i in range(k)]


def retrain(
    data: PreparedData,
    recipe: TrialRecipe,
    seeds: Sequence[int],
    device: str | None = None,
    num_threads: int | None = None,
    log: Any = None,
) -> list[SeedRun]:
    """Train `recipe` once per seed on data's train split, early stopping on validation, best epoch restored.

    Test logits are computed for each run (the caller decides whether the test split is read).
    """
    if data.n_features != recipe.n_features or data.context != recipe.context:
        raise RetrainError(
            f"data has {data.n_features} features and context {data.context}; trial {recipe.trial_number} of "
            f"{recipe.study_name} was trained with {recipe.n_features} and {recipe.context}"
        )
    runs = []
    for seed in seeds:
        cfg = TrainConfig(
            lr=float(recipe.train["lr"]),
            weight_decay=float(recipe.train["weight_decay"]),
            warmup_steps=int(recipe.train.get("warmup_steps", 0)),
            warmup_frac=recipe.train.get("warmup_frac"),
            normalization=recipe.train.get("normalization", "revin"),
            dropout=float(recipe.train["dropout"]),
            batch_size=int(recipe.train["batch_size"]),
            max_epochs=recipe.max_epochs,
            patience=recipe.patience,
            objective=recipe.objective,  # type: ignore[arg-type]
            seed=int(seed),
            device=device,
            num_threads=num_threads,
            parametrization=recipe.parametrization,
        )
        result = train_prepared(data, recipe.arch, cfg, patch_len=recipe.patch_len, stride=recipe.stride)
        model = result.model if result.best_epoch is not None else None
        test_logits = (
            predict_logits(model, result.scale_inputs(data.x), data.split.test, data.context)
            if model is not None
            else np.empty(0)
        )
        run = SeedRun(
            seed=int(seed),
            status=result.status,
            reason=result.diverged_reason,
            val_metrics=dict(result.metrics),
            best_epoch=result.best_epoch,
            epochs_trained=result.epochs_trained,
            val_logits=np.asarray(result.val_logits, dtype=np.float64),
            test_logits=np.asarray(test_logits, dtype=np.float64),
            model=model,
            param_count=result.param_count,
            duration_sec=result.duration_sec,
            input_scale=result.input_scale,
        )
        if log is not None:
            log(
                f"{recipe.study_name} trial {recipe.trial_number} seed {seed}: {run.status}, best epoch "
                f"{run.best_epoch}/{run.epochs_trained}, val_auc {run.val_metrics.get('val_auc')}"
            )
        runs.append(run)
    return runs
