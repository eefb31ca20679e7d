"""Parameter budgets and their architecture search spaces (configured in budgets.yaml).

A budget means parameters: its space holds only shapes whose exact count (`count_parameters`) lies
within ±tolerance of it. The old workflow's budgets were labels; its "200M" space topped out near 22M.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hpo_assets.model.params import Arch, count_parameters

BUDGETS_FILE = Path(__file__).resolve().parent / "budgets.yaml"

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_BUDGET_RE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([KMBGT]?)\s*$", re.IGNORECASE)
_CHOICE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff_ratio")
_BOUND_KEYS = ("min_head_dim", "max_head_dim", "min_layers_per_width", "max_layers_per_width")
_PACKING_KEY = "trials_per_gpu"


class BudgetConfigError(ValueError):
    """budgets.yaml (or a file given in its place) is missing, malformed or holds a bad value."""


@dataclass(frozen=True, order=True)
class SpaceEntry:
    """One architecture of a budget's space with its exact parameter count."""

    arch: Arch
    param_count: int

    def to_dict(self) -> dict[str, Any]:
        ratio = self.arch.d_ff_ratio
        return {
            **self.arch.to_dict(),
            "d_ff_ratio": int(ratio) if ratio.is_integer() else ratio,
            "label": self.arch.label,
            "param_count": self.param_count,
        }


def parse_budget(label: str | int) -> int:
    """A budget as a parameter count: "2M", "20m", "2B", "500K", "1.5M", 2_000_000 -> int."""
    if isinstance(label, bool):
        raise ValueError(f"budget {label!r} is not a parameter count")
    if isinstance(label, int):
        value: float = label
    elif isinstance(label, float):
        value = label
    elif isinstance(label, str):
        match = _BUDGET_RE.match(label)
        if not match:
            raise ValueError(
                f"budget {label!r} is not a parameter count; use a number with an optional "
                "K/M/B suffix, e.g. '2M', '500K', '2B' or 2000000"
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    else:
        raise ValueError(f"budget {label!r} is not a parameter count (type {type(label).__name__})")
    if not math.isfinite(value) or value < 1 or not float(value).is_integer():
        raise ValueError(f"budget {label!r} must be a positive whole number of parameters")
    return int(value)


def budget_label(budget: str | int) -> str:
    """Canonical short label: 2_000_000 -> "2M", 2_000_000_000 -> "2B", 1_500_000 -> "1.5M"."""
    n = parse_budget(budget)
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            text = f"{n / scale:.6g}"
            if parse_budget(text + suffix) == n:
                return text + suffix
    return str(n)


@cache
def _load(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise BudgetConfigError(f"budget configuration {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise BudgetConfigError(f"budget configuration {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("default"), dict):
        raise BudgetConfigError(f"budget configuration {path} needs a mapping with a 'default:' section")
    named = raw.get("budgets") or {}
    if not isinstance(named, dict):
        raise BudgetConfigError(f"budget configuration {path}: 'budgets' must be a mapping")
    for key, section in [("default", raw["default"]), *((f"budgets.{k}", v or {}) for k, v in named.items())]:
        _check_section(path, key, section, complete=key == "default")
    _check_tolerance(raw.get("tolerance", 0.25), f"{path}: tolerance")
    return raw


def _check_section(path: Path, where: str, section: Any, complete: bool) -> None:
    if not isinstance(section, dict):
        raise BudgetConfigError(f"budget configuration {path}: '{where}' must be a mapping")
    unknown = set(section) - set(_CHOICE_KEYS) - set(_BOUND_KEYS) - {_PACKING_KEY}
    if unknown:
        raise BudgetConfigError(f"budget configuration {path}: '{where}' has unknown keys {sorted(unknown)}")
    for key in _CHOICE_KEYS:
        if key not in section:
            if complete:
                raise BudgetConfigError(f"budget configuration {path}: '{where}.{key}' is missing")
            continue
        values = section[key]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
        ):
            raise BudgetConfigError(
                f"budget configuration {path}: '{where}.{key}' must be a non-empty list of positive integers"
            )
    for key in _BOUND_KEYS:
        if key in section and (not isinstance(section[key], int | float) or section[key] < 0):
            raise BudgetConfigError(f"budget configuration {path}: '{where}.{key}' must be a number >= 0")
    packing = section.get(_PACKING_KEY, 1)
    if isinstance(packing, bool) or not isinstance(packing, int) or packing < 1:
        raise BudgetConfigError(
            f"budget configuration {path}: '{where}.{_PACKING_KEY}' must be a whole number >= 1, got {packing!r}"
        )


def _check_tolerance(tolerance: Any, where: str) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 < tolerance < 1:
        raise ValueError(f"{where} must be a fraction in (0, 1) such as 0.25, got {tolerance!r}")
    return float(tolerance)


def budgets_file() -> Path:
    """The budget configuration in use: HPO_ASSETS_BUDGETS if set, else the bundled budgets.yaml."""
    return Path(os.environ.get("HPO_ASSETS_BUDGETS") or BUDGETS_FILE).expanduser().resolve()


def named_budgets(config_path: str | Path | None = None) -> list[str]:
    """The budgets studied (the keys of `budgets:`, as canonical labels, in file order)."""
    raw = _load(Path(config_path or budgets_file()).resolve())
    return [budget_label(k) for k in raw.get("budgets") or {}]


def budget_choices(budget: str | int, config_path: str | Path | None = None) -> dict[str, Any]:
    """The configured choices for a budget: the defaults, overridden by its named section if any."""
    raw = _load(Path(config_path or budgets_file()).resolve())
    named = {parse_budget(k): v or {} for k, v in (raw.get("budgets") or {}).items()}
    return {**raw["default"], **named.get(parse_budget(budget), {})}


def trials_per_gpu(budget: str | int | None, config_path: str | Path | None = None) -> int:
    """How many trials of `budget` may share one GPU (its `trials_per_gpu`, else the default's, else 1).

    None (a step that trains several budgets, or none named) gets a whole GPU.
    """
    if budget is None:
        return 1
    return int(budget_choices(budget, config_path).get(_PACKING_KEY, 1))


def gpu_slots(config_path: str | Path | None = None) -> int:
    """Slots per GPU: the most trials any configured budget packs on one (the `gpu` pool allows GPUs x this)."""
    raw = _load(Path(config_path or budgets_file()).resolve())
    sections = [raw["default"], *((v or {}) for v in (raw.get("budgets") or {}).values())]
    return max(int(s.get(_PACKING_KEY, 1)) for s in sections)


def budget_space(
    budget: str | int,
    n_features: int = 25,
    context: int = 80,
    patch_len: int = 16,
    stride: int = 8,
    tolerance: float | None = None,
    config_path: str | Path | None = None,
) -> list[SpaceEntry]:
    """Every configured architecture whose exact parameter count is within ±tolerance of the budget.

    Sorted by (d_model, n_layers, n_heads, d_ff). An empty space is a ValueError, not an empty list,
    so a study never starts on nothing.
    """
    n_budget = parse_budget(budget)
    raw = _load(Path(config_path or budgets_file()).resolve())
    tol = _check_tolerance(raw.get("tolerance", 0.25) if tolerance is None else tolerance, "tolerance")
    c = budget_choices(n_budget, config_path)
    lo, hi = n_budget * (1 - tol), n_budget * (1 + tol)
    entries: set[SpaceEntry] = set()
    for d, n_layers, heads, ratio in itertools.product(
        c["d_model"], c["n_layers"], c["n_heads"], c["d_ff_ratio"]
    ):
        if d % heads or not c.get("min_head_dim", 1) <= d // heads <= c.get("max_head_dim", d):
            continue
        if not c.get("min_layers_per_width", 0) <= n_layers / d <= c.get("max_layers_per_width", math.inf):
            continue
        arch = Arch(d, n_layers, heads, ratio * d)
        count = count_parameters(arch, n_features, context, patch_len, stride)
        if lo <= count <= hi:
            entries.add(SpaceEntry(arch, count))
    if not entries:
        raise ValueError(
            f"budget {budget!r} ({n_budget:,} parameters) has no configured architecture within "
            f"±{tol:.0%}; widen the tolerance or the choices in {config_path or budgets_file()}"
        )
    return sorted(entries)


def space_table(entries: list[SpaceEntry], budget: str | int) -> list[dict[str, Any]]:
    """Rows for printing/serialising a space: each architecture, its count and deviation from budget."""
    n_budget = parse_budget(budget)
    return [{**e.to_dict(), "deviation": round(e.param_count / n_budget - 1, 4)} for e in entries]
