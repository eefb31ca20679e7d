"""What every reader shares: problems, one study's result, and turning raw params/values into schema fields."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hpo_assets.locations import mask_password
from hpo_assets.trials.schema import STATES, curve_columns  # noqa: F401  (re-exported for readers)


class SourceError(ValueError):
    """A source that cannot be read at all (named with what is wrong; any URL password masked)."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_password(message))


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong in one place; the place is a path, optionally with `[item N]` or a study name."""

    path: str
    problem: str

    def __post_init__(self) -> None:  # problems end up in metadata, logs and report files
        object.__setattr__(self, "path", mask_password(self.path))
        object.__setattr__(self, "problem", mask_password(self.problem))

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class StudyRead:
    """One study as read from one source: its rows (schema dicts), what was wrong, how many trials were skipped."""

    study: str
    source: str
    source_path: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    skipped: int = 0
    notes: list[ImportProblem] = field(
        default_factory=list
    )  # not errors: e.g. metadata that disagrees with the name
    uid: str | None = None  # the study's own identity (user attr `study_uid`), when it has one

    def rename(self, name: str) -> None:
        """Keep this study beside another of the same name (see trials/identity.py)."""
        self.study = name
        for row in self.rows:
            row["study"] = name

    def skip(self, where: str, why: str) -> None:
        """A trial that cannot be imported: reported by place and reason, and counted as skipped."""
        self.problems.append(ImportProblem(where, why))
        self.skipped += 1


_PARAM_ALIASES = {
    "lr": "lr",
    "learning_rate": "lr",
    "dropout": "dropout",
    "weight_decay": "weight_decay",
    "warmup_steps": "warmup_steps",
    "warmup": "warmup_steps",
    "batch_size": "batch_size",
    "epochs": "epochs_config",
    "max_epochs": "epochs_config",
    "epochs_config": "epochs_config",
    "d_model": "d_model",
    "n_layers": "n_layers",
    "n_heads": "n_heads",
    "d_ff": "d_ff",
    "param_count": "param_count",
}
INT_FIELDS = {
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "param_count",
    "warmup_steps",
    "batch_size",
    "epochs_config",
}
_ARCH_LABEL = re.compile(r"^d(\d+)-L(\d+)-H(\d+)-F(\d+)$")


def as_float(value: Any) -> float | None:
    """A number as float (NaN/inf kept: callers decide); None for anything that is not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def as_int(value: Any) -> int | None:
    """An integral number as int; None for anything else (never rounds a fraction away)."""
    f = as_float(value)
    if f is None or not math.isfinite(f) or f != int(f):
        return None
    return int(f)


def as_bool(value: Any) -> bool | None:
    """True/False from bools and the strings exporters write ("True", "false", "1"); None otherwise."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    return None


def finite(value: Any) -> float | None:
    """A finite float or None."""
    f = as_float(value)
    return f if f is not None and math.isfinite(f) else None


def parse_state(value: Any) -> str | None:
    """ "TrialState.COMPLETE", "complete", "COMPLETE" -> "COMPLETE"; None when not a known state."""
    if value is None:
        return None
    text = str(value).strip().upper()
    if text.startswith("TRIALSTATE."):
        text = text.split(".", 1)[1]
    return text if text in STATES else None


def params_to_columns(params: dict[str, Any]) -> dict[str, Any]:
    """Map a source's parameter names onto schema columns (`learning_rate` -> lr, `d_ff_ratio` -> d_ff, arch labels)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        col = _PARAM_ALIASES.get(key)
        if col is not None:
            out[col] = as_int(value) if col in INT_FIELDS else finite(value)
        elif key == "arch" and isinstance(value, str) and (m := _ARCH_LABEL.match(value)):
            out.setdefault("d_model", int(m.group(1)))
            out.setdefault("n_layers", int(m.group(2)))
            out.setdefault("n_heads", int(m.group(3)))
            out.setdefault("d_ff", int(m.group(4)))
    ratio = as_float(params.get("d_ff_ratio"))
    if out.get("d_ff") is None and ratio is not None and out.get("d_model") is not None:
        d_ff = out["d_model"] * ratio
        out["d_ff"] = int(d_ff) if math.isfinite(d_ff) and d_ff == int(d_ff) else None
    return out


def unusable_params(params: dict[str, Any]) -> list[str]:
    """`name=value` of every schema parameter given but not usable (NaN, inf, text, a fraction for an
    integer): its column is left null, and the importer says so in a problem line."""
    bad = []
    for key, value in params.items():
        col = _PARAM_ALIASES.get(key)
        if col is None or value is None:
            continue
        usable = as_int(value) if col in INT_FIELDS else finite(value)
        if usable is None:
            bad.append(f"{key}={value!r}")
    return bad


def params_json(params: dict[str, Any]) -> str:
    """Parameters as compact JSON with sorted keys (non-JSON values become strings)."""
    return json.dumps(params, sort_keys=True, default=str)


def read_json_file(path: Any) -> tuple[Any, list[ImportProblem]]:
    """Parse a JSON file; a top-level list cut short keeps its complete items (and says so).

    Raises SourceError naming the file when nothing usable is in it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not a text file (not UTF-8), cannot be JSON") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        why = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        start = len(text) - len(text.lstrip())
        if text[start : start + 1] == "[":
            items = _salvage_items(text, start + 1)
            if items:
                return items, [
                    ImportProblem(
                        str(path),
                        f"{why}: list cut short; kept the {len(items)} complete items before the break",
                    )
                ]
        raise SourceError(f"{path}: {why}") from None


def _salvage_items(text: str, pos: int) -> list[Any]:
    decoder = json.JSONDecoder()
    items: list[Any] = []
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            return items
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return items
        items.append(obj)
