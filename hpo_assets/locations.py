"""Storage specs and output roots are paths or URLs; a URL may carry a password that must never be shown."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

MASK = "***"
# Where `hpo-assets study --set storage=URL` puts a password written in URL (see password_to_env).
STORAGE_PASSWORD_ENV = "HPO_ASSETS_STORAGE_PASSWORD"
# A URL inside any text: a scheme, `://`, then everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"(?<![\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
# Where SQLAlchemy's own URL grammar puts the password: after `scheme://user:`, up to the first `@`
# (so it may hold `/`, `:` and `?`; an `@` in a password is written `%40`).
_PASSWORD_SPAN = re.compile(r"^(?P<head>[^:]+://[^:/@]*:)(?P<password>[^@]*)(?P<at>@)")
# Query parameters that carry a secret (`?password=...`, libpq's `sslpassword=`, object-store tokens).
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&][^=&#]*(?:password|passwd|pwd|secret|token|credential)[^=&#]*=)(?P<value>[^&#]*)",
    re.IGNORECASE,
)
_ENV_REFERENCE = re.compile(r"^\$(\{\w+\}|\w+)$")  # `${PGPASSWORD}`: a reference, not a secret


def is_url(spec: str | object) -> bool:
    """A storage spec or output root naming a URL (`postgresql://...`, `s3://...`), not a local path."""
    return "://" in str(spec)


def _mask_url(url: str) -> str:
    """One URL with its password (user-info and query forms) replaced by `***`, parsed as SQLAlchemy does."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        has_password = parsed.password is not None
    except (ArgumentError, ValueError):  # not SQLAlchemy's grammar: mask what the same shape would hold
        has_password = _PASSWORD_SPAN.match(url) is not None
    masked = url
    span = _PASSWORD_SPAN.match(url)
    if has_password and span is not None and not _ENV_REFERENCE.match(span["password"]):
        masked = span["head"] + MASK + url[span.end("password") :]
    return _SECRET_QUERY.sub(
        lambda m: m["key"] + (m["value"] if _ENV_REFERENCE.match(m["value"]) else MASK), masked
    )


def mask_password(text: str | object) -> str:
    """`text` with the password of every URL in it replaced by `***`: `scheme://user:password@host` (any
    characters SQLAlchemy's `make_url` accepts, `/` included) and `?password=` style query parameters.

    Works on a bare URL and on any message or log line that contains one; a `${VAR}` reference is kept.
    """
    return _URL_IN_TEXT.sub(lambda m: _mask_url(m[0]), str(text))


def literal_password(spec: str) -> str | None:
    """The password written literally in a storage URL (user-info or `?password=`), else None."""
    if not is_url(spec):
        return None
    span = _PASSWORD_SPAN.match(spec)
    if span is not None and not _ENV_REFERENCE.match(span["password"]):
        return span["password"]
    return next(
        (m["value"] for m in _SECRET_QUERY.finditer(spec) if not _ENV_REFERENCE.match(m["value"])), None
    )


def password_to_env(spec: str, variable: str) -> tuple[str, str | None]:
    """`spec` with a literal password replaced by a `${variable}` reference, and the password (or None).

    So a URL given on a command line is stored (run configuration, tags, metadata) without its secret;
    the caller puts the password into this process's environment, which its step processes inherit.
    """
    password = literal_password(spec)
    if password is None:
        return spec, None
    ref = "${" + variable + "}"
    span = _PASSWORD_SPAN.match(spec)
    if span is not None and not _ENV_REFERENCE.match(span["password"]):
        return span["head"] + ref + spec[span.end("password") :], password
    return _SECRET_QUERY.sub(
        lambda m: m["key"] + (ref if m["value"] == password else m["value"]), spec
    ), password


def unmask(spec: str, candidates: list[str]) -> str:
    """The real URL behind a masked one (`user:***@host`, `?password=***`), found among `candidates`; else
    `spec` as given."""
    if MASK not in spec:
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
