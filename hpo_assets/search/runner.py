"""Run (or resume) one study to its target trial count: recover a killed run, forced extremes, then TPE.

`run_study` takes plain arguments (a search space, a trainer callable, a storage spec), so tests
and notebooks drive it without Dagster; the `hpo_study` asset only assembles them.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo_assets.data.dataset import DATA_IDENTITY
from hpo_assets.locations import mask_password
from hpo_assets.objectives import OBJECTIVES, Direction
from hpo_assets.search.extremes import forced_extremes
from hpo_assets.search.liveness import STALE_AFTER_S, is_abandoned, worker_identity
from hpo_assets.search.objective import EpochHook, Log, Trainer, TrialContext, plain, run_trial
from hpo_assets.search.partition import UID_ATTR
from hpo_assets.search.space import SearchSpace
from hpo_assets.search.steering import SpaceSampler, tested_configs
from hpo_assets.search.storage import claim_lock, open_storage
from hpo_assets.search.study_settings import StudyConfigError, StudySettings
from hpo_assets.search.transfer import RegionSampler, WarmStart

logger = logging.getLogger(__name__)  # a Dagster instance shows it in the run log (python_logs)
TrialHook = Callable[
    [optuna.Study, FrozenTrial], object
]  # (study, the trial that just ended); result ignored
KILLED_REASON = "left RUNNING by a killed run"


class StudyOptions(StudySettings):
    """How a study searches: the study settings, plus the runner's own knobs; validated on construction
    (study_settings.check) before anything is stored. Only the search fields matter here."""

    epochs_config: int | None = None  # epochs a trial is configured for, recorded on the trial
    stale_after_s: float = STALE_AFTER_S  # a RUNNING trial without heartbeat this long is abandoned
    transfer_forced: int = 2  # forced extremes of a warm-started study (its transferred trials come first)
    transfer_region_trials: int = 5  # a warm-started study's first sampled trials drawn near the sources

    @classmethod
    def of(cls, settings: StudySettings) -> StudyOptions:
        """The options of validated study settings (a trial trains at most `max_epochs`)."""
        return cls(**settings.model_dump(), epochs_config=settings.max_epochs)

    @property
    def direction(self) -> Direction:
        return OBJECTIVES[self.objective]

    def make_pruner(self) -> optuna.pruners.BasePruner:
        if self.pruner == "median":
            # Epochs are reported as steps 1, 2, ...; MedianPruner prunes from step n_warmup_steps on.
            return optuna.pruners.MedianPruner(
                n_startup_trials=self.pruner_startup_trials, n_warmup_steps=self.pruner_warmup_epochs + 1
            )
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.pruner_warmup_epochs + 1)
        return optuna.pruners.NopPruner()


@dataclass
class StudyRun:
    """What a run did and where the study stands (counts cover the whole study, not only this run)."""

    study_name: str
    storage: str
    direction: str
    n_trials: int
    counted: int
    complete: int
    pruned: int
    failed: int
    diverged: int
    killed: int
    skipped_duplicates: int
    steered: int
    replicates: int
    space_size: int
    exhausted: bool
    new_trials: list[int] = field(default_factory=list)
    best: FrozenTrial | None = None
    noise: dict[str, Any] | None = None
    retried: int = 0  # killed trials whose retry has run (a retry still WAITING is not counted)

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best.value


def counts_toward_target(trial: FrozenTrial) -> bool:
    """Finished trials count, except killed-run FAILs (retried) and skipped enqueued repeats."""
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return False
    return not (trial.user_attrs.get("killed_run") or trial.user_attrs.get("skipped_duplicate"))


def _open_study(
    space: SearchSpace,
    storage: str,
    study_name: str,
    options: StudyOptions,
    warm: WarmStart | None = None,
    log: Log = print,
) -> tuple[optuna.Study, SpaceSampler]:
    space_sampler = SpaceSampler(space, seed=options.seed, n_startup_trials=options.tpe_startup_trials)
    sampler: optuna.samplers.BaseSampler = space_sampler
    if warm is not None:
        sampler = RegionSampler(space_sampler, warm.region, options.transfer_region_trials, options.seed)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage, study_name, log=log),  # a torn journal tail is moved aside first
        direction=options.direction,
        sampler=sampler,
        pruner=options.make_pruner(),
        load_if_exists=True,
    )
    existing = study.user_attrs.get("objective")
    if study.direction.name.lower() != options.direction or existing not in (None, options.objective):
        raise StudyConfigError(
            f"objective {options.objective!r} ({options.direction}) does not match study {study_name!r}, "
            f"which was run with objective {existing!r} ({study.direction.name.lower()}); "
            "use the same objective or another storage"
        )
    return study, space_sampler


def _recover_killed(study: optuna.Study, space: SearchSpace, stale_after_s: float, log: Log) -> int:
    """FAIL every trial a killed run left RUNNING and enqueue its configuration again.

    Trials another live worker is training are left alone (see liveness.py).
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    killed = [t for t in running if is_abandoned(t, stale_after_s=stale_after_s)]
    for t in running:
        if t.number not in {k.number for k in killed}:
            log(
                f"trial #{t.number} is running in another live worker {t.user_attrs.get('worker')}; left alone"
            )
    for t in killed:
        # A finished trial's attrs are frozen, so write them before telling FAIL.
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", KILLED_REASON)
        study._storage.set_trial_user_attr(t._trial_id, "killed_run", True)
        study.tell(t.number, state=TrialState.FAIL)
        # an enqueued trial killed before it suggested every value still has its whole configuration
        params = {**(t.system_attrs.get("fixed_params") or {}), **t.params}
        key = space.key(params)
        if key is not None and space.contains(params):
            kept = (
                "forced_extreme",
                "extreme_type",
                "transferred_from",
                "transfer_kind",
                "replicate_of",
                "train_seed",
            )
            keep = {k: t.user_attrs[k] for k in kept if k in t.user_attrs}
            study.enqueue_trial(params, user_attrs={**keep, "retry_of": t.number})
        log(f"trial #{t.number}: {KILLED_REASON}; marked FAIL" + (", configuration re-queued" if key else ""))
    return len(killed)


def _enqueue_transferred(study: optuna.Study, warm: WarmStart, log: Log) -> None:
    """Enqueue the warm start's configurations not yet in the study, each labelled with its source."""
    present = {
        t.user_attrs.get("transfer_kind")
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("transferred_from")
    }
    for cfg in warm.configs:
        kind = f"{cfg.source}:{cfg.kind}"
        if kind in present:
            continue
        study.enqueue_trial(
            cfg.params,
            user_attrs={"transferred_from": cfg.source, "transfer_kind": kind},
            skip_if_exists=True,
        )
        log(f"enqueued transferred configuration from {cfg.source} ({cfg.kind}): {cfg.params}")


def _enqueue_extremes(
    study: optuna.Study, space: SearchSpace, options: StudyOptions, log: Log, warm: bool = False
) -> None:
    """Enqueue the forced extremes not yet in the study (no more than the target count; fewer when warm)."""
    trials = study.get_trials(deepcopy=False)
    present = {t.user_attrs.get("extreme_type") for t in trials if t.user_attrs.get("forced_extreme")}
    n_forced = min(options.n_forced, options.transfer_forced) if warm else options.n_forced
    wanted = forced_extremes(space, min(n_forced, options.n_trials))
    for ext in wanted:
        if ext.extreme_type in present:
            continue
        study.enqueue_trial(
            ext.params,
            user_attrs={"forced_extreme": True, "extreme_type": ext.extreme_type},
            skip_if_exists=True,
        )
        log(
            f"enqueued forced extreme {ext.extreme_type}: "
            + " ".join(f"{k}={v}" for k, v in ext.params.items())
        )


def study_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by outcome, plus how many the sampler proposed as repeats and were steered or skipped."""
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    return {
        "trials": len(trials),
        "counted": sum(counts_toward_target(t) for t in trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": len(failed),
        "diverged": sum(bool(t.user_attrs.get("diverged")) for t in trials),  # PRUNED (live) or FAIL (older)
        "killed": sum(bool(t.user_attrs.get("killed_run")) for t in failed),
        "retried": len(
            {t.user_attrs.get("retry_of") for t in trials if t.state.is_finished()}
            & {t.number for t in failed if t.user_attrs.get("killed_run")}
        ),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "waiting": sum(t.state == TrialState.WAITING for t in trials),
        "skipped_duplicates": sum(bool(t.user_attrs.get("skipped_duplicate")) for t in trials),
        "steered": sum("steered_from" in t.user_attrs for t in trials),
        "replicates": sum(t.user_attrs.get("replicate_of") is not None for t in trials),
    }


def replicate_noise(study: optuna.Study) -> dict[str, Any] | None:
    """The study's own noise estimate: the spread of the objective over each replicated configuration.

    Groups every COMPLETE replicate with the COMPLETE trial it re-trains; returns the pooled standard
    deviation across seeds (ddof 1 within each group), the number of groups and of runs, or None
    without a replicate.
    """
    done = {t.number: t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE}
    groups: dict[int, list[float]] = {}
    for t in done.values():
        of = t.user_attrs.get("replicate_of")
        first = done[of].value if of in done else None
        if of is not None and first is not None and t.value is not None:
            groups.setdefault(int(of), [float(first)]).append(float(t.value))
    if not groups:
        return None
    ss = sum(sum((v - sum(g) / len(g)) ** 2 for v in g) for g in groups.values())
    dof = sum(len(g) - 1 for g in groups.values())
    return {
        "objective_sd": (ss / dof) ** 0.5 if dof else None,
        "groups": len(groups),
        "runs": sum(len(g) for g in groups.values()),
        "values": {str(k): g for k, g in groups.items()},
    }


def _maybe_enqueue_replicate(study: optuna.Study, options: StudyOptions, counted: int, log: Log) -> None:
    """Every n_trials // (replicates + 1) counted trials, enqueue the incumbent again with a new seed."""
    if options.replicates <= 0:
        return
    every = max(1, options.n_trials // (options.replicates + 1))
    trials = study.get_trials(deepcopy=False)
    done = sum(t.user_attrs.get("replicate_of") is not None for t in trials)
    pending = any(t.state == TrialState.WAITING for t in trials)
    if pending or done >= options.replicates or counted < every * (done + 1):
        return
    try:
        best = study.best_trial
    except ValueError:
        return
    seed = options.seed + 1000 * (done + 1)
    of = int(best.user_attrs.get("replicate_of", best.number))  # always group with the original run
    study.enqueue_trial(dict(best.params), user_attrs={"replicate_of": of, "train_seed": seed})
    log(f"enqueued replicate {done + 1}/{options.replicates}: incumbent #{of} with seed {seed}")


def _check_same_data(study: optuna.Study, attrs: Mapping[str, Any], study_name: str) -> None:
    stored = study.user_attrs
    changed = [
        f"{key}: {stored[key]!r} -> {plain(attrs[key])!r}"
        for key in DATA_IDENTITY
        if key in attrs and stored.get(key) is not None and stored[key] != plain(attrs[key])
    ]
    if changed and study.get_trials(deepcopy=False):
        raise StudyConfigError(
            f"study {study_name!r} was run on other data than this run's ({'; '.join(changed)}): its trials "
            "would not be comparable with new ones. Nothing was changed; run with the study's settings, "
            "or give this run another storage (the `storage` field or HPO_ASSETS_STORAGE)"
        )


def run_study(
    space: SearchSpace,
    train: Trainer,
    *,
    study_name: str,
    storage: str,
    options: StudyOptions,
    study_attrs: Mapping[str, Any] | None = None,
    device: str | None = None,
    log: Log = logger.info,
    epoch_hook: EpochHook | None = None,
    warm_start: WarmStart | None = None,
    trial_hook: TrialHook | None = None,
) -> StudyRun:
    """Continue `study_name` in `storage` until `options.n_trials` trials count, or the space is exhausted.

    Never restarts a study: completed trials stay, a finished study runs nothing more. With
    `warm_start` (search/transfer.py) its transferred configurations are enqueued first.
    `trial_hook(study, trial)` hears each trial as it ends (search/progress.py).
    """
    study, sampler = _open_study(space, storage, study_name, options, warm_start, log)
    if UID_ATTR not in study.user_attrs:  # its identity, beyond its name (trials/identity.py): set once
        with claim_lock(storage, study_name):
            if UID_ATTR not in study.user_attrs:
                study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
    attrs = {**(study_attrs or {}), "objective": options.objective, "source": "hpo_study"}
    _check_same_data(study, attrs, study_name)
    stored_kind = study.user_attrs.get("parametrization")
    if "parametrization" in attrs and stored_kind not in (None, attrs["parametrization"]):
        raise StudyConfigError(
            f"parametrization {attrs['parametrization']!r} does not match study {study_name!r}, which was run "
            f"with {stored_kind!r}; use the same parametrization or another storage"
        )
    if warm_start is not None:
        attrs.update(warm_start.study_attrs())
    elif "transferred_from" not in study.user_attrs:
        attrs["transferred_from"] = []
    for key, value in attrs.items():
        study.set_user_attr(key, plain(value))
    study.set_user_attr("space_size", space.size)
    study.set_user_attr("space_distinct", space.n_effective)
    study.set_user_attr("n_trials_target", options.n_trials)
    if study.metric_names != [
        options.objective
    ]:  # optuna-dashboard names the value "val_auc", not "Objective 0"
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use since
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([options.objective])
    study.set_user_attr("skipped_duplicates", study_counts(study)["skipped_duplicates"])

    with claim_lock(storage, study_name):  # one worker at a time: each killed trial and extreme enqueued once
        _recover_killed(study, space, options.stale_after_s, log)
        if warm_start is not None:
            _enqueue_transferred(study, warm_start, log)
        _enqueue_extremes(study, space, options, log, warm=warm_start is not None)

    ctx = TrialContext(space, train, options.objective, options.epochs_config, device, log, epoch_hook)
    counted = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    if counted >= options.n_trials:
        log(
            f"study {study_name}: {counted} trials already count toward the target {options.n_trials}; nothing to run"
        )
    new: list[int] = []
    exhausted = False
    while counted < options.n_trials:
        # Count and ask under a lock all workers share, and count the trials live workers are running:
        # N workers then stop at exactly the target instead of overshooting it (see storage_locks.py).
        with claim_lock(storage, study_name):
            trials = study.get_trials(deepcopy=False)
            running_now = [t for t in trials if t.state == TrialState.RUNNING]
            if any(is_abandoned(t, stale_after_s=options.stale_after_s) for t in running_now):
                # a worker died: retry its trial now
                _recover_killed(study, space, options.stale_after_s, log)
                trials = study.get_trials(deepcopy=False)
            counted = sum(counts_toward_target(t) for t in trials)  # other workers may have finished trials
            running = sum(
                t.state == TrialState.RUNNING and not is_abandoned(t, stale_after_s=options.stale_after_s)
                for t in trials
            )
            if counted + running >= options.n_trials:
                if running:
                    log(f"study {study_name}: the last {running} trial(s) to the target run in other workers")
                break
            if options.replicates:
                _maybe_enqueue_replicate(study, options, counted, log)
                trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and len(tested_configs(space, trials)) >= space.n_effective:
                exhausted = True
                log(
                    f"study {study_name}: all {space.n_effective} distinct configurations are tested; "
                    "the search space is exhausted"
                )
                break
            trial = study.ask()
            trial.set_user_attr("worker", worker_identity())  # claimed: other workers count it from now on
        label = f"trial {counted + running + 1}/{options.n_trials}"
        frozen = run_trial(study, trial, ctx, steer=lambda n: sampler.steered.pop(n, None), label=label)
        new.append(frozen.number)
        if trial_hook is not None:
            trial_hook(study, frozen)
        if "duplicate_of" in frozen.user_attrs:  # keep the study's count current if this run is killed later
            c = study_counts(study)
            study.set_user_attr("skipped_duplicates", c["skipped_duplicates"])
            study.set_user_attr("steered", c["steered"])
    counts = study_counts(study)
    study.set_user_attr("skipped_duplicates", counts["skipped_duplicates"])
    study.set_user_attr("steered", counts["steered"])
    noise = replicate_noise(study)
    if noise is not None:
        study.set_user_attr("replicate_noise", plain(noise))
    study.set_user_attr("exhausted", exhausted)
    try:
        best: FrozenTrial | None = study.best_trial
    except ValueError:  # no COMPLETE trial yet
        best = None
    return StudyRun(
        study_name=study_name,
        storage=mask_password(storage),
        direction=options.direction,
        n_trials=options.n_trials,
        counted=counts["counted"],
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        diverged=counts["diverged"],
        killed=counts["killed"],
        retried=counts["retried"],
        skipped_duplicates=counts["skipped_duplicates"],
        steered=counts["steered"],
        replicates=counts["replicates"],
        space_size=space.size,
        exhausted=exhausted,
        new_trials=new,
        best=best,
        noise=noise,
    )
