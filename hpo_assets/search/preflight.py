"""What `hpo-assets study` checks before it starts a run, so a bad value is one line, not a failed run.

Settings pass their up-front check (`study_settings.check_values`: types, ranges, choices) and still
fail inside the run: a window date that is not a date, a device this machine lacks, an architecture
outside the budget's space, a storage that cannot be reached. Inside the run each is a step failure with
Dagster's stack traces around it (and the storage already opened); here each is a ValueError naming the
setting, raised before anything is created.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hpo_assets.locations import expand_env, is_url, mask_password

DATE_FIELDS = ("start", "end", "val_start", "test_start")


def _check_date(name: str, value: str) -> None:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a date (write it as YYYY-MM-DD)") from None


def check_storage_reachable(spec: str) -> None:
    """A storage URL's database answers (nothing is created in it); a folder is not a file."""
    from pathlib import Path

    if not is_url(spec):
        path = Path(spec).expanduser()
        if path.suffix != ".journal" and path.exists() and not path.is_dir():
            raise ValueError(f"storage {spec!r} is a file, not a folder for journal files")
        return
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from hpo_assets.search.storage import StorageError, _check_url

    try:
        _check_url(spec)
    except StorageError as exc:
        raise ValueError(str(exc)) from None
    url = expand_env(spec)
    if url.startswith("sqlite:"):
        return  # a local file: opening it is creating it, which the run does
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # driver errors: the first line of the cause, the password masked
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"storage URL {mask_password(spec)!r} cannot be reached: {mask_password(reason)}"
        ) from None
    finally:
        engine.dispose()


def check_study_run(key: str, values: dict[str, Any], storage: str) -> None:
    """Raise ValueError naming the first setting a run of partition `key` with `values` would refuse."""
    from hpo_assets.search.build import study_space
    from hpo_assets.search.partition import parse_partition
    from hpo_assets.search.study_settings import study_settings
    from hpo_assets.training.device import pick_device

    part = parse_partition(key)
    settings = study_settings(
        str(values.get("profile") or ""), **{k: v for k, v in values.items() if k != "profile"}
    )
    for name in DATE_FIELDS:
        value = str(getattr(settings, name, "") or "")
        if value:
            _check_date(name, value)
    if settings.device.strip().lower() not in ("", "auto"):
        pick_device(settings.device)
    study_space(part.budget, None, settings)  # architectures outside the budget's space
    check_storage_reachable(settings.storage or storage)
