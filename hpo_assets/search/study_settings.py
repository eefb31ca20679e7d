"""Every setting of one study in one validated object; its defaults are the `study:` section of defaults.yaml.

The Dagster `HpoStudyConfig` and the command line only feed it values: defaults, profiles and checks
live here once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hpo_assets import settings as project_settings
from hpo_assets.search.runner import StudyConfigError, StudyOptions

_D = project_settings.settings()["study"]


class StudySettings(BaseModel):
    """How one study runs: search, training, data window and storage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_trials: int = Field(int(_D["n_trials"]), description="Target number of trials in the study.")
    max_epochs: int = Field(int(_D["max_epochs"]), description="Epochs per trial at most.")
    patience: int = Field(int(_D["patience"]), description="Early-stopping patience (epochs).")
    objective: str = Field(str(_D["objective"]), description="val_auc (maximise) or val_loss (minimise).")
    seed: int = Field(int(_D["seed"]), description="Seed of the TPE sampler, steering and model init.")
    n_forced: int = Field(int(_D["n_forced"]), description="Forced extremes tried first (0-6).")
    pruner: str = Field(str(_D["pruner"]), description="median, hyperband or none.")
    pruner_startup_trials: int = Field(
        int(_D["pruner_startup_trials"]), description="Trials finished before the pruner may prune."
    )
    pruner_warmup_epochs: int = Field(
        int(_D["pruner_warmup_epochs"]), description="Epochs every trial trains before it may be pruned."
    )
    tpe_startup_trials: int = Field(
        int(_D["tpe_startup_trials"]),
        description="Trials (forced extremes included) before TPE's model-based proposals start.",
    )
    replicates: int = Field(
        int(_D["replicates"]),
        description="Re-train the incumbent with a new seed this many times, spread over the study "
        "(labelled replicate_of); their spread is the study's own noise estimate. 0 = none.",
    )
    storage: str = Field(
        "",
        description="Optuna storage URL (sqlite:///..., postgresql://...) or a folder for journal files; "
        '"" = the `paths` resource (default `.hpo/`).',
    )
    device: str = Field(str(_D["device"]), description='"" = CUDA when present, else CPU.')
    cpu_threads: int = Field(
        int(_D["cpu_threads"]),
        description="CPU threads per trial; 0 = one per core that is free when the trial starts. 1 avoids thread thrashing when several "
        "processes share a small CPU machine.",
    )
    cpu_bf16: bool = Field(
        bool(_D["cpu_bf16"]),
        description="bf16 autocast on a CPU with bf16 matmuls (AMX / AVX512-BF16): ~1.6x faster on 20M "
        "models; CUDA always trains in bf16.",
    )
    parametrization: str = Field(
        str(_D["parametrization"]),
        description="standard, mup or completep: under mup/completep one lr means the same at every "
        "budget (muP relative to one base shape; completep also scales residual branches with depth).",
    )
    start: str = Field(str(_D["start"]), description="First day of the data window (YYYY-MM-DD).")
    end: str = Field(str(_D["end"]), description="Last day of the data window (YYYY-MM-DD).")
    val_start: str = Field(str(_D["val_start"]), description="Validation cut date; '' = split: section.")
    test_start: str = Field(str(_D["test_start"]), description="Test cut date; '' = split: section.")
    space_file: str = Field(
        "", description="YAML of training-parameter ranges per budget; '' = model/training.yaml."
    )
    architectures: list[str] = Field(
        default_factory=list,
        description="Search only these architectures of the budget's space (labels like "
        "'d512-L1-H8-F1024'); [] = all. For focused or quick runs; every label must belong to the budget.",
    )

    transfer_from: list[str] = Field(
        default_factory=lambda: list(_D.get("transfer_from") or []),
        description="Warm start from these budgets' studies at the same horizon (e.g. ['2M', '20M'] for "
        "2B|h1): their best configurations mapped onto this budget go first, then fewer forced extremes "
        "and trials near them. Sources must use the same parametrization (mup/completep for lr to transfer).",
    )

    def options(self) -> StudyOptions:
        """The search part, as the runner takes it (validated there)."""
        return StudyOptions(
            n_trials=self.n_trials,
            objective=self.objective,
            seed=self.seed,
            n_forced=self.n_forced,
            pruner=self.pruner,
            pruner_startup_trials=self.pruner_startup_trials,
            pruner_warmup_epochs=self.pruner_warmup_epochs,
            tpe_startup_trials=self.tpe_startup_trials,
            replicates=self.replicates,
            epochs_config=self.max_epochs,
        )

    def split_dates(self) -> dict[str, Any]:
        """The split cut dates this study overrides (empty ones fall back to the `split:` section)."""
        return {k: v for k, v in (("val_start", self.val_start), ("test_start", self.test_start)) if v}

    def check(self) -> StudySettings:
        """Raise StudyConfigError naming the first bad field; returns self for chaining."""
        for name in ("max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise StudyConfigError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if self.cpu_threads < 0:
            raise StudyConfigError(
                f"cpu_threads must be 0 (one per free core) or more, got {self.cpu_threads!r}"
            )
        self.options()
        return self


DEFAULTS = StudySettings()


def study_settings(profile: str = "", **given: Any) -> StudySettings:
    """Validated settings: `given` values, with the profile's value for every field left at its default.

    A profile ("demo", "full") lays its `study:` values over defaults.yaml; a field the caller set to
    something other than the default keeps the caller's value.
    """
    values = {**DEFAULTS.model_dump(), **given}
    if profile:
        try:
            overlay = project_settings.settings(profile)["study"]
        except ValueError as exc:
            raise StudyConfigError(f"profile: {exc}") from None
        for name, default in DEFAULTS.model_dump().items():
            if name in overlay and values[name] == default:
                values[name] = overlay[name]
    try:
        return StudySettings(**values).check()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise StudyConfigError(f"{where}: {err['msg']}, got {err.get('input')!r}") from None


_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
}
_WORDS: dict[Any, str] = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _is(kind: Any, value: Any) -> bool:
    """`value` is of the field's type as Dagster's config sees it (a bool is no number there)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float):
        return isinstance(value, int if kind is int else int | float) and not isinstance(value, bool)
    return isinstance(value, str) if kind is str else True


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Study settings as Dagster's config will take them (`profile` and the fields), each value checked.

    One clear error for an unknown field, a wrong type (Dagster, unlike pydantic, never turns "5" or 5.0
    into 5) or a bad value (ranges, choices, profile); returns `values` unchanged.
    """
    fields = sorted(["profile", *StudySettings.model_fields])
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise StudyConfigError(
            f"hpo_study config: unknown field(s) {unknown}; valid fields: {', '.join(fields)}"
        )
    for name, value in values.items():
        kind = str if name == "profile" else StudySettings.model_fields[name].annotation
        if not _is(kind, value):
            raise StudyConfigError(f"hpo_study config: {name} must be {_WORDS[kind]}, got {value!r}")
    rest = {k: v for k, v in values.items() if k != "profile"}
    try:
        StudySettings.model_validate(rest)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        word = _TYPE_WORDS.get(err["type"], err["msg"])
        raise StudyConfigError(f"hpo_study config: {name} must be {word}, got {err.get('input')!r}") from None
    try:
        study_settings(str(values.get("profile", "")), **rest)
    except ValueError as exc:
        raise StudyConfigError(f"hpo_study config: {exc}") from None
    return values
