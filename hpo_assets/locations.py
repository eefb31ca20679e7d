"""Storage specs and output roots are paths or URLs; a URL may carry a password that must never be shown."""

from __future__ import annotations

import re

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
