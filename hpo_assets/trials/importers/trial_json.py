"""Per-trial JSON folders (`<study>/trials/trial_NNN.json`) from the first campaign: `value` is the
validation loss (minimised) and a diverged trial was written with `value` 100.0."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hpo_assets.trials.derive import finish_row
from hpo_assets.trials.importers.records import (
    ImportProblem,
    StudyRead,
    as_float,
    as_int,
    curve_columns,
    finite,
    params_json,
    params_to_columns,
    parse_state,
    unusable_params,
)
from hpo_assets.trials.names import parse_study_name
from hpo_assets.trials.provenance import fill_imported, tier_from_path

_FILE_NUM = re.compile(r"trial_(\d+)\.json$")


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object as a dict; anything else (missing, null, a list) as an empty one."""
    return value if isinstance(value, dict) else {}


def is_trial_json_folder(folder: Path) -> bool:
    trials = folder / "trials"
    return trials.is_dir() and any(trials.glob("trial_*.json"))


def _load(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def read_trial_json_folder(folder: Path) -> StudyRead:
    """Read every `trials/trial_*.json` of one study folder; a bad file is reported and the others read."""
    folder = Path(folder)
    study = folder.name
    name = parse_study_name(study)
    read = StudyRead(study=study, source="trial_json", source_path=str(folder))
    files = sorted((folder / "trials").glob("trial_*.json"))
    seen: set[int] = set()
    for path in files:
        try:
            data = _load(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = (
                f"{exc.msg} at line {exc.lineno} column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else "not UTF-8"
            )
            read.skip(str(path), f"not valid JSON ({why}): trial skipped")
            continue
        except OSError as exc:
            read.skip(str(path), f"cannot be read ({exc.strerror or exc}): trial skipped")
            continue
        row = _row(path, data, study, name, read)
        if row is None:
            read.skipped += 1
            continue
        if row["trial_num"] in seen:
            read.skip(str(path), f"trial number {row['trial_num']} appears twice: later one skipped")
            continue
        seen.add(row["trial_num"])
        read.rows.append(row)
    return read


def _row(path: Path, data: Any, study: str, name: Any, read: StudyRead) -> dict[str, Any] | None:
    where = str(path)
    if not isinstance(data, dict):
        read.problems.append(
            ImportProblem(where, f"expected an object, found {type(data).__name__}: trial skipped")
        )
        return None
    number = as_int(data.get("trial_number", data.get("number")))
    if number is None:
        m = _FILE_NUM.search(path.name)
        if m is None:
            read.problems.append(
                ImportProblem(where, "`trial_number` missing and not in the file name: trial skipped")
            )
            return None
        number = int(m.group(1))
        read.problems.append(
            ImportProblem(where, f"`trial_number` missing: using {number} from the file name")
        )
    state = parse_state(data.get("state"))
    if state is None:
        read.problems.append(
            ImportProblem(where, f"unknown state {data.get('state')!r}: trial {number} skipped")
        )
        return None
    params = _mapping(data.get("params"))
    arch = _mapping(data.get("architecture"))
    attrs = _mapping(data.get("user_attrs"))
    reason = None
    if "value" not in data:
        read.problems.append(ImportProblem(where, f"trial {number} has no `value`: objective left null"))
        reason = "the source has no value for this trial"
    value = as_float(data.get("value"))
    if state == "COMPLETE" and "value" in data and (value is None or value != value):
        read.problems.append(
            ImportProblem(
                where, f"trial {number} is COMPLETE with value {data.get('value')!r}: kept, objective null"
            )
        )
    if reason and state == "COMPLETE":
        reason = f"COMPLETE but {reason}: objective left null"
    elif state == "COMPLETE" and value is None:
        reason = "COMPLETE but the value is null: objective left null"
    curve = curve_columns(attrs.get("learning_curve"))
    if attrs.get("learning_curve") is not None and curve is None:
        read.problems.append(ImportProblem(where, "learning_curve is not a list of records: curve not used"))
    all_params = {**params, **{k: v for k, v in arch.items() if k not in params}}
    for bad in unusable_params(all_params):
        read.problems.append(
            ImportProblem(where, f"trial {number} parameter {bad} is not a usable number: left null")
        )
    row: dict[str, Any] = {
        "study": study,
        "source": "trial_json",
        "source_path": str(path.parent.parent),
        "budget": name.budget,
        "horizon": name.horizon,
        "tier": tier_from_path(path.parent.parent),
        "trial_num": number,
        "label_threshold": name.label_threshold,
        "state": state,
        "state_reason": reason,
        **params_to_columns(all_params),
        "objective": value,
        "objective_name": "val_loss",
        "direction": "minimize",
        "val_loss": value,
        "accuracy": finite(attrs.get("val_accuracy")),
        "duration_sec": finite(data.get("duration_seconds")),
        "params_json": params_json(all_params),
        "learning_curve": curve,
    }
    fill_imported(row, tier=row["tier"], n_features=None)
    # `value` is a validation loss of some epoch the file does not name: best_epoch stays null (not guessed)
    return finish_row(row)
