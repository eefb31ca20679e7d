"""Assets of group `studies`: hpo_study, one resumable Optuna study per budget x horizon partition."""

# No `from __future__ import annotations`: Dagster reads the Config annotations at runtime.

import base64
import json
import math
import re
import shlex
import time
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from hpo_assets import outputs
from hpo_assets.defs.config import config_from
from hpo_assets.defs.dead_runs import free_dead_runs
from hpo_assets.defs.instance import GPU_POOL
from hpo_assets.defs.metadata import table
from hpo_assets.defs.partitions import budget_horizon_partitions
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.locations import mask_password
from hpo_assets.planning.plan import StudyEstimate, estimate_study
from hpo_assets.search.build import build_study, study_data
from hpo_assets.search.history import history_png, top_trials
from hpo_assets.search.progress import Snapshot, StudyProgress
from hpo_assets.search.runner import StudyRun
from hpo_assets.search.storage import dashboard_command, open_storage
from hpo_assets.search.study_settings import StudyConfigError, StudySettings, study_settings

# On Kubernetes (k8s_job_executor) a training step's pod asks for one GPU, lands on a GPU node (the label
# NVIDIA's GPU feature discovery sets) and tolerates the taint GPU node pools usually carry.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
}


if TYPE_CHECKING:
    HpoStudyConfig = dg.Config
else:  # derived from StudySettings: every study setting, plus the profile laid over defaults.yaml
    HpoStudyConfig = config_from(
        StudySettings,
        "HpoStudyConfig",
        __name__,
        profile=(
            str,
            Field(
                default="",
                description='Configuration profile laid over defaults.yaml ("demo", "full"; "" = defaults). '
                "A profile sets the fields left at their defaults.",
            ),
        ),
    )


def resolve_config(config: HpoStudyConfig) -> StudySettings:
    """The validated study settings: the profile's values for every field left at its default."""
    values = config.model_dump()
    return study_settings(values.pop("profile"), **values)


def _metadata(run: StudyRun, study: Any, spec: str, png_path: Any, png: bytes) -> dict[str, Any]:
    best = run.best
    image = base64.b64encode(png).decode("ascii")
    return {
        "study_name": run.study_name,
        "storage": mask_password(spec),
        "trials_target": run.n_trials,
        "trials_counted": run.counted,
        "trials_complete": run.complete,
        "trials_pruned": run.pruned,
        "trials_failed": run.failed,
        "trials_diverged": run.diverged,
        "trials_killed": run.killed,
        "trials_killed_and_retried": run.retried,  # only retries that ran (a WAITING one is not)
        "skipped_as_duplicate": run.skipped_duplicates,
        "steered_from_repeat": run.steered,
        "replicates": run.replicates,
        "replicate_noise_sd": dg.MetadataValue.null()
        if not run.noise or run.noise.get("objective_sd") is None
        else float(run.noise["objective_sd"]),
        "wasted_trials": run.diverged,  # repeats are steered away before training, so only divergence wastes
        "new_trials_this_run": len(run.new_trials),
        "space_size": run.space_size,
        "space_exhausted": run.exhausted,
        "direction": run.direction,
        "best_value": dg.MetadataValue.null() if best is None or best.value is None else float(best.value),
        "best_trial": dg.MetadataValue.null() if best is None else best.number,
        "best_params": dg.MetadataValue.json(best.params if best else {}),
        "best_param_count": dg.MetadataValue.null() if best is None else int(best.user_attrs["param_count"]),
        "top_trials": table(top_trials(study, 5)),
        "history": dg.MetadataValue.md(f"![history](data:image/png;base64,{image})"),
        "history_path": dg.MetadataValue.path(str(png_path)),
        "dashboard_command": dg.MetadataValue.text(dashboard_command(spec, run.study_name)),
        # every study of the storage in one optuna-dashboard (its compare-studies screen)
        "dashboard_all_studies": dg.MetadataValue.text(
            f"hpo-assets dashboard --storage {shlex.quote(mask_password(spec))}"
        ),
        "transferred_from": dg.MetadataValue.text(
            ", ".join(study.user_attrs.get("transferred_from") or []) or "none (searched from scratch)"
        ),
    }


@dg.asset(
    group_name="studies",
    partitions_def=budget_horizon_partitions,
    deps=["features"],
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    kinds={"optuna", "pytorch"},
    description="One resumable Optuna study `hpo-{budget}-{horizon}` per partition: forced extremes, then "
    "seeded TPE, no configuration trained twice, every epoch reported to the pruner.\n\n"
    "What a partition costs: `hpo-assets plan PARTITIONS --profile P` predicts it for your machine and "
    "storage, and each materialization records its predicted and measured hours.",
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
    # A run killed earlier (kill -9) still counts against the gpu pool: fail it and free its place here,
    # since an in-process run is never health-checked by Dagster (see dead_runs.py).
    for freed in free_dead_runs(context.instance, [GPU_POOL], except_run=context.run.run_id):
        context.log.warning(f"freed: {freed.describe()}")
    holder = {"run_id": context.run.run_id, "partition": str(context.partition_key)}
    try:
        cfg = resolve_config(config)
        runner = build_study(
            cfg,
            context.partition_key,
            lambda part: study_data(paths.outputs(*outputs.FEATURES_FILE), part, cfg),
            storage=cfg.storage or paths.storage_spec(),
            # leased after every check, before anything touches CUDA (CUDA_VISIBLE_DEVICES still applies)
            device_for=lambda requested: gpu.device_for(requested, holder=holder, log=context.log.info),
            log=context.log.warning,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"hpo_study: {mask_password(exc)}", allow_retries=False) from None

    part, spec = runner.part, runner.storage
    context.log.info(runner.describe())
    estimate = estimate_study(runner)
    context.log.info(
        f"{part.study_name}: predicted {estimate.hours:.4g} compute-hours for "
        f"{estimate.trials_to_run} trials ({estimate.basis})"
    )
    started = time.monotonic()
    progress = _progress(context, runner, estimate)
    try:
        run = runner.run(log=_study_log(context), epoch_hook=progress.epoch, trial_hook=progress.trial_ended)
    except StudyConfigError as exc:  # e.g. another objective than the stored study's
        raise dg.Failure(description=f"hpo_study: {mask_password(exc)}", allow_retries=False) from None

    import optuna

    study = optuna.load_study(study_name=part.study_name, storage=open_storage(spec, part.study_name))
    png = history_png(study, cfg.objective)
    png_path = outputs.write_bytes(paths.outputs(*outputs.STUDIES_DIR, f"{part.study_name}_history.png"), png)
    summary_path = paths.outputs(*outputs.STUDIES_DIR, f"{part.study_name}.json")
    outputs.write_text(summary_path, json.dumps(runner.summary(run, study), indent=2))
    if run.exhausted:
        context.log.warning(f"{part.study_name}: the search space is exhausted; the study stopped early")
    return dg.MaterializeResult(
        metadata={
            **_metadata(run, study, spec, png_path, png),
            **_measured(estimate, time.monotonic() - started, study),
            "summary_path": dg.MetadataValue.path(str(summary_path)),
        },
        check_results=[
            dg.AssetCheckResult(check_name=name, passed=passed, metadata=counted)
            for name, (passed, counted) in runner.checks(study).items()
        ],
    )


def _progress(context: dg.AssetExecutionContext, runner: Any, estimate: StudyEstimate) -> StudyProgress:
    """Progress of this run as AssetObservations on hpo_study (per trial, and while a trial trains at most
    once a minute): the asset page shows a running study is alive, how far it is and its ETA."""

    def observe(snap: Snapshot) -> None:
        if snap.event == "trial":
            context.log.info(f"progress: {snap.line()}")
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=context.partition_key,
                metadata=_progress_metadata(snap),
            )
        )

    progress = StudyProgress(
        runner.study_name,
        runner.options.n_trials,
        predicted_s=estimate.hours * 3600.0 if estimate.trials_to_run else None,
        epochs=runner.settings.max_epochs,
        sinks=[observe],
    )
    import optuna

    try:
        existing = optuna.load_study(
            study_name=runner.study_name,
            storage=open_storage(runner.storage, runner.study_name, create=False),
        )
    except (KeyError, ValueError):  # a new study (StorageMissing is a ValueError): nothing done yet
        existing = None
    progress.start(existing)
    return progress


def _progress_metadata(snap: Snapshot) -> dict[str, Any]:
    def number(value: float | int | None) -> Any:
        return dg.MetadataValue.null() if value is None else value

    return {
        "progress": dg.MetadataValue.text(snap.line()),
        "event": snap.event,
        "trials_counted": snap.trials_done,
        "trials_target": snap.trials_target,
        "trials_this_run": snap.trials_this_run,
        "best_value": number(snap.best_value),
        "best_trial": number(snap.best_trial),
        "trial": number(snap.trial),
        "trial_state": dg.MetadataValue.text(snap.trial_state or ""),
        "epoch": number(snap.epoch),
        "elapsed_hours": dg.MetadataValue.float(_hours(snap.elapsed_s)),
        "predicted_hours": number(None if snap.predicted_s is None else _hours(snap.predicted_s)),
        "eta_hours": number(None if snap.eta_s is None else _hours(snap.eta_s)),
        "eta_basis": dg.MetadataValue.text(snap.eta_basis),
    }


def _hours(seconds: float) -> float:
    return float(f"{seconds / 3600.0:.4g}")  # the UI shows 4 significant digits, as its tables do


_EPOCH_LINE = re.compile(r"#\d+ epoch \d+/")


def _study_log(context: dg.AssetExecutionContext, epoch_info_every_s: float = 30.0) -> Any:
    """Trial starts and outcomes at INFO; an epoch line at INFO when the last one shown is 30 s old (the
    UI's run log, filtered at INFO, shows a long trial is alive), the others at DEBUG (hundreds per study)."""
    last_info = [-math.inf]

    def log(message: str) -> None:
        if not _EPOCH_LINE.search(message):
            context.log.info(message)
        elif time.monotonic() - last_info[0] >= epoch_info_every_s:
            last_info[0] = time.monotonic()
            context.log.info(message)
        else:
            context.log.debug(message)

    return log


def _measured(estimate: StudyEstimate, seconds: float, study: Any) -> dict[str, Any]:
    """This run's predicted and measured hours (about 0 when the study was already at its target) next to
    the study's cumulative training compute, so a re-materialization does not show a finished study as free."""
    measured = seconds / 3600.0
    timed = [float(t.user_attrs["duration_sec"]) for t in study.trials if t.user_attrs.get("duration_sec")]
    return {
        "study_compute_hours": dg.MetadataValue.float(sum(timed) / 3600.0),
        "study_trials_timed": len(timed),
        "predicted_hours": dg.MetadataValue.float(float(estimate.hours)),
        "measured_hours": dg.MetadataValue.float(measured),
        "predicted_over_measured": dg.MetadataValue.float(estimate.hours / measured)
        if measured > 0 and estimate.trials_to_run
        else dg.MetadataValue.null(),
        "prediction_basis": dg.MetadataValue.text(estimate.basis),
        "predicted_sec_per_epoch": dg.MetadataValue.float(float(estimate.seconds_per_epoch)),
    }
