"""Assets of group `studies`: hpo_study, one resumable Optuna study per budget x horizon partition."""

# No `from __future__ import annotations`: Dagster reads the Config annotations at runtime.

import base64
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from hpo_assets import settings as project_settings
from hpo_assets.defs.partitions import BUDGETS, HORIZONS, budget_horizon_partitions
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.search.history import history_png, top_trials_markdown
from hpo_assets.search.liveness import is_abandoned
from hpo_assets.search.objective import TorchTrainer
from hpo_assets.search.runner import StudyConfigError, StudyOptions, StudyRun, run_study, study_counts
from hpo_assets.search.space import ArchChoice, SearchSpace, arch_choices, load_training_choices
from hpo_assets.search.steering import tested_configs
from hpo_assets.search.storage import dashboard_command, open_storage, redact

_STUDY = project_settings.settings()["study"]
_MODEL = project_settings.settings()["model"]
FEATURES_FILE = ("features", "features.parquet")
GPU_OP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


class StudyInputError(ValueError):
    """A partition key or study setting the user can fix; the message names it."""


class HpoStudyConfig(dg.Config):
    """Study settings; defaults come from the `study:` section of defaults.yaml."""

    profile: str = Field(
        default="",
        description='Configuration profile laid over defaults.yaml ("demo", "full"; "" = defaults). '
        "A profile sets the fields left at their defaults.",
    )
    n_trials: int = Field(
        default=int(_STUDY["n_trials"]), description="Target number of trials in the study."
    )
    max_epochs: int = Field(default=int(_STUDY["max_epochs"]), description="Epochs per trial at most.")
    patience: int = Field(default=int(_STUDY["patience"]), description="Early-stopping patience (epochs).")
    objective: str = Field(
        default=str(_STUDY["objective"]), description="val_auc (maximise) or val_loss (minimise)."
    )
    seed: int = Field(
        default=int(_STUDY["seed"]), description="Seed of the TPE sampler, steering and model init."
    )
    n_forced: int = Field(default=int(_STUDY["n_forced"]), description="Forced extremes tried first (0-6).")
    pruner: str = Field(default=str(_STUDY["pruner"]), description="median, hyperband or none.")
    pruner_startup_trials: int = Field(
        default=int(_STUDY["pruner_startup_trials"]),
        description="Trials finished before the pruner may prune.",
    )
    pruner_warmup_epochs: int = Field(
        default=int(_STUDY["pruner_warmup_epochs"]),
        description="Epochs every trial trains before it may be pruned.",
    )
    tpe_startup_trials: int = Field(
        default=int(_STUDY["tpe_startup_trials"]),
        description="Trials (forced extremes included) before TPE's model-based proposals start.",
    )
    storage: str = Field(
        default="",
        description="Optuna storage URL (sqlite:///..., postgresql://...) or a folder for journal files; "
        '"" = the `paths` resource (default `.hpo/`).',
    )
    device: str = Field(default=str(_STUDY["device"]), description='"" = CUDA when present, else CPU.')
    cpu_threads: int = Field(
        default=int(_STUDY["cpu_threads"]),
        description="CPU threads per trial; 0 = torch's default. 1 avoids thread thrashing when several "
        "processes share a small CPU machine.",
    )
    cpu_bf16: bool = Field(
        default=bool(_STUDY["cpu_bf16"]),
        description="bf16 autocast on a CPU with bf16 matmuls (AMX / AVX512-BF16): ~1.6x faster on 20M models; "
        "CUDA always trains in bf16.",
    )
    parametrization: str = Field(
        default=str(_STUDY["parametrization"]),
        description="standard, mup or completep: under mup/completep one lr means the same at every "
        "budget (muP relative to one base shape; completep also scales residual branches with depth).",
    )
    start: str = Field(default=str(_STUDY["start"]), description="First day of the data window (YYYY-MM-DD).")
    end: str = Field(default=str(_STUDY["end"]), description="Last day of the data window (YYYY-MM-DD).")
    val_start: str = Field(
        default=str(_STUDY["val_start"]), description="Validation cut date; '' = split: section."
    )
    test_start: str = Field(
        default=str(_STUDY["test_start"]), description="Test cut date; '' = split: section."
    )
    space_file: str = Field(
        default="", description="YAML of training-parameter choices; '' = search/space.yaml."
    )
    architectures: list[str] = Field(
        default=[],
        description="Search only these architectures of the budget's space (labels like 'd512-L1-H8-F1024'); "
        "[] = all. For focused or quick runs; every label must belong to the budget.",
    )


def resolve_config(config: HpoStudyConfig) -> dict[str, Any]:
    """The effective settings: the profile's study values for every field left at its default."""
    values = config.model_dump()
    if not config.profile:
        return values
    try:
        profile_study = project_settings.settings(config.profile)["study"]
    except ValueError as exc:
        raise StudyInputError(f"profile: {exc}") from None
    for name, field in HpoStudyConfig.model_fields.items():
        if name in profile_study and values[name] == field.default:
            values[name] = type(field.default)(profile_study[name])
    return values


@dataclass(frozen=True)
class StudyPartition:
    budget: str
    horizon: str
    horizon_days: int

    @property
    def study_name(self) -> str:
        return f"hpo-{self.budget}-{self.horizon}"


def parse_partition(key: Any) -> StudyPartition:
    """`2M|h1` (or a MultiPartitionKey) -> budget "2M", horizon "h1", 1 day; anything else is one clear error."""
    dims = getattr(key, "keys_by_dimension", None)
    if dims is None:
        parts = str(key).split("|")
        if len(parts) != 2:
            raise StudyInputError(f"partition key {str(key)!r} must read budget|horizon, e.g. '2M|h1'")
        dims = {"budget": parts[0], "horizon": parts[1]}
    budget, horizon = dims.get("budget", ""), dims.get("horizon", "")
    if budget not in BUDGETS:
        raise StudyInputError(f"partition key {str(key)!r}: budget {budget!r} is not one of {BUDGETS}")
    if horizon not in HORIZONS:
        raise StudyInputError(f"partition key {str(key)!r}: horizon {horizon!r} is not one of {HORIZONS}")
    return StudyPartition(budget, horizon, int(horizon[1:]))


def _options(values: dict[str, Any]) -> StudyOptions:
    return StudyOptions(
        n_trials=values["n_trials"],
        objective=values["objective"],
        seed=values["seed"],
        n_forced=values["n_forced"],
        pruner=values["pruner"],
        pruner_startup_trials=values["pruner_startup_trials"],
        pruner_warmup_epochs=values["pruner_warmup_epochs"],
        tpe_startup_trials=values["tpe_startup_trials"],
        epochs_config=values["max_epochs"],
    )


def _restrict(archs: list[ArchChoice], labels: list[str], budget: str) -> list[ArchChoice]:
    if not labels:
        return archs
    known = {a.label: a for a in archs}
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise StudyInputError(
            f"architectures: {unknown} are not in the {budget} budget's space ({len(archs)} architectures, "
            f"e.g. {sorted(known)[:3]})"
        )
    return [known[label] for label in dict.fromkeys(labels)]


def _check_epochs(values: dict[str, Any]) -> None:
    for name in ("max_epochs", "patience"):
        if values[name] < 1:
            raise StudyInputError(f"{name} must be a whole number >= 1, got {values[name]!r}")
    if values["cpu_threads"] < 0:
        raise StudyInputError(
            f"cpu_threads must be 0 (torch's default) or more, got {values['cpu_threads']!r}"
        )


def _metadata(run: StudyRun, study: Any, spec: str, png_path: Any, png: bytes) -> dict[str, Any]:
    best = run.best
    image = base64.b64encode(png).decode("ascii")
    return {
        "study_name": run.study_name,
        "storage": redact(spec),
        "trials_target": run.n_trials,
        "trials_counted": run.counted,
        "trials_complete": run.complete,
        "trials_pruned": run.pruned,
        "trials_failed": run.failed,
        "trials_diverged": run.diverged,
        "trials_killed_and_retried": run.killed,
        "skipped_as_duplicate": run.skipped_duplicates,
        "wasted_trials": run.diverged,  # repeats are steered away before training, so only divergence wastes
        "new_trials_this_run": len(run.new_trials),
        "space_size": run.space_size,
        "space_exhausted": run.exhausted,
        "direction": run.direction,
        "best_value": dg.MetadataValue.null() if best is None else float(best.value),  # type: ignore[arg-type]
        "best_trial": dg.MetadataValue.null() if best is None else best.number,
        "best_params": dg.MetadataValue.json(best.params if best else {}),
        "best_param_count": dg.MetadataValue.null() if best is None else int(best.user_attrs["param_count"]),
        "top_trials": dg.MetadataValue.md(top_trials_markdown(study, 5)),
        "history": dg.MetadataValue.md(f"![history](data:image/png;base64,{image})"),
        "history_path": dg.MetadataValue.path(str(png_path)),
        "dashboard_command": dg.MetadataValue.text(dashboard_command(spec, run.study_name)),
    }


@dg.asset(
    group_name="studies",
    partitions_def=budget_horizon_partitions,
    deps=["features"],
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    kinds={"optuna", "pytorch"},
    description="One resumable Optuna study `hpo-{budget}-{horizon}` per partition: forced extremes, then "
    "seeded TPE, no configuration trained twice, every epoch reported to the pruner.",
    check_specs=[
        dg.AssetCheckSpec(
            "no_repeated_configuration",
            asset="hpo_study",
            description="No configuration was trained twice in the study.",
        ),
        dg.AssetCheckSpec(
            "no_trial_left_running",
            asset="hpo_study",
            description="No trial is left RUNNING without a live worker after the run.",
        ),
        dg.AssetCheckSpec(
            "has_complete_trial",
            asset="hpo_study",
            description="The study holds at least one COMPLETE trial with a finite objective.",
        ),
    ],
)
def hpo_study(
    context: dg.AssetExecutionContext, config: HpoStudyConfig, paths: HpoPaths, gpu: GpuLeases
) -> dg.MaterializeResult:
    import torch

    from hpo_assets.data.dataset import load_prepared
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.model.parametrization import check_parametrization
    from hpo_assets.training.device import bf16_supported, pick_device

    try:
        part = parse_partition(context.partition_key)
        values = resolve_config(config)
        _check_epochs(values)
        check_parametrization(values["parametrization"])
        options = _options(values)
        spec = values["storage"] or paths.storage_spec()
        open_storage(spec, part.study_name)  # a bad URL or folder fails here, before the data work
        split_kwargs = {k: values[k] for k in ("val_start", "test_start") if values[k]}
        data = load_prepared(
            paths.outputs(*FEATURES_FILE),
            part.horizon_days,
            start=values["start"] or None,
            end=values["end"] or None,
            **split_kwargs,
        )
        entries = budget_space(
            part.budget,
            n_features=data.n_features,
            context=data.context,
            patch_len=int(_MODEL["patch_len"]),
            stride=int(_MODEL["stride"]),
        )
        archs = _restrict(arch_choices(entries), values["architectures"], part.budget)
        space = SearchSpace.build(archs, load_training_choices(values["space_file"] or None))
        # Leased before anything touches CUDA, so CUDA_VISIBLE_DEVICES still applies in this process.
        leased = gpu.device_for(
            values["device"],
            holder={"run_id": context.run_id, "partition": str(context.partition_key)},
            log=context.log.info,
        )
        device = str(pick_device(leased or None))
        if values["cpu_bf16"] and device == "cpu" and not bf16_supported(torch.device(device)):
            raise StudyInputError(
                "cpu_bf16: this CPU has no bf16 matmuls (AMX or AVX512-BF16); set it to false"
            )
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"hpo_study: {exc}", allow_retries=False) from None

    context.log.info(
        f"{part.study_name}: {space.size:,} configurations ({len(space.archs)} architectures), "
        f"{len(data.split.train)} train / {len(data.split.val)} val samples, device {device}, "
        f"storage {redact(spec)}"
    )
    trainer = TorchTrainer(
        data,
        values["max_epochs"],
        values["patience"],
        values["objective"],
        values["seed"],
        device,
        int(_MODEL["patch_len"]),
        int(_MODEL["stride"]),
        values["cpu_threads"] or None,
        values["cpu_bf16"],
        parametrization=values["parametrization"],
    )
    study_attrs = {
        "budget": part.budget, "horizon": part.horizon, "horizon_days": part.horizon_days,
        "tier": f"a{data.n_features - 5}", "n_features": data.n_features, "context": data.context,
        "patch_len": int(_MODEL["patch_len"]), "stride": int(_MODEL["stride"]),
        "data_start": str(data.dates[0]), "data_end": str(data.dates[-1]),
        "n_train": len(data.split.train), "n_val": len(data.split.val),
        "parametrization": values["parametrization"],
    }  # fmt: skip
    try:
        run = run_study(
            space,
            trainer,
            study_name=part.study_name,
            storage=spec,
            options=options,
            study_attrs=study_attrs,
            device=device,
            log=context.log.info,
        )
    except StudyConfigError as exc:  # e.g. another objective than the stored study's
        raise dg.Failure(description=f"hpo_study: {exc}", allow_retries=False) from None

    import optuna

    study = optuna.load_study(study_name=part.study_name, storage=open_storage(spec, part.study_name))
    png = history_png(study, options.objective)
    png_path = paths.outputs("studies", f"{part.study_name}_history.png")
    png_path.write_bytes(png)
    summary_path = paths.outputs("studies", f"{part.study_name}.json")
    summary = {
        "study_name": part.study_name,
        "storage": redact(spec),
        "partition": f"{part.budget}|{part.horizon}",
        **study_counts(study),
        "best_trial": run.best.number if run.best else None,
        "best_value": run.best.value if run.best else None,
        "exhausted": run.exhausted,
    }
    summary_path.write_text(json.dumps(summary, indent=2))
    if run.exhausted:
        context.log.warning(f"{part.study_name}: the search space is exhausted; the study stopped early")
    return dg.MaterializeResult(
        metadata={
            **_metadata(run, study, spec, png_path, png),
            "summary_path": dg.MetadataValue.path(str(summary_path)),
        },
        check_results=_checks(study, space),
    )


def _checks(study: Any, space: SearchSpace) -> list[dg.AssetCheckResult]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    tested = [
        t
        for t in trials
        if space.key(t.params) is not None
        and (t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("diverged"))
    ]
    unique = tested_configs(space, tested)
    repeats = len(tested) - len(unique)
    running = [t.number for t in trials if t.state == TrialState.RUNNING and is_abandoned(t)]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return [
        dg.AssetCheckResult(
            check_name="no_repeated_configuration",
            passed=repeats == 0,
            metadata={"tested_trials": len(tested), "repeats": repeats},
        ),
        dg.AssetCheckResult(
            check_name="no_trial_left_running",
            passed=not running,
            metadata={"abandoned_running_trials": str(running)},
        ),
        dg.AssetCheckResult(
            check_name="has_complete_trial",
            passed=bool(complete),
            metadata={"complete_trials": len(complete)},
        ),
    ]


ASSETS: list = [hpo_study]
CHECKS: list = []
