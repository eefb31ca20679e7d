"""Locks that several workers of one study take: creating Optuna's tables once, and claiming a trial slot.

Optuna's RDBStorage creates its tables on first use without a lock; two workers starting together on an
empty PostgreSQL database race and one fails with `UniqueViolation ... pg_type_typname_nsp_index`.
And a worker that counts the finished trials and then asks for a new one can be overtaken by another
doing the same, so N workers overshoot the target by up to N-1 trials. Both steps therefore run under a
lock all workers share: a PostgreSQL advisory lock for a PostgreSQL URL, an advisory file lock
(`flock`, released by the kernel if the holder dies) next to a journal or SQLite file. MySQL gets no
lock (not used by the project): its workers may overshoot as before.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpo_assets.locations import expand_env, is_url

SCHEMA_KEY = "hpo-assets:optuna-schema"


def _dialect(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (same in every process and machine)."""
    return zlib.crc32(name.encode()) - (1 << 31)


@contextmanager
def _pg_lock(url: str, name: str) -> Iterator[None]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                conn.commit()
    finally:
        engine.dispose()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    if not path.parent.is_dir():  # nothing to lock yet: opening the storage itself says what is wrong
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only folder (someone else's storage, read for an import): nobody writes there
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def locked(spec: str, name: str, file: Path | None = None) -> Iterator[None]:
    """Hold the lock `name` of storage `spec` (for a journal folder: a lock file beside `file`)."""
    if is_url(spec):
        url = expand_env(spec)
        dialect = _dialect(url)
        if dialect == "postgresql":
            with _pg_lock(url, name):
                yield
            return
        if dialect == "sqlite" and url.removeprefix("sqlite:///") not in ("", ":memory:"):
            db = Path(url.removeprefix("sqlite:///"))
            with _file_lock(db.with_name(f".{db.name}.{zlib.crc32(name.encode()):08x}.lock")):
                yield
            return
        yield
        return
    assert file is not None, "a journal lock needs the journal file"
    with _file_lock(file.with_name(f".{file.name}.claim.lock")):
        yield
