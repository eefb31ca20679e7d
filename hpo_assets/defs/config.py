"""Dagster `Config` classes derived from the library's settings objects, so a field is declared only there.

A derived class has each field's type, default and description (the Launchpad shows them); the checks
stay with the settings object, which the asset builds from the config.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import BaseModel, Field, create_model


def config_from(settings: type[BaseModel], name: str, module: str, **extra: Any) -> type[dg.Config]:
    """A `dg.Config` named `name` with every field of `settings` (type, default, description), plus `extra`
    fields given as `(annotation, Field(...))` in front."""
    defaults = settings()
    fields: dict[str, Any] = dict(extra)
    for field, info in settings.model_fields.items():
        fields[field] = (
            info.annotation,
            Field(default=getattr(defaults, field), description=info.description),
        )
    return create_model(name, __base__=dg.Config, __module__=module, __doc__=settings.__doc__, **fields)
