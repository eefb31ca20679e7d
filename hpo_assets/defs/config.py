"""Dagster `Config` classes derived from the library's settings objects, so a field is declared only there.

A derived class has each field's type, default and description (the Launchpad shows them); the checks
stay with the settings object, which the asset builds from the config. Settings may be a pydantic model
(descriptions from `Field(description=...)`) or a dataclass (from `field(metadata={"description": ...})`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import BaseModel, Field, create_model


def _fields(settings: type) -> list[tuple[str, Any, Any, str | None]]:
    """(name, annotation, default, description) of each field of a pydantic model or a dataclass."""
    defaults = settings()
    if isinstance(settings, type) and issubclass(settings, BaseModel):
        return [
            (name, info.annotation, getattr(defaults, name), info.description)
            for name, info in settings.model_fields.items()
        ]
    if dataclasses.is_dataclass(settings):
        hints = typing.get_type_hints(settings)
        return [
            (f.name, hints[f.name], getattr(defaults, f.name), f.metadata.get("description"))
            for f in dataclasses.fields(settings)
        ]
    raise TypeError(f"{settings!r} is neither a pydantic model nor a dataclass")


def config_from(
    settings: type, name: str, module: str, include: Sequence[str] | None = None, **extra: Any
) -> type[dg.Config]:
    """A `dg.Config` named `name` with the fields of `settings` (all, or those in `include`): type, default
    and description; `extra` fields, given as `(annotation, Field(...))`, come first."""
    fields: dict[str, Any] = dict(extra)
    known = _fields(settings)
    missing = sorted(set(include or ()) - {f[0] for f in known})
    if missing:
        raise ValueError(f"{settings.__name__} has no field(s) {missing}")
    for field, annotation, default, description in known:
        if include is None or field in include:
            fields[field] = (annotation, Field(default=default, description=description))
    return create_model(name, __base__=dg.Config, __module__=module, __doc__=settings.__doc__, **fields)
