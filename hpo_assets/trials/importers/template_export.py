"""Export folders (`all_trials.json`, `best_params.json`, `trial_metrics.csv`) written by the HPO template.

The legacy style (items without `user_attrs`, no CSV) is read by the same code (`export_style`).
In both, `value` is the validation ROC-AUC, maximised.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from hpo_assets.trials.derive import finish_row
from hpo_assets.trials.importers.records import (
    ImportProblem,
    SourceError,
    StudyRead,
    as_bool,
    as_float,
    as_int,
    finite,
    params_json,
    params_to_columns,
    parse_state,
    read_json_file,
    unusable_params,
)
from hpo_assets.trials.names import normalize_budget, normalize_horizon, parse_study_name
from hpo_assets.trials.provenance import fill_imported, tier_from_path

ALL_TRIALS = "all_trials.json"
BEST_PARAMS = "best_params.json"
TRIAL_METRICS = "trial_metrics.csv"
METRICS_COLUMNS = [
    "trial",
    "auc",
    "precision",
    "recall",
    "pred_min",
    "pred_max",
    "forced_extreme",
    "extreme_type",
    "duration_sec",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff_ratio",
    "learning_rate",
    "dropout",
    "weight_decay",
]
_CSV_PARAMS = ["d_model", "n_layers", "n_heads", "d_ff_ratio", "learning_rate", "dropout", "weight_decay"]


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object as a dict; anything else (missing, null, a list) as an empty one."""
    return value if isinstance(value, dict) else {}


def is_export_folder(folder: Path) -> bool:
    return (folder / ALL_TRIALS).is_file()


def export_style(folder: Path, items: list[Any] | None = None) -> str:
    """`template_export` when trials carry user_attrs or a trial_metrics.csv exists, else `legacy_export`."""
    if (folder / TRIAL_METRICS).is_file():
        return "template_export"
    if items and any(isinstance(it, dict) and "user_attrs" in it for it in items):
        return "template_export"
    return "legacy_export"


def _read_metrics_csv(path: Path, problems: list[ImportProblem]) -> dict[int, dict[str, str]]:
    """trial_metrics.csv rows by trial number; unexpected/missing columns and bad rows are reported."""
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            extra = [c for c in header if c not in METRICS_COLUMNS]
            missing = [c for c in METRICS_COLUMNS if c not in header]
            if extra or missing:
                parts = ([f"unexpected columns {extra}"] if extra else []) + (
                    [f"missing columns {missing}"] if missing else []
                )
                problems.append(
                    ImportProblem(str(path), "; ".join(parts) + " (known columns used, the rest ignored)")
                )
            if "trial" not in header:
                problems.append(ImportProblem(str(path), "no `trial` column: file not used"))
                return {}
            rows: dict[int, dict[str, str]] = {}
            for line_no, row in enumerate(reader, start=2):
                if None in row:
                    problems.append(
                        ImportProblem(f"{path}[line {line_no}]", f"{len(row[None])} more values than columns")
                    )
                    row.pop(None)
                num = as_int(row.get("trial"))
                if num is None:
                    problems.append(
                        ImportProblem(
                            f"{path}[line {line_no}]",
                            f"trial number {row.get('trial')!r} is not an integer: row not used",
                        )
                    )
                    continue
                rows[num] = {k: v for k, v in row.items() if v not in (None, "")}
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(ImportProblem(str(path), f"cannot be read as CSV ({exc}): file not used"))
        return {}


def _forced_params(user_attrs: dict[str, Any], csv_row: dict[str, str] | None) -> dict[str, Any]:
    """Parameters of a forced trial whose `params` is `{}`: from user_attrs.forced_*, else from its CSV row."""
    forced = {
        k.removeprefix("forced_"): v
        for k, v in user_attrs.items()
        if k.startswith("forced_") and k != "forced_extreme"
    }
    if forced:
        return forced
    if csv_row:
        return {k: csv_row[k] for k in _CSV_PARAMS if k in csv_row}
    return {}


def read_export(folder: Path, style: str | None = None) -> StudyRead:
    """Read one export folder into schema rows. Raises SourceError when all_trials.json is unusable."""
    folder = Path(folder)
    study = folder.name
    items, problems = read_json_file(folder / ALL_TRIALS)
    if isinstance(items, dict) and isinstance(items.get("trials"), list):
        items = items["trials"]
    if not isinstance(items, list):
        raise SourceError(f"{folder / ALL_TRIALS}: expected a list of trials, found {type(items).__name__}")
    style = style or export_style(folder, items)
    read = StudyRead(study=study, source=style, source_path=str(folder), problems=list(problems))
    name = parse_study_name(study)
    budget, horizon, tier = name.budget, name.horizon, tier_from_path(folder)
    meta: dict[str, Any] = {}
    if (folder / BEST_PARAMS).is_file():
        try:
            loaded, more = read_json_file(folder / BEST_PARAMS)
            read.problems.extend(more)
            meta = loaded if isinstance(loaded, dict) else {}
        except SourceError as exc:
            read.problems.append(ImportProblem(str(folder / BEST_PARAMS), str(exc).split(": ", 1)[-1]))
    said = {
        "budget": normalize_budget(meta.get("budget")),
        "horizon": normalize_horizon(meta.get("horizon")),
        "tier": meta.get("tier") if isinstance(meta.get("tier"), str) else None,
    }
    named = {"budget": budget, "horizon": horizon, "tier": tier}
    for key, from_name in named.items():
        if said[key] is not None and from_name is not None and said[key] != from_name:
            read.notes.append(
                ImportProblem(
                    str(folder / BEST_PARAMS),
                    f"says {key} {said[key]!r}; using {from_name!r} from the folder "
                    + ("path" if key == "tier" else "name"),
                )
            )
    budget, horizon, tier = (
        named[k] if named[k] is not None else said[k] for k in ("budget", "horizon", "tier")
    )
    metrics = _read_metrics_csv(folder / TRIAL_METRICS, read.problems)

    seen: set[int] = set()
    for pos, item in enumerate(items):
        where = f"{folder / ALL_TRIALS}[item {pos}]"
        if not isinstance(item, dict):
            read.skip(where, f"not an object ({type(item).__name__}): trial skipped")
            continue
        number = as_int(item.get("number"))
        if number is None:
            read.skip(where, f"`number` missing or not an integer ({item.get('number')!r}): trial skipped")
            continue
        if number in seen:
            read.skip(where, f"trial number {number} appears twice: later one skipped")
            continue
        state = parse_state(item.get("state"))
        if state is None:
            read.skip(where, f"unknown state {item.get('state')!r}: trial {number} skipped")
            continue
        seen.add(number)
        user_attrs = _mapping(item.get("user_attrs"))
        csv_row = metrics.get(number)
        raw_params = _mapping(item.get("params"))
        forced = as_bool(user_attrs.get("forced_extreme"))
        if forced is None and csv_row:
            forced = as_bool(csv_row.get("forced_extreme"))
        if not raw_params:
            raw_params = _forced_params(user_attrs, csv_row)
        for bad in unusable_params(raw_params):
            read.problems.append(
                ImportProblem(where, f"trial {number} parameter {bad} is not a usable number: left null")
            )
        reason = None
        if "value" not in item:
            read.problems.append(ImportProblem(where, f"trial {number} has no `value`: objective left null"))
            reason = "the source has no value for this trial"
            value = None
        else:
            value = as_float(item["value"])
            if item["value"] is not None and value is None:
                read.problems.append(
                    ImportProblem(
                        where, f"trial {number} value {item['value']!r} is not a number: objective left null"
                    )
                )
                reason = f"value {item['value']!r} is not a number"
            elif state == "COMPLETE" and (value is None or not math.isfinite(value)):
                read.problems.append(
                    ImportProblem(
                        where,
                        f"trial {number} is COMPLETE with value {item['value']!r}: kept, objective null",
                    )
                )
        if reason and state == "COMPLETE":
            reason = f"COMPLETE but {reason}: objective left null"
        elif state == "COMPLETE" and value is None:
            reason = "COMPLETE but the value is null: objective left null"

        def pick(*candidates: Any) -> float | None:
            return next((f for f in (finite(c) for c in candidates) if f is not None), None)

        csv_row = csv_row or {}
        row: dict[str, Any] = {
            "study": study,
            "source": style,
            "source_path": str(folder),
            "budget": budget,
            "horizon": horizon,
            "tier": tier,
            "trial_num": number,
            "label_threshold": name.label_threshold,
            "state": state,
            "state_reason": reason,
            **params_to_columns(raw_params),
            "objective": value,
            "objective_name": "val_auc",
            "direction": "maximize",
            "val_auc": pick(user_attrs.get("val_auc"), csv_row.get("auc"), value),
            "val_loss": as_float(user_attrs.get("val_loss")),
            "precision": pick(user_attrs.get("precision"), csv_row.get("precision")),
            "recall": pick(user_attrs.get("recall"), csv_row.get("recall")),
            "accuracy": pick(user_attrs.get("accuracy")),
            "pred_min": pick(user_attrs.get("pred_min"), csv_row.get("pred_min")),
            "pred_max": pick(user_attrs.get("pred_max"), csv_row.get("pred_max")),
            "train_loss": as_float(user_attrs.get("train_loss")),
            "duration_sec": pick(user_attrs.get("duration_sec"), csv_row.get("duration_sec")),
            "forced_extreme": forced,
            "extreme_type": user_attrs.get("extreme_type") or csv_row.get("extreme_type"),
            "params_json": params_json(raw_params),
            "learning_curve": None,
        }
        if row["extreme_type"] is not None:
            row["extreme_type"] = str(row["extreme_type"])
        fill_imported(row, tier=tier, n_features=None)
        # no `metrics_epoch` (which epoch's model the value measures is not recorded): best_epoch stays null
        recorded = {"epochs_trained": as_int(user_attrs.get("epochs_run", user_attrs.get("epochs_trained")))}
        read.rows.append(finish_row(row, recorded=recorded))
    _check_best_trial(read, meta, folder / BEST_PARAMS)
    return read


def _check_best_trial(read: StudyRead, meta: dict[str, Any], path: Path) -> None:
    """best_params.json's best_trial should hold the largest value (value = ROC-AUC, maximised); say so if not."""
    best = as_int(meta.get("best_trial"))
    values = {r["trial_num"]: r["objective"] for r in read.rows if r["objective"] is not None}
    if best is None or best not in values:
        return
    if values[best] < max(values.values()):
        read.notes.append(
            ImportProblem(
                str(path),
                f"best_trial {best} does not hold the largest value; "
                "values are still read as ROC-AUC, maximised",
            )
        )
