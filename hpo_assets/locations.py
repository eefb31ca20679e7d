"""Storage specs and output roots are paths or URLs; a URL may carry a password that must never be shown."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)")
MASK = "***"


def is_url(spec: str | object) -> bool:
    """A storage spec or output root naming a URL (`postgresql://...`, `s3://...`), not a local path."""
    return "://" in str(spec)


def mask_password(text: str | object) -> str:
    """`text` with the password of every `scheme://user:password@host` in it replaced by `***`.

    Works on a bare URL and on any message or log line that contains one.
    """
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], str(text))


def unmask(spec: str, candidates: list[str]) -> str:
    """The real URL behind a masked one (`user:***@host`), found among `candidates`; else `spec` as given."""
    if MASK + "@" not in spec:
        return spec
    return next((c for c in candidates if c and c != spec and mask_password(c) == spec), spec)


def expand_env(spec: str) -> str:
    """A URL with `${VAR}` references (e.g. a password kept in the environment) filled from the environment.

    Configuration then holds the reference, never the secret.
    """
    return os.path.expandvars(spec) if is_url(spec) else spec


def as_path(spec: str | os.PathLike[str], base: Path | None = None) -> Path | Any:
    """A local `Path` (relative ones taken from `base`) or, for a URL such as `s3://bucket/prefix`, a
    `upath.UPath` over fsspec: the same pathlib API, so callers need not care where files live.

    Object-store credentials and endpoint come from the store's usual environment (for S3:
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...), never from this project.
    """
    if is_url(spec):
        from upath import UPath

        return UPath(str(spec))
    path = Path(spec).expanduser()
    return path if path.is_absolute() or base is None else base / path


def is_local(path: object) -> bool:
    return isinstance(path, Path)
