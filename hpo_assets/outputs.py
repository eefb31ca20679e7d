"""Where asset files live under the outputs root, and how every file is written: whole or not at all.

The outputs root is a local folder or an object-store URL (`s3://bucket/prefix`, any fsspec protocol),
so every worker (a Kubernetes pod per step) reads what another step wrote. Paths below the root are
`pathlib.Path` or `upath.UPath`; the helpers here accept both.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    Locally: a hidden file next to `target`, renamed over it (`os.replace`); its name is unique to this
    write (process id + random), so writers racing for one target never share a temporary file and the
    last rename wins whole. In an object store: the finished file is uploaded as one object (an object
    appears whole or not at all). Either way readers (another step, the UI, a second worker) never see
    half a file, and a failed write leaves the previous version in place.
    """
    if is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            write(tmp)
            os.replace(tmp, target)
        except OSError as exc:  # e.g. a full disk: name the file (polars' own error names none)
            if exc.filename:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return target
    with tempfile.TemporaryDirectory(prefix="hpo-assets-") as folder:
        tmp = Path(folder) / target.name
        write(tmp)
        with open(tmp, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return target


FOLDER_LOCK = ".hpo-assets-write.lock"


@contextmanager
def folder_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """An advisory `flock` on `folder/.hpo-assets-write.lock` (released by the kernel if the holder dies)."""
    fd = os.open(folder / FOLDER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def files_together(folder: Any) -> Iterator[Any]:
    """A staging folder for a set of files that belong together (summary CSV + Parquet + JSON, a report).

    Everything is written into a hidden staging folder inside `folder`; only when the whole set is written
    are its files renamed into `folder`, all under `folder_lock`. Two writers into one folder therefore
    leave one writer's complete set (never rows or files of both), and a writer that fails half-way
    (disk full, killed) leaves the previous set untouched. Renames need no space and take microseconds;
    a reader holding `folder_lock(shared=True)` never sees the set change under it. An object-store
    folder has no lock: its files are written one by one (each object whole).
    """
    if not is_local(folder):
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        try:
            yield staging
        except OSError as exc:  # name the file as the caller knows it, not its staging copy
            name = str(exc.filename or "")
            if not name.startswith(str(staging)):
                raise
            final = folder / Path(name).relative_to(staging)
            why = str(exc.strerror or exc)
            kept = (
                why
                if why.endswith("(the previous files are kept)")
                else f"{why} (the previous files are kept)"
            )
            raise OSError(exc.errno, kept, str(final)) from exc
        files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != FOLDER_LOCK)
        with folder_lock(folder):
            for src in files:
                dest = folder / src.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def relocate_text(staging: Path, folder: Path, names: list[str]) -> None:
    """Files of a staged set that name their own paths (a report's file index): point them at `folder`."""
    for name in names:
        path = staging / name
        if path.is_file():
            text = path.read_text()
            if str(staging) in text:
                write_text(path, text.replace(str(staging), str(folder)))


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
