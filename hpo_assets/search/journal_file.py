"""Journal files that a killed writer left half-written: find the damage, move a torn tail aside.

An Optuna journal is one JSON record per line, appended under a lock. A process killed in the middle
of an append leaves a last line without its newline. Optuna ignores such a line when reading, but the
next append lands right after it, fusing the torn bytes and the new record into one line that no
reader accepts again (and whose error says "line 1 column 52", counted inside the line). So every
append (`JournalFile.append_logs`) first looks at the file's last byte under the append lock, and a
torn tail is moved to `<file>.torn-<UTC time>` (nothing is deleted) and the file cut back to its last
complete record before the new records are written; a writer opening a journal does the same
(`repair_torn_tail`). The append lock is a kernel `flock` (`AppendLock`), released the moment its holder
dies, so a killed writer never makes the others wait (Optuna's own symlink lock waits 30 s, then breaks).
Every hpo-assets writer takes it; another program appending to the same journal must too. A damaged
line with complete lines after it cannot be repaired safely; `scan` names it with its line number.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock, get_lock_file

_log = logging.getLogger("hpo_assets.storage")


class JournalDamaged(ValueError):
    """A complete line that is not a journal record; the message names the file and the line number."""


RECORD_START = b'{"op_code":'  # how Optuna writes every record (json.dumps, compact separators)


def _may_be_torn_record(tail: bytes) -> bool:
    """Could `tail` be the start of a record cut short? (Never true for a file that is not a journal.)"""
    n = min(len(tail), len(RECORD_START))
    return tail[:n] == RECORD_START[:n]


@dataclass(frozen=True)
class Scan:
    """Where the complete records end, and the torn bytes after them (b"" when the file is whole)."""

    good_end: int
    n_records: int
    torn: bytes


@dataclass(frozen=True)
class TornTail:
    path: Path
    side_file: Path
    n_bytes: int
    n_records: int

    def describe(self) -> str:
        return (
            f"journal {self.path}: a half-written last record ({self.n_bytes} bytes, left by a killed writer) "
            f"was moved to {self.side_file.name}; the study continues from its {self.n_records} complete records"
        )


def _record_problem(line: bytes, full: bool = False) -> str | None:
    if (
        not full
        and line.startswith(RECORD_START)
        and line.rstrip().endswith(b"}")
        and line.count(RECORD_START) == 1
    ):
        return None  # the shape of every record Optuna writes: no need to parse it (keeps big files fast)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:  # its own "line 1" counts inside the line: say the column only
        return f"not JSON ({exc.msg} at column {exc.colno})"
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON ({exc})"
    if not isinstance(record, dict) or "op_code" not in record:
        return "JSON, but not an Optuna journal record (no op_code)"
    return None


def scan(path: Path, *, full: bool = False) -> Scan:
    """Check every line of a journal; raises JournalDamaged for a bad line that has lines after it.

    Lines shaped like a record are taken as one unless `full` (then every line is parsed as JSON).
    """
    data = path.read_bytes()
    good_end, n_records, line_no = 0, 0, 0
    while good_end < len(data):
        newline = data.find(b"\n", good_end)
        if newline < 0:  # no newline: the last append was cut short
            if not _may_be_torn_record(data[good_end:]):
                raise JournalDamaged(
                    f"journal file {str(path)!r} is not a readable Optuna journal: its last line {line_no + 1} "
                    "is not the start of a journal record"
                )
            return Scan(good_end, n_records, data[good_end:])
        line_no += 1
        line = data[good_end : newline + 1]
        problem = _record_problem(line, full)
        if problem is not None:
            later = data.count(b"\n", newline + 1)
            what = "is not a readable Optuna journal" if n_records == 0 else "is damaged"
            raise JournalDamaged(
                f"journal file {str(path)!r} {what}: line {line_no} (of {line_no + later}, byte {good_end}) is "
                f"{problem}; the lines before it are intact. Move the file aside, or cut that line "
                "out, to use the study again"
            )
        n_records += 1
        good_end = newline + 1
    return Scan(good_end, n_records, b"")


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class AppendLock(BaseJournalFileLock):
    """Optuna's journal lock interface over `flock` on `.<journal>.append.lock` (kernel-released on death)."""

    def __init__(self, journal: Path) -> None:
        self._file = journal.with_name(f".{journal.name}.append.lock")
        self._held = threading.local()

    def acquire(self) -> bool:
        fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._held.fd = fd
        return True

    def release(self) -> None:
        fd = getattr(self._held, "fd", None)
        if fd is None:
            raise RuntimeError(f"{self._file} is not held by this thread")
        self._held.fd = None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def cut_torn_tail(path: Path) -> TornTail | None:
    """Move the bytes after the last newline to a side file and truncate; the caller holds `AppendLock`.

    Reads only the file's tail unless it is torn (then the complete records are counted for the message).
    """
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        good_end, pos = 0, size
        while pos > 0:
            start = max(0, pos - (1 << 16))
            fh.seek(start)
            newline = fh.read(pos - start).rfind(b"\n")
            if newline >= 0:
                good_end = start + newline + 1
                break
            pos = start
        fh.seek(good_end)
        torn = fh.read()
        side = path.with_name(f"{path.name}.torn-{_stamp()}")
        n = 1
        while side.exists():
            n += 1
            side = path.with_name(f"{path.name}.torn-{_stamp()}-{n}")
        with open(side, "wb") as out:
            out.write(torn)
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(good_end)
        fh.flush()
        os.fsync(fh.fileno())
        fh.seek(0)
        n_records = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return TornTail(path, side, len(torn), n_records)


class JournalFile(JournalFileBackend):
    """Optuna's journal file backend under `AppendLock`, cutting a torn tail aside before every append.

    So no interleaving of writers and kills fuses a torn fragment with a complete record: each append
    starts on a fresh line, and a record is in the file whole or (aside, in a side file) not at all.
    """

    def __init__(self, path: Path, log: Callable[[str], Any] | None = None) -> None:
        super().__init__(str(path), lock_obj=AppendLock(path))
        self._path = path
        self._report = log or _log.warning

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
        with get_lock_file(self._lock):
            torn = cut_torn_tail(self._path)
            if torn is not None:
                self._report(torn.describe())
            try:
                with open(self._path, "ab") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:  # e.g. a full disk: the bytes written are a torn tail the next append cuts
                raise OSError(
                    exc.errno, f"appending to the journal failed: {exc.strerror}", str(self._path)
                ) from exc


def repair_torn_tail(path: Path) -> TornTail | None:
    """Move a torn last record to a side file and cut the journal back to its last complete record.

    Runs under the append lock, so a live writer is never cut mid-append.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return None
    if not scan(path).torn:  # the common case, without taking the lock
        return None
    lock = AppendLock(path)
    with get_lock_file(lock):
        return cut_torn_tail(path)
