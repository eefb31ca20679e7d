"""Optuna storages: a journal file, or an RDB URL (SQLite, PostgreSQL) holding one or many studies.

RDB storages are read in bulk with five SQL queries over Optuna's own tables (after checking the
schema revision in `alembic_version`), falling back to Optuna's API for any other revision; journal
files are read through the API. Both paths produce the same raw records, normalized by `trial_row`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from hpo_assets.locations import expand_env, is_url, mask_password
from hpo_assets.objectives import OBJECTIVES, RESULT_METRICS
from hpo_assets.trials.derive import finish_row
from hpo_assets.trials.identity import UID_ATTR
from hpo_assets.trials.importers.records import (
    ImportProblem,
    SourceError,
    StudyRead,
    as_bool,
    as_float,
    as_int,
    curve_columns,
    params_json,
    params_to_columns,
)
from hpo_assets.trials.names import normalize_budget, normalize_horizon, parse_study_name
from hpo_assets.trials.provenance import fill_imported, study_provenance, tier_from_path
from hpo_assets.trials.schema import CONFIG_COLUMNS, curve_length

# Optuna RDB schema revisions whose tables the bulk reader knows (optuna 3.0 .. 5.x).
KNOWN_REVISIONS = {"v3.0.0.d", "v3.2.0.a"}
_METRICS = [*RESULT_METRICS, "duration_sec"]
_ARCH_ATTRS = [*CONFIG_COLUMNS, "epochs_config"]  # the trial attrs that hold its configuration


@dataclass
class RawTrial:
    number: int
    state: str
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float | None] = field(default_factory=dict)


@dataclass
class RawStudy:
    name: str
    direction: str  # "maximize" | "minimize"
    user_attrs: dict[str, Any]
    trials: list[RawTrial]


def is_journal_file(path: Path) -> bool:
    return path.is_file() and path.suffix == ".journal"


def is_sqlite_file(path: Path) -> bool:
    return path.is_file() and path.suffix in {".db", ".sqlite", ".sqlite3"}


# How a writer may record the number of model inputs (study or trial user attribute).
INPUT_COUNT_ATTRS = ("n_features", "num_features", "n_inputs", "input_dim", "feature_count")
FEATURE_LIST_ATTRS = ("feature_set", "feature_columns", "features")


def _feature_names(value: Any) -> list[str] | None:
    if isinstance(value, str) and value.strip():
        return [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def recorded_input_count(study_attrs: dict[str, Any], trial_attrs: dict[str, Any]) -> int | None:
    """The number of model inputs the study or trial recorded (a count, else the length of a recorded
    feature list), trial first; None when neither says. A tier name does not fix the count: "a<n> = n + 5
    OHLCV" gives a200 205 inputs, and the a200 campaign reviewed in issue 18 had 211."""
    for attrs in (trial_attrs, study_attrs):
        for key in INPUT_COUNT_ATTRS:
            v = attrs.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
        for key in FEATURE_LIST_ATTRS:
            names = _feature_names(attrs.get(key))
            if names:
                return len(names)
    return None


def _state_reason(state: str, ua: dict[str, Any]) -> str | None:
    if state == "FAIL":
        return str(ua.get("fail_reason") or ua.get("diverged_reason") or "failed (no reason recorded)")
    if state == "PRUNED":
        epoch = ua.get("pruned_epoch")
        return f"pruned at epoch {epoch}" if epoch is not None else "pruned"
    if state == "RUNNING":
        return "running, or left RUNNING by a killed run"
    if state == "WAITING":
        return "enqueued, not started"
    return None


def trial_row(study: RawStudy, trial: RawTrial, source_path: str) -> dict[str, Any]:
    """One Optuna trial (per the live-study contract) as a schema row."""
    ua = trial.user_attrs
    sa = study.user_attrs
    name = parse_study_name(study.name)
    objective_name = str(sa.get("objective") or "value")
    curve = curve_columns(ua.get("learning_curve"))
    key = objective_name if objective_name in OBJECTIVES else None
    if not curve_length(curve) and trial.intermediate and key:
        steps = sorted(trial.intermediate)
        values = [trial.intermediate[s] for s in steps]
        none = [None] * len(steps)
        curve = {
            "epoch": steps,
            "train_loss": none,
            "val_loss": values if key == "val_loss" else none,
            "val_auc": values if key == "val_auc" else none,
            "lr": none,
            "seconds": none,
        }
    columns = params_to_columns(trial.params)
    columns.update(
        {
            k: v
            for k, v in params_to_columns({k: ua[k] for k in _ARCH_ATTRS if k in ua}).items()
            if v is not None
        }
    )
    row: dict[str, Any] = {
        "study": study.name,
        "source": "optuna_storage",
        "source_path": source_path,
        "budget": name.budget or normalize_budget(sa.get("budget")),
        "horizon": name.horizon or normalize_horizon(sa.get("horizon")),
        "tier": name.tier or (str(sa["tier"]) if sa.get("tier") is not None else None),
        "trial_num": trial.number,
        **study_provenance(sa),
        "state": trial.state,
        "state_reason": _state_reason(trial.state, ua),
        **columns,
        "objective": trial.value,
        "objective_name": objective_name,
        "direction": study.direction,
        **{k: as_float(ua.get(k)) for k in _METRICS},
        "forced_extreme": as_bool(ua.get("forced_extreme")),
        "extreme_type": str(ua["extreme_type"]) if ua.get("extreme_type") is not None else None,
        "transferred_from": str(ua["transferred_from"]) if ua.get("transferred_from") else None,
        "params_json": params_json(trial.params),
        "learning_curve": curve,
    }
    if trial.state == "COMPLETE" and (trial.value is None or not math.isfinite(trial.value)):
        row["state_reason"] = f"COMPLETE but the objective value is {trial.value!r}: objective left null"
    ours = sa.get("source") == "hpo_study"  # written by this project's hpo_study (the live-study contract)
    # the inputs the study or trial recorded; only where neither says does fill_imported assume the tier's
    row["n_features"] = recorded_input_count(sa, ua) or row["n_features"]
    fill_imported(
        row,
        tier=None if is_url(source_path) else tier_from_path(Path(source_path).parent),
        n_features=row["n_features"],
        shape=sa,
        keep_recorded_count=ours,  # our trials counted their own model; another writer's count is its model's
    )
    # The epoch the metrics measure: `metrics_epoch`, or the trainer's `best_epoch` in studies written by
    # hpo_study (the restored checkpoint); another writer's `best_epoch` may mean anything: left null.
    recorded = {
        "metrics_epoch": as_int(ua.get("metrics_epoch", ua.get("best_epoch") if ours else None)),
        "epochs_trained": as_int(ua.get("epochs_trained")),
        "early_stopped": as_bool(ua.get("early_stopped")),
    }
    guard = as_bool(ua.get("diverged")) is True
    return finish_row(
        row,
        guard_fired=guard,
        guard_reason=ua.get("diverged_reason") or None,
        guard_epoch=as_int(ua.get("diverge_epoch")),
        recorded=recorded,
    )


def _to_read(study: RawStudy, source_path: str) -> StudyRead:
    read = StudyRead(study=study.name, source="optuna_storage", source_path=source_path)
    uid = study.user_attrs.get(UID_ATTR)
    read.uid = str(uid) if uid else None
    for trial in study.trials:
        read.rows.append(trial_row(study, trial, source_path))
    return read


# ---- API path (journal files, unknown RDB revisions) ----


def open_source(spec: str) -> Any:
    """An existing storage to read (nothing is created): SourceError when it is missing or unreadable."""
    from hpo_assets.search.storage import StorageError, open_storage

    try:
        return open_storage(spec, create=False)
    except StorageError as exc:
        raise SourceError(str(exc)) from None


def _read_api(spec: str, study_names: list[str] | None) -> list[RawStudy]:
    import optuna

    storage = open_source(spec)
    try:
        names = optuna.get_all_study_names(storage)
    except Exception as exc:
        raise SourceError(f"{spec}: cannot list studies ({type(exc).__name__}: {exc})") from None
    studies = []
    for name in study_names or names:
        if name not in names:
            raise SourceError(f"{spec}: no study named {name!r} (found {names})")
        study = optuna.load_study(study_name=name, storage=storage)
        direction = study.directions[0].name.lower()
        trials = [
            RawTrial(
                number=t.number,
                state=t.state.name,
                value=t.value if t.values is not None else None,
                params=dict(t.params),
                user_attrs=dict(t.user_attrs),
                intermediate=dict(t.intermediate_values),
            )
            for t in study.get_trials(deepcopy=False)
        ]
        studies.append(
            RawStudy(name=name, direction=direction, user_attrs=dict(study.user_attrs), trials=trials)
        )
    return studies


# ---- bulk SQL path (RDB storages) ----


@lru_cache(maxsize=4096)
def _distribution(distribution_json: str) -> Any:
    from optuna.distributions import json_to_distribution

    return json_to_distribution(distribution_json)


_INF = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def schema_revision(url: str) -> str | None:
    """Optuna's schema revision of an RDB storage (from `alembic_version`), or None when unreadable."""
    import sqlalchemy as sa

    engine = sa.create_engine(expand_env(url))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return None
    finally:
        engine.dispose()


def _read_sql(url: str, study_names: list[str] | None) -> list[RawStudy]:
    import sqlalchemy as sa

    engine = sa.create_engine(expand_env(url))
    raw_conn = (
        engine.raw_connection()
    )  # plain DB-API tuples: much faster than SQLAlchemy Row objects at 10k+ trials
    try:
        cursor = raw_conn.cursor()

        def q(sql: str) -> list[tuple[Any, ...]]:
            cursor.execute(sql)
            return list(cursor.fetchall())

        all_studies = dict(q("SELECT study_id, study_name FROM studies"))
        wanted = study_names or sorted(all_studies.values())
        by_name = {v: k for k, v in all_studies.items()}
        for name in wanted:
            if name not in by_name:
                raise SourceError(f"{url}: no study named {name!r} (found {sorted(by_name)})")
        ids = {by_name[n] for n in wanted}
        directions = {
            sid: d
            for sid, d, obj in q("SELECT study_id, direction, objective FROM study_directions")
            if obj == 0
        }
        sattrs: dict[int, dict[str, Any]] = defaultdict(dict)
        for sid, key, value_json in q("SELECT study_id, key, value_json FROM study_user_attributes"):
            sattrs[sid][key] = json.loads(value_json)
        trials: dict[int, tuple[int, RawTrial]] = {}
        for tid, number, sid, state in q(
            "SELECT trial_id, number, study_id, state FROM trials ORDER BY study_id, number"
        ):
            if sid in ids:
                trials[tid] = (
                    sid,
                    RawTrial(number=number, state=str(getattr(state, "name", state)), value=None),
                )
        for tid, value, vtype in q(
            "SELECT trial_id, value, value_type FROM trial_values WHERE objective = 0"
        ):
            if tid in trials:
                trials[tid][1].value = _INF.get(str(getattr(vtype, "name", vtype)), value)
        for tid, pname, pvalue, djson in q(
            "SELECT trial_id, param_name, param_value, distribution_json FROM trial_params"
        ):
            if tid in trials:
                trials[tid][1].params[pname] = _distribution(djson).to_external_repr(pvalue)
        for tid, key, value_json in q("SELECT trial_id, key, value_json FROM trial_user_attributes"):
            if tid in trials:
                trials[tid][1].user_attrs[key] = json.loads(value_json)
        # intermediate values only stand in for a missing learning curve: skip the biggest table when unneeded
        if any(not t.user_attrs.get("learning_curve") for _, t in trials.values()):
            for tid, step, ivalue, itype in q(
                "SELECT trial_id, step, intermediate_value, intermediate_value_type FROM trial_intermediate_values"
            ):
                if tid in trials:
                    trials[tid][1].intermediate[step] = _INF.get(str(getattr(itype, "name", itype)), ivalue)
    finally:
        raw_conn.close()
        engine.dispose()
    grouped: dict[int, list[RawTrial]] = defaultdict(list)
    for sid, trial in trials.values():
        grouped[sid].append(trial)
    return [
        RawStudy(
            name=all_studies[sid],
            direction=str(directions.get(sid, "MINIMIZE")).lower(),
            user_attrs=sattrs.get(sid, {}),
            trials=grouped.get(sid, []),
        )
        for sid in sorted(ids, key=lambda s: all_studies[s])
    ]


def read_optuna_storage(
    spec: str, study_names: list[str] | None = None, *, bulk: bool = True
) -> list[StudyRead]:
    """Every study (or the named ones) of an Optuna storage URL or journal file, as schema rows.

    RDB URLs with a known schema revision are read with SQL (`bulk=True`), otherwise through Optuna's API.
    Raises SourceError when the storage cannot be opened or a named study is absent.
    """
    spec = str(spec)
    problems: list[ImportProblem] = []
    raw: list[RawStudy] | None = None
    if bulk and is_url(spec):
        if spec.startswith("sqlite:///") and not Path(spec.removeprefix("sqlite:///")).is_file():
            open_source(spec)  # the one message for a missing SQLite file
        revision = schema_revision(spec)
        if revision in KNOWN_REVISIONS:
            try:
                raw = _read_sql(spec, study_names)
            except SourceError:
                raise
            except Exception as exc:
                problems.append(
                    ImportProblem(
                        spec, f"bulk SQL read failed ({type(exc).__name__}: {exc}); used Optuna's API"
                    )
                )
    if raw is None:
        raw = _read_api(spec, study_names)
    if not raw:
        raise SourceError(f"{spec}: holds no Optuna study (empty, or not an Optuna journal/database)")
    reads = [_to_read(study, mask_password(spec)) for study in raw]  # rows never carry a password
    if reads:
        reads[0].notes.extend(problems)
    return reads
