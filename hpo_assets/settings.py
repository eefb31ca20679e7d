"""Project configuration and locations, read once from defaults.yaml; no Dagster imports."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DATA_DIR = Path(os.environ.get("HPO_ASSETS_DATA_DIR", PROJECT_ROOT / "data"))
DEFAULTS_FILE = PACKAGE_DIR / "defaults.yaml"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@cache
def _raw() -> dict[str, Any]:
    """defaults.yaml, with the YAML file named by HPO_ASSETS_SETTINGS (if set) laid over it.

    The override lets a site change a profile (e.g. a smaller `demo`) for every process of an instance
    without editing the package: jobs with a baked-in profile then run the site's version of it.
    """
    with open(DEFAULTS_FILE) as fh:
        raw = yaml.safe_load(fh)
    override = os.environ.get("HPO_ASSETS_SETTINGS", "").strip()
    if override:
        try:
            with open(override) as fh:
                extra = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"HPO_ASSETS_SETTINGS={override!r} is not a readable YAML file: {exc}") from None
        if not isinstance(extra, dict):
            raise ValueError(f"HPO_ASSETS_SETTINGS={override!r} must hold a mapping like defaults.yaml")
        raw = _merge(raw, extra)
    return raw


def settings(profile: str | None = None) -> dict[str, Any]:
    """The configuration, with a named profile (e.g. "demo", "full") laid over the defaults."""
    raw = _raw()
    base = {k: v for k, v in raw.items() if k != "profiles"}
    if profile is None:
        return copy.deepcopy(base)
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    return _merge(base, profiles[profile])


@dataclass(frozen=True)
class ModelShape:
    """The model's input shape (the `model:` section): inputs per day, window, patch length and stride."""

    n_features: int
    context: int
    patch_len: int
    stride: int


@cache
def model_shape() -> ModelShape:
    """The `model:` section, read once."""
    model = settings()["model"]
    return ModelShape(*(int(model[k]) for k in ("n_features", "context", "patch_len", "stride")))


def project_path(value: str | os.PathLike[str]) -> Path:
    """A configured path: absolute as given, otherwise relative to the project root."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def outputs_dir() -> Any:
    """Where assets write their files: HPO_ASSETS_OUTPUTS (a folder or an object-store URL such as
    `s3://bucket/prefix`) overrides the default `outputs/` folder; a URL gives a `upath.UPath`."""
    from hpo_assets.locations import as_path

    return as_path(os.environ.get("HPO_ASSETS_OUTPUTS") or "outputs", PROJECT_ROOT)


def storage_spec(value: str = "") -> str:
    """Where studies live: `value`, else HPO_ASSETS_STORAGE, else `.hpo/` (study.storage_dir). A storage
    URL is returned as given; a folder as an absolute path (relative ones from the project root)."""
    from hpo_assets.locations import is_url

    spec = value or os.environ.get("HPO_ASSETS_STORAGE") or str(settings()["study"]["storage_dir"])
    return spec if is_url(spec) else str(project_path(spec))


def pool_wait_enabled() -> bool:
    """HPO_ASSETS_POOL_WAIT=1: wrap Dagster's pool claim so a step waiting at op granularity sleeps
    (defs/pool_wait.py); off by default, since it replaces a private Dagster method."""
    raw = os.environ.get("HPO_ASSETS_POOL_WAIT", "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ValueError(f"HPO_ASSETS_POOL_WAIT must be 1 or 0, got {raw!r}")
    return raw in ("1", "true")


# Every environment variable of the project is read here (README, "Environment variables").
def env(name: str, default: str = "") -> str:
    """An environment variable, stripped; `default` when unset or empty."""
    return os.environ.get(name, "").strip() or default


def dagster_home() -> str:
    """DAGSTER_HOME, the folder of the Dagster instance ("" when unset)."""
    return env("DAGSTER_HOME")


def import_dirs() -> list[str]:
    """HPO_ASSETS_IMPORT_DIRS: extra folders the import sensor watches (os.pathsep-separated)."""
    return [p for p in env("HPO_ASSETS_IMPORT_DIRS").split(os.pathsep) if p.strip()]


def analysis_crons() -> tuple[str, str]:
    """Cron of the nightly analysis and importance schedules: HPO_ASSETS_ANALYSIS_CRON /
    HPO_ASSETS_IMPORTANCE_CRON, else `analysis.schedule` / `analysis.importance_schedule`."""
    analysis = settings().get("analysis", {})
    return (
        env("HPO_ASSETS_ANALYSIS_CRON", str(analysis.get("schedule", "0 3 * * *"))),
        env("HPO_ASSETS_IMPORTANCE_CRON", str(analysis.get("importance_schedule", "30 3 * * *"))),
    )


def executor_kind() -> str:
    """HPO_ASSETS_EXECUTOR: multiprocess (default), in_process or k8s (lower case)."""
    return env("HPO_ASSETS_EXECUTOR", "multiprocess").lower()


def gpu_limit_env() -> str:
    """HPO_ASSETS_GPU_LIMIT as given ("" when unset): the `gpu` pool limit init-instance sets."""
    return env("HPO_ASSETS_GPU_LIMIT")


def budgets_file_env() -> str:
    """HPO_ASSETS_BUDGETS: another budgets file instead of model/budgets.yaml ("" when unset)."""
    return env("HPO_ASSETS_BUDGETS")
