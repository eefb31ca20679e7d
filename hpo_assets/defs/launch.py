"""`hpo-assets study KEY`: one study partition from the command line, its key and config checked first.

Dagster's own CLI (`dagster asset materialize --partition 3M|h1`, or a string where a number belongs)
rejects such input with a long traceback before any project code runs; this command checks the same
things first and says in one line what is wrong and what is valid.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from hpo_assets.search.partition import parse_partition


class LaunchError(ValueError):
    """A key or config value the user can fix; the message names it and the valid choices."""


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


def parse_settings(config_json: str, assignments: list[str]) -> dict[str, Any]:
    """`--config-json '{...}'` and `--set name=value` (YAML-typed values) as one dict of hpo_study fields."""
    values: dict[str, Any] = {}
    if config_json:
        try:
            given = json.loads(config_json)
        except ValueError as exc:
            raise LaunchError(f"--config-json is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise LaunchError(
                "--config-json must be a JSON object of hpo_study fields, e.g. '{\"n_trials\": 5}'"
            )
        values.update(given)
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise LaunchError(f"--set {item!r} must read name=value, e.g. n_trials=5")
        try:
            values[name.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[name.strip()] = raw
    return values


def check_study_config(values: dict[str, Any]) -> dict[str, Any]:
    """The hpo_study config as Dagster will accept it; one clear error for an unknown field or a wrong type."""
    from pydantic import ValidationError

    from hpo_assets.defs.assets.studies import HpoStudyConfig

    fields = sorted(HpoStudyConfig.model_fields)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise LaunchError(f"hpo_study config: unknown field(s) {unknown}; valid fields: {', '.join(fields)}")
    for name, value in values.items():  # pydantic would turn "5" or 5.0 into 5; Dagster's config does not
        kind = HpoStudyConfig.model_fields[name].annotation
        ok = {
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, int | float) and not isinstance(value, bool),
            bool: isinstance(value, bool),
            str: isinstance(value, str),
        }.get(kind, True)  # type: ignore[call-overload, arg-type]
        if not ok:
            word = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[kind]  # type: ignore[index]
            raise LaunchError(f"hpo_study config: {name} must be {word}, got {value!r}")
    try:
        config = HpoStudyConfig(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        word = _TYPE_WORDS.get(err["type"], err["msg"])
        raise LaunchError(f"hpo_study config: {name} must be {word}, got {err.get('input')!r}") from None
    from hpo_assets.defs.assets.studies import resolve_config

    try:  # the values themselves (ranges, choices, profile), as the asset checks them
        resolve_config(config).options()
    except ValueError as exc:
        raise LaunchError(f"hpo_study config: {exc}") from None
    return values


def check_key(key: str) -> str:
    return parse_partition(key).key


def run_study_partition(key: str, values: dict[str, Any], pool_wait_s: float) -> int:
    """Materialize one hpo_study partition in this process (as `make demo` does), after the checks above."""
    import dagster as dg

    from hpo_assets import settings
    from hpo_assets.defs.resources import HpoPaths
    from hpo_assets.demo import _pool_ready, _run
    from hpo_assets.outputs import FEATURES_FILE

    key = check_key(key)
    values = check_study_config(values)
    features = HpoPaths().outputs(*FEATURES_FILE)
    if not features.is_file():
        raise LaunchError(f"no features at {features}: run `hpo-assets demo` or materialize market_job first")
    from dagster._utils.interrupts import setup_interrupt_handlers

    from hpo_assets.definitions import defs

    setup_interrupt_handlers()
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    Path(home).mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.get()
    ok = _pool_ready(instance, pool_wait_s) and _run(
        defs, "study_job", instance, partition_key=key, run_config={"ops": {"hpo_study": {"config": values}}}
    )
    return 0 if ok else 1
