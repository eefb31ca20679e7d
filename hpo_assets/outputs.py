"""Where asset files live under the outputs root, and how every file is written: whole or not at all.

The outputs root is a local folder or an object-store URL (`s3://bucket/prefix`, any fsspec protocol),
so every worker (a Kubernetes pod per step) reads what another step wrote. Paths below the root are
`pathlib.Path` or `upath.UPath`; the helpers here accept both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpo_assets.locations import is_local

# Files under the outputs root, as path parts (one definition each; assets and the library share them).
MARKET_FILE = ("market", "market_data.parquet")
FEATURES_FILE = ("features", "features.parquet")
STUDIES_DIR = ("studies",)
TRIALS_DIR = ("trials",)
TRIAL_TABLE_FILE = ("trials", "trial_table.parquet")
TRIAL_TABLE_REPORT = ("trials", "trial_table_report.json")
SUMMARY_DIR = ("summary",)
ANALYSIS_DIR = ("analysis",)  # coverage, importance, scaling, consistency reports and hpo_report.html


def atomic_write(target: Any, write: Callable[[Path], Any]) -> Any:
    """Call `write(tmp)` on a local temporary file, then put it in place as `target` in one step.

    Locally: a hidden file next to `target`, renamed over it (`os.replace`). In an object store: the
    finished file is uploaded as one object (an object appears whole or not at all). Either way readers
    (another step, the UI, a second worker) never see half a file, and a failed write leaves the
    previous version in place.
    """
    if is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    with tempfile.TemporaryDirectory(prefix="hpo-assets-") as folder:
        tmp = Path(folder) / target.name
        write(tmp)
        with open(tmp, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return target


def write_text(target: Any, text: str) -> Any:
    return atomic_write(target, lambda p: p.write_text(text))


def write_bytes(target: Any, data: bytes) -> Any:
    return atomic_write(target, lambda p: p.write_bytes(data))


def write_parquet(frame: Any, target: Any, metadata: dict[str, str] | None = None) -> Any:
    """A polars frame as Parquet, atomically; `metadata` goes into the file's key-value metadata."""
    if metadata:
        return atomic_write(target, lambda p: frame.write_parquet(p, metadata=metadata))
    return atomic_write(target, frame.write_parquet)


def parquet_metadata(path: Any) -> dict[str, str]:
    """A Parquet file's key-value metadata (what `write_parquet(metadata=...)` stored), local or remote."""
    import polars as pl

    if is_local(path):
        return dict(pl.read_parquet_metadata(path))
    with path.open("rb") as fh:
        return dict(pl.read_parquet_metadata(fh))


def read_parquet(path: Any) -> Any:
    """A Parquet file under any root as a polars frame (remote files are read through fsspec)."""
    import polars as pl

    if is_local(path):
        return pl.read_parquet(path)
    with path.open("rb") as fh:
        return pl.read_parquet(fh)
