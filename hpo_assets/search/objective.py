"""One trial, honestly recorded: suggest, train, report every epoch, tell the true outcome.

A trial's state is what happened: COMPLETE with the objective at the best epoch; PRUNED at the epoch
the pruner stopped it; PRUNED too for a diverged run, at its divergence epoch with its last finite
value (so TPE ranks its region below every completed trial: Optuna's TPE learns from COMPLETE and
PRUNED trials only), with `diverged`/`diverged_reason` recorded; FAIL for an exception (with its
message). Nothing is scored with a made-up value.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from hpo_assets.objectives import RESULT_METRICS
from hpo_assets.search.liveness import HEARTBEAT_S, Heartbeat, worker_identity
from hpo_assets.search.space import TRAIN_PARAMS, ArchChoice, SearchSpace, configs_from_params
from hpo_assets.search.steering import Steer, tested_configs
from hpo_assets.settings import model_shape

EpochHook = Callable[[int, dict[str, Any]], object]  # (trial number, epoch record); its result is ignored
Log = Callable[[str], None]
logger = logging.getLogger(__name__)  # the default `log`; Dagster passes its run log instead


class Trainer(Protocol):
    """Trains one configuration; calls `on_epoch(record)` after each epoch (exceptions propagate).

    Returns an object with the fields of `hpo_assets.training.trainer.TrainResult`.
    """

    def __call__(
        self, arch: ArchChoice, hp: Mapping[str, Any], on_epoch: Callable[[dict[str, Any]], None]
    ) -> Any: ...


@dataclass
class TrialContext:
    """What a trial needs besides Optuna: the space, the trainer and how to report."""

    space: SearchSpace
    train: Trainer
    objective: str
    epochs_config: int | None
    device: str | None = None
    log: Log = logger.info
    epoch_hook: EpochHook | None = None
    heartbeat_s: float = HEARTBEAT_S


def plain(value: Any) -> Any:
    """JSON-ready copy (numpy/torch scalars -> Python numbers) so every storage can hold it."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy arrays / scalars, torch tensors
        return plain(value.tolist())
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _suggest(trial: Trial, space: SearchSpace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = trial.suggest_categorical(name, list(dist.choices))  # type: ignore[arg-type]
        elif isinstance(dist, IntDistribution):
            out[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        else:
            assert isinstance(dist, FloatDistribution)
            out[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return out


def _fail_before_training(
    study: optuna.Study, trial: Trial, reason: str, ctx: TrialContext, label: str, **attrs: Any
) -> FrozenTrial:
    for key, value in {**attrs, "fail_reason": reason}.items():
        trial.set_user_attr(key, value)
    ctx.log(f"{label} #{trial.number}: not trained: {reason}")
    return study.tell(trial, state=TrialState.FAIL)


def run_trial(
    study: optuna.Study,
    trial: Trial,
    ctx: TrialContext,
    steer: Callable[[int], Steer | None],
    label: str,
) -> FrozenTrial:
    """Run one asked trial to its end and tell Optuna the outcome; returns the finished trial."""
    trial.set_user_attr("worker", worker_identity())  # first: a resumed run can tell if this trial is alive
    params = _suggest(trial, ctx.space)
    steered = steer(trial.number)
    if steered is not None:
        trial.set_user_attr("duplicate_of", steered.duplicate_of)
        trial.set_user_attr("steered_from", plain(steered.steered_from))
    fixed = trial.user_attrs  # enqueue-time attrs: forced_extreme / extreme_type / retry_of / replicate_of
    if not ctx.space.contains(params):  # only an enqueued configuration can be outside the space
        return _fail_before_training(
            study,
            trial,
            "enqueued configuration is not in this study's search space",
            ctx,
            label,
            skipped_duplicate=True,
        )
    if steered is None and fixed.get("replicate_of") is None:
        # An enqueued configuration (forced extreme, retry) bypasses the sampler; never train a repeat.
        tested = tested_configs(ctx.space, study.get_trials(deepcopy=False), exclude=trial.number)
        first = tested.get(ctx.space.effective_key(params))  # type: ignore[arg-type]
        if first is not None:
            return _fail_before_training(
                study,
                trial,
                f"duplicate of #{first}: enqueued configuration already tested",
                ctx,
                label,
                duplicate_of=first,
                skipped_duplicate=True,
            )

    arch = ctx.space.arch_of(params)
    assert arch is not None
    hp = {k: params[k] for k in TRAIN_PARAMS}
    if fixed.get("train_seed") is not None:
        hp["seed"] = int(fixed["train_seed"])
    effective = ctx.space.effective_key(params)
    assert effective is not None
    for key, value in {
        **{k: v for k, v in arch.dims().items()},
        "param_count": arch.param_count,
        **hp,
        "warmup_steps": effective[7] if isinstance(effective[7], int) else None,
        "epochs_config": ctx.epochs_config,
        "device": ctx.device,
        "forced_extreme": bool(fixed.get("forced_extreme", False)),
        "extreme_type": fixed.get("extreme_type"),
        "diverged": False,
        "learning_curve": [],
    }.items():
        trial.set_user_attr(key, value)
    ctx.log(
        f"{label} #{trial.number}: {arch.label} ({arch.param_count:,} params) "
        + " ".join(f"{k}={v}" for k, v in hp.items())
        + (f" [forced {fixed.get('extreme_type')}]" if fixed.get("forced_extreme") else "")
        + (f" [steered: TPE's best candidate repeated #{steered.duplicate_of}]" if steered else "")
        + (f" [replicate of #{fixed.get('replicate_of')}]" if fixed.get("replicate_of") is not None else "")
    )

    curve: list[dict[str, Any]] = []
    started = time.perf_counter()

    def on_epoch(record: Mapping[str, Any]) -> None:
        rec = plain(dict(record))
        curve.append(rec)
        trial.set_user_attr("learning_curve", curve)
        epoch = int(rec.get("epoch", len(curve)))
        value = rec.get(ctx.objective)
        if isinstance(value, float | int) and math.isfinite(value):
            trial.report(float(value), epoch)
        ctx.log(
            f"{label} #{trial.number} epoch {epoch}/{ctx.epochs_config or '?'}: "
            + " ".join(f"{k}={_fmt(rec.get(k))}" for k in ("train_loss", "val_loss", "val_auc") if k in rec)
            + f" elapsed={time.perf_counter() - started:.1f}s"
        )
        if ctx.epoch_hook is not None:
            ctx.epoch_hook(trial.number, rec)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    try:
        with Heartbeat(trial.storage, trial._trial_id, ctx.heartbeat_s):
            result = ctx.train(arch, hp, on_epoch)
    except optuna.TrialPruned:
        epoch = int(curve[-1].get("epoch", len(curve))) if curve else 0
        trial.set_user_attr("pruned_epoch", epoch)
        trial.set_user_attr("early_stopped", False)
        trial.set_user_attr("epochs_trained", len(curve))
        trial.set_user_attr("duration_sec", time.perf_counter() - started)
        ctx.log(f"{label} #{trial.number}: PRUNED at epoch {epoch}")
        return study.tell(trial, state=TrialState.PRUNED)
    except Exception as exc:  # any trainer error is this trial's FAIL, with its message; the study goes on
        reason = f"{type(exc).__name__}: {exc}".strip()
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("duration_sec", time.perf_counter() - started)
        ctx.log(f"{label} #{trial.number}: FAIL {reason}")
        return study.tell(trial, state=TrialState.FAIL)
    return _record_result(study, trial, ctx, result, label)


def _record_result(
    study: optuna.Study, trial: Trial, ctx: TrialContext, result: Any, label: str
) -> FrozenTrial:
    metrics = dict(getattr(result, "metrics", None) or {})
    attrs: dict[str, Any] = {k: metrics.get(k) for k in RESULT_METRICS if k in metrics}
    # num_threads: CPU threads it trained with, so a retrain can repeat the same arithmetic (calibrated_model)
    for key in (
        "best_epoch",
        "best_val_loss",
        "epochs_trained",
        "early_stopped",
        "device",
        "duration_sec",
        "num_threads",
    ):
        if getattr(result, key, None) is not None:
            attrs[key] = getattr(result, key)
    if getattr(result, "best_epoch", None) is not None:
        attrs["metrics_epoch"] = result.best_epoch  # the epoch whose checkpoint the metrics measure
    if getattr(result, "curve", None) is not None:
        attrs["learning_curve"] = result.curve
    for key, value in attrs.items():
        trial.set_user_attr(key, plain(value))

    if getattr(result, "status", "ok") == "diverged":
        epoch, why = result.diverge_epoch, result.diverged_reason
        trial.set_user_attr("diverged", True)
        trial.set_user_attr("diverged_reason", plain(why))
        trial.set_user_attr("diverge_epoch", plain(epoch))
        trial.set_user_attr("pruned_epoch", plain(epoch))
        trial.set_user_attr("early_stopped", False)
        # PRUNED with its last finite reported value: TPE ranks pruned trials below every COMPLETE one,
        # so the region that diverged becomes unlikely; the table still says diverged, with its reason.
        ctx.log(f"{label} #{trial.number}: DIVERGED at epoch {epoch}: {why}; told to Optuna as PRUNED")
        return study.tell(trial, state=TrialState.PRUNED)

    # Logits and labels of every COMPLETE trial, so the best one can be calibrated without retraining.
    if getattr(result, "val_logits", None) is not None:
        trial.set_user_attr("val_logits", plain(result.val_logits))
        trial.set_user_attr("val_labels", [int(v) for v in plain(result.val_labels)])
    value = metrics.get(ctx.objective)
    if not isinstance(value, float | int) or not math.isfinite(value):
        reason = f"objective {ctx.objective} is {value!r} at the best epoch (not a finite number)"
        trial.set_user_attr("fail_reason", reason)
        ctx.log(f"{label} #{trial.number}: FAIL {reason}")
        return study.tell(trial, state=TrialState.FAIL)
    ctx.log(
        f"{label} #{trial.number}: COMPLETE {ctx.objective}={float(value):.4f} "
        f"(best epoch {getattr(result, 'best_epoch', '?')})"
    )
    return study.tell(trial, float(value))


@dataclass
class TorchTrainer:
    """The real trainer: a PatchTST of the trial's architecture on prepared data (see training/trainer.py)."""

    data: Any  # hpo_assets.data.dataset.PreparedData
    max_epochs: int
    patience: int
    objective: str = "val_auc"
    seed: int = 42
    device: str | None = None
    patch_len: int = field(default_factory=lambda: model_shape().patch_len)  # the `model:` shape
    stride: int = field(default_factory=lambda: model_shape().stride)
    num_threads: int | None = None  # CPU threads per trial; None = torch's setting
    cpu_bf16: bool = False  # bf16 autocast on a CPU with bf16 matmuls (AMX / AVX512-BF16)
    parametrization: str = "standard"  # standard | mup | completep (model/parametrization.py)

    def __call__(
        self, arch: ArchChoice, hp: Mapping[str, Any], on_epoch: Callable[[dict[str, Any]], None]
    ) -> Any:
        from hpo_assets.training.trainer import train_prepared

        model_arch, cfg = configs_from_params(
            {**arch.arch_params(), **hp},
            max_epochs=self.max_epochs,
            patience=self.patience,
            objective=self.objective,
            seed=int(hp.get("seed", self.seed)),
            device=self.device,
            num_threads=self.num_threads,
            cpu_bf16=self.cpu_bf16,
            parametrization=self.parametrization,
        )
        result = train_prepared(
            self.data, model_arch, cfg, on_epoch, patch_len=self.patch_len, stride=self.stride
        )
        result.model = None  # type: ignore[assignment]  # the study keeps metrics, curve and logits; the weights are not needed
        return result
