"""Which study is which: two studies with one name (`hpo-2M-h1` from two machines) are not one study.

Live studies carry `study_uid` (set once, when the study is first created, by search/runner.py): the
same study read twice has the same uid; another study of the same name has another. Studies without a
uid (older journals, export folders) are the same study when their trials are the same (number, state,
value). A same-named, different study is kept beside the first under a name that says where it came
from: `hpo-2M-h1@machineB`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hpo_assets.search.partition import UID_ATTR as UID_ATTR  # set by the runner, read by the importers


def fingerprint(rows: list[dict[str, Any]]) -> tuple:
    def value(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 12)

    return tuple(sorted((r.get("trial_num"), r.get("state"), value(r.get("objective"))) for r in rows))


def same_study(a_uid: str | None, a_rows: list[dict], b_uid: str | None, b_rows: list[dict]) -> bool:
    """True for a re-import of one study; False for another study that has the same name."""
    if a_uid and b_uid:
        return a_uid == b_uid
    return fingerprint(a_rows) == fingerprint(b_rows)


def source_tag(source_path: str) -> str:
    """A short name for where a study came from: the folder of a file, the host/database of a URL."""
    if "://" in source_path:
        rest = source_path.split("://", 1)[1]
        host = rest.rsplit("@", 1)[-1]
        return host.replace("/", ":").strip(":") or "url"
    path = Path(source_path)
    parent = path.parent.name if path.suffix else path.name
    return parent or path.stem or "source"


def distinct_name(name: str, source_path: str, taken: set[str]) -> str:
    base = f"{name}@{source_tag(source_path)}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
