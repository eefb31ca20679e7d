"""One study, assembled: settings + a partition key + prepared data -> a `StudyRunner` ready to run.

The `hpo_study` asset and the benchmarks build their studies here, so the search space, the trainer, the
options, the warm start and what a study records about itself come from one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo_assets.locations import mask_password
from hpo_assets.model.budgets import budget_space
from hpo_assets.search.liveness import is_abandoned
from hpo_assets.search.objective import EpochHook, Log, TorchTrainer, Trainer
from hpo_assets.search.partition import StudyPartition, parse_partition, study_attrs, transfer_study_names
from hpo_assets.search.runner import StudyOptions, StudyRun, TrialHook, run_study, study_counts
from hpo_assets.search.space import SearchSpace, arch_choices, load_training_choices, restrict_archs
from hpo_assets.search.steering import repeated_trials
from hpo_assets.search.storage import open_storage
from hpo_assets.search.study_settings import DEFAULTS, StudyConfigError, StudySettings
from hpo_assets.search.transfer import WarmStart, load_sources, plan_warm_start
from hpo_assets.settings import model_shape

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

logger = logging.getLogger(__name__)


def study_space(
    budget: str, data: PreparedData | None = None, settings: StudySettings = DEFAULTS
) -> SearchSpace:
    """The budget's search space: its architectures for the data's shape (the `model:` shape without data),
    restricted to `settings.architectures`, and its training choices (`settings.space_file`)."""
    shape = model_shape()
    entries = budget_space(
        budget,
        n_features=data.n_features if data is not None else shape.n_features,
        context=data.context if data is not None else shape.context,
        patch_len=shape.patch_len,
        stride=shape.stride,
    )
    archs = restrict_archs(arch_choices(entries), settings.architectures, budget)
    choices = load_training_choices(budget, settings.space_file or None)
    if data is None:
        return SearchSpace.build(archs, choices)
    return SearchSpace.build(archs, choices, n_train=len(data.split.train), max_epochs=settings.max_epochs)


def study_data(features: Any, part: StudyPartition, settings: StudySettings) -> PreparedData:
    """The prepared data of a study: the features file at the partition's horizon, the settings' window and cuts."""
    from hpo_assets.data.dataset import load_prepared

    start, end = settings.start or None, settings.end or None
    return load_prepared(features, part.horizon_days, start=start, end=end, **settings.split_dates())


def prepared_for(frame: Any, horizon_days: int, settings: StudySettings) -> PreparedData:
    """The same data from a features frame in memory (`hpo-assets plan`, benchmarks)."""
    from hpo_assets.data.dataset import prepare_dataset

    start, end = settings.start or None, settings.end or None
    return prepare_dataset(frame, horizon_days, start=start, end=end, **settings.split_dates())


def torch_trainer(
    data: PreparedData, settings: StudySettings, device: str, seed: int | None = None
) -> TorchTrainer:
    """The project's trainer with the settings' epochs, patience, objective, threads and parametrization."""
    shape = model_shape()
    return TorchTrainer(
        data,
        settings.max_epochs,
        settings.patience,
        settings.objective,
        settings.seed if seed is None else seed,
        device,
        shape.patch_len,
        shape.stride,
        settings.cpu_threads or None,
        settings.cpu_bf16,
        parametrization=settings.parametrization,
    )


@dataclass
class StudyRunner:
    """A study ready to run (or resume): `run()` continues it in `storage` to its target trial count."""

    part: StudyPartition
    settings: StudySettings
    options: StudyOptions
    data: PreparedData
    space: SearchSpace
    storage: str
    device: str
    trainer: Trainer
    warm_start: WarmStart | None
    attrs: dict[str, Any]

    @property
    def study_name(self) -> str:
        return self.part.study_name

    def describe(self) -> str:
        """One line: the space, the data, the device and the storage this study runs with."""
        space, split = self.space, self.data.split
        return (
            f"{self.study_name}: {space.size:,} configurations ({len(space.archs)} architectures), "
            f"{len(split.train)} train / {len(split.val)} val samples, device {self.device}, "
            f"storage {mask_password(self.storage)}"
        )

    def summary(self, run: StudyRun, study: Any) -> dict[str, Any]:
        """What a run leaves in `<study>.json`: where the study is, its counts and its best trial."""
        return {
            "study_name": self.study_name,
            "storage": mask_password(self.storage),
            "partition": self.part.key,
            **study_counts(study),
            "best_trial": run.best.number if run.best else None,
            "best_value": run.best.value if run.best else None,
            "exhausted": run.exhausted,
        }

    def checks(self, study: Any) -> dict[str, tuple[bool, dict[str, Any]]]:
        """The study's checks after a run: name -> (passed, what was counted)."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        repeats = repeated_trials(self.space, trials)
        running = [t.number for t in trials if t.state == TrialState.RUNNING and is_abandoned(t)]
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        return {
            "no_repeated_configuration": (
                not repeats,
                {"trials": len(trials), "repeats": len(repeats), "repeated_trials": str(repeats)},
            ),
            "no_trial_left_running": (not running, {"abandoned_running_trials": str(running)}),
            "has_complete_trial": (bool(complete), {"complete_trials": len(complete)}),
        }

    def run(
        self, log: Log = logger.info, epoch_hook: EpochHook | None = None, trial_hook: TrialHook | None = None
    ) -> StudyRun:
        return run_study(
            self.space,
            self.trainer,
            study_name=self.part.study_name,
            storage=self.storage,
            options=self.options,
            study_attrs=self.attrs,
            device=self.device,
            log=log,
            epoch_hook=epoch_hook,
            warm_start=self.warm_start,
            trial_hook=trial_hook,
        )


def build_study(
    settings: StudySettings,
    key: Any,
    data: PreparedData | Callable[[StudyPartition], PreparedData],
    *,
    storage: str,
    device_for: Callable[[str], str] | None = None,
    log: Log = logger.warning,
) -> StudyRunner:
    """The study of partition `key` with validated `settings` on `data`, stored in `storage`.

    Everything that can be checked without data is checked first (partition, parametrization, warm-start
    sources, storage); `data` may be a function of the partition, then called only after those checks.
    `device_for(settings.device)` gives the device to train on (e.g. a leased GPU), called last, before
    anything touches CUDA. Raises ValueError (StudyConfigError) naming the bad setting.
    """
    import torch

    from hpo_assets.model.parametrization import check_parametrization
    from hpo_assets.training.device import bf16_supported, pick_device

    part = parse_partition(key)
    check_parametrization(settings.parametrization)
    source_names = transfer_study_names(settings.transfer_from, part)
    options = StudyOptions.of(settings)
    open_storage(storage, part.study_name, log=log)  # a bad URL or folder fails here
    prepared = data(part) if callable(data) else data
    space = study_space(part.budget, prepared, settings)
    warm = None
    if source_names:  # warm start (search/transfer.py): the sources' best configurations go first
        sources = load_sources(storage, source_names, settings.parametrization, options.direction)
        warm = plan_warm_start(sources, space, max_configs=min(options.n_trials, len(sources) + 4))
    device = str(pick_device((device_for or str)(settings.device) or None))
    if settings.cpu_bf16 and device == "cpu" and not bf16_supported(torch.device(device)):
        raise StudyConfigError("cpu_bf16: this CPU has no bf16 matmuls (AMX or AVX512-BF16); set it to false")
    shape = model_shape()
    attrs = {
        **study_attrs(part, prepared, shape.patch_len, shape.stride),
        "parametrization": settings.parametrization,
        # the protocol a retrain needs to reproduce a trial (calibrated_model, cross_budget_validation)
        "seed": settings.seed,
        "max_epochs": settings.max_epochs,
        "patience": settings.patience,
        "cpu_threads": settings.cpu_threads,
    }
    return StudyRunner(
        part,
        settings,
        options,
        prepared,
        space,
        storage,
        device,
        torch_trainer(prepared, settings, device),
        warm,
        attrs,
    )
