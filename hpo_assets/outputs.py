"""Where asset files live under the outputs root, and how every file is written: whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Files under the outputs root, as path parts (one definition each; assets and the library share them).
MARKET_FILE = ("market", "market_data.parquet")
FEATURES_FILE = ("features", "features.parquet")
STUDIES_DIR = ("studies",)
TRIALS_DIR = ("trials",)
TRIAL_TABLE_FILE = ("trials", "trial_table.parquet")
TRIAL_TABLE_REPORT = ("trials", "trial_table_report.json")
SUMMARY_DIR = ("summary",)


def atomic_write(target: Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a hidden file next to `target`, then rename it over `target`.

    Readers (another step, the UI, a second worker) never see a half-written file, and a failed write
    leaves the previous version in place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_text(target: Path, text: str) -> Path:
    return atomic_write(target, lambda p: p.write_text(text))


def write_bytes(target: Path, data: bytes) -> Path:
    return atomic_write(target, lambda p: p.write_bytes(data))


def write_parquet(frame: Any, target: Path) -> Path:
    """A polars frame as Parquet, atomically."""
    return atomic_write(target, frame.write_parquet)
