"""Every setting of one study, declared once, with its one validator; the values of its defaults are the
`study:` section of defaults.yaml.

The Dagster `HpoStudyConfig` is derived from these fields (defs/config.py), `hpo-assets study` checks its
values here, and the runner's `StudyOptions` is these settings plus a few knobs of its own. Adding a study
setting is one field here (its default value in defaults.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpo_assets import settings as project_settings
from hpo_assets.objectives import OBJECTIVES

_D = project_settings.settings()["study"]
PRUNERS: tuple[str, ...] = ("median", "hyperband", "none")


class StudyConfigError(ValueError):
    """A study setting that cannot be used; the message names the field."""


def _field(name: str, description: str) -> Any:
    """A field whose default is its value in the `study:` section of defaults.yaml."""
    if isinstance(_D[name], list):
        return Field(default_factory=lambda: list(_D[name]), description=description)
    return Field(_D[name], description=description)


class StudySettings(BaseModel):
    """How one study runs: search, training, data window and storage."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    n_trials: int = _field("n_trials", "Target number of trials in the study.")
    max_epochs: int = _field("max_epochs", "Epochs per trial at most.")
    patience: int = _field("patience", "Early-stopping patience (epochs).")
    objective: str = _field("objective", "val_auc (maximise) or val_loss (minimise).")
    seed: int = _field("seed", "Seed of the TPE sampler, steering and model init.")
    n_forced: int = _field("n_forced", "Forced extremes tried first (0-6).")
    pruner: str = _field("pruner", "median, hyperband or none.")
    pruner_startup_trials: int = _field(
        "pruner_startup_trials", "Trials finished before the pruner may prune."
    )
    pruner_warmup_epochs: int = _field(
        "pruner_warmup_epochs", "Epochs every trial trains before it may be pruned."
    )
    tpe_startup_trials: int = _field(
        "tpe_startup_trials",
        "Trials (forced extremes included) before TPE's model-based proposals start.",
    )
    replicates: int = _field(
        "replicates",
        "Re-train the incumbent with a new seed this many times, spread over the study "
        "(labelled replicate_of); their spread is the study's own noise estimate. 0 = none.",
    )
    storage: str = Field(
        "",
        description="Optuna storage URL (sqlite:///..., postgresql://...) or a folder for journal files; "
        '"" = the `paths` resource (default `.hpo/`).',
    )
    device: str = _field("device", '"" = CUDA when present, else CPU.')
    cpu_threads: int = _field(
        "cpu_threads",
        "CPU threads per trial; 0 = one per core that is free when the trial starts. 1 avoids "
        "thread thrashing when several processes share a small CPU machine.",
    )
    cpu_bf16: bool = _field(
        "cpu_bf16",
        "bf16 autocast on a CPU with bf16 matmuls (AMX / AVX512-BF16); CUDA always trains in bf16.",
    )
    parametrization: str = _field(
        "parametrization",
        "standard, mup or completep: under mup/completep one lr means the same at every "
        "budget (muP relative to one base shape; completep also scales residual branches with depth).",
    )
    start: str = _field("start", "First day of the data window (YYYY-MM-DD).")
    end: str = _field("end", "Last day of the data window (YYYY-MM-DD).")
    val_start: str = _field("val_start", "Validation cut date; '' = split: section.")
    test_start: str = _field("test_start", "Test cut date; '' = split: section.")
    space_file: str = Field(
        "", description="YAML of training-parameter ranges per budget; '' = model/training.yaml."
    )
    architectures: list[str] = Field(
        default_factory=list,
        description="Search only these architectures of the budget's space (labels like "
        "'d512-L1-H8-F1024'); [] = all. For focused or quick runs; every label must belong to the budget.",
    )
    transfer_from: list[str] = _field(
        "transfer_from",
        "Warm start from these budgets' studies at the same horizon (e.g. ['2M', '20M'] for "
        "2B|h1): their best configurations mapped onto this budget go first, then fewer forced extremes "
        "and trials near them. Sources must use the same parametrization (mup/completep for lr to transfer).",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, type(self)) from None

    @model_validator(mode="after")
    def _check(self) -> StudySettings:
        check(self)
        return self

    def split_dates(self) -> dict[str, Any]:
        """The split cut dates this study overrides (empty ones fall back to the `split:` section)."""
        return {k: v for k, v in (("val_start", self.val_start), ("test_start", self.test_start)) if v}


_AT_LEAST_1 = ("n_trials", "max_epochs", "patience")
_AT_LEAST_0 = (
    "seed",
    "n_forced",
    "pruner_startup_trials",
    "pruner_warmup_epochs",
    "tpe_startup_trials",
    "replicates",
    "transfer_forced",
    "transfer_region_trials",
)


def check(values: Any) -> None:
    """The one validator of study settings (and of the runner's options): raise StudyConfigError naming
    the first bad field. Whole numbers are checked here too, for callers that bypass pydantic."""

    def whole(name: str, minimum: int) -> None:
        value = getattr(values, name, minimum)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise StudyConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")

    for name in _AT_LEAST_1:
        whole(name, 1)
    if getattr(values, "cpu_threads", 0) < 0:
        raise StudyConfigError(
            f"cpu_threads must be 0 (one per free core) or more, got {values.cpu_threads!r}"
        )
    if values.objective not in OBJECTIVES:
        raise StudyConfigError(
            f"objective {values.objective!r} is unknown; choose one of {sorted(OBJECTIVES)}"
        )
    if values.pruner not in PRUNERS:
        raise StudyConfigError(f"pruner {values.pruner!r} is unknown; choose one of {list(PRUNERS)}")
    for name in _AT_LEAST_0:
        whole(name, 0)


_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "str_type": "text",
    "list_type": "a list",
}


def _config_error(exc: ValidationError, model: type[BaseModel]) -> StudyConfigError:
    """pydantic's first error as one line naming the field (the validator's own error as raised)."""
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, StudyConfigError):
        return cause
    name = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return StudyConfigError(f"unknown field {name!r}; valid fields: {', '.join(model.model_fields)}")
    word = _TYPE_WORDS.get(err["type"], err["msg"])
    return StudyConfigError(f"{name} must be {word}, got {err.get('input')!r}")


DEFAULTS = StudySettings()


def study_settings(profile: str = "", **given: Any) -> StudySettings:
    """Validated settings: `given` values, with the profile's value for every field left at its default.

    A profile ("demo", "full") lays its `study:` values over defaults.yaml; a field the caller set to
    something other than the default keeps the caller's value.
    """
    defaults = DEFAULTS.model_dump()
    values = {**defaults, **given}
    if profile:
        try:
            overlay = project_settings.settings(profile)["study"]
        except ValueError as exc:
            raise StudyConfigError(f"profile: {exc}") from None
        for name, default in defaults.items():
            if name in overlay and values[name] == default:
                values[name] = overlay[name]
    return StudySettings(**values)


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Study settings as Dagster's config takes them (`profile` and the fields), each value checked.

    One clear error for an unknown field, a wrong type (Dagster, unlike lax pydantic, never turns "5" or
    5.0 into 5) or a bad value (ranges, choices, profile); returns the values unchanged.
    """
    fields = sorted(["profile", *StudySettings.model_fields])
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise StudyConfigError(
            f"hpo_study config: unknown field(s) {unknown}; valid fields: {', '.join(fields)}"
        )
    profile = values.get("profile", "")
    if not isinstance(profile, str):
        raise StudyConfigError(f"hpo_study config: profile must be text, got {profile!r}")
    try:
        StudySettings(**{k: v for k, v in values.items() if k != "profile"})  # types first, as given
        study_settings(profile, **{k: v for k, v in values.items() if k != "profile"})
    except StudyConfigError as exc:
        raise StudyConfigError(f"hpo_study config: {exc}") from None
    return dict(values)
