"""Journal files that a killed writer left half-written: find the damage, move a torn tail aside.

An Optuna journal is one JSON record per line, appended under a lock. A process killed in the middle
of an append leaves a last line without its newline. Optuna ignores such a line when reading, but the
next append lands right after it, fusing the torn bytes and the new record into one line that no
reader accepts again (and whose error says "line 1 column 52", counted inside the line). So before a
writer opens a journal, `repair_torn_tail` moves the torn bytes to `<file>.torn-<UTC time>` (nothing is
deleted) and truncates the file to its last complete record. A damaged line with complete lines after
it cannot be repaired safely; `scan` names it with its line number in the file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


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


def repair_torn_tail(path: Path) -> TornTail | None:
    """Move a torn last record to a side file and cut the journal back to its last complete record.

    Runs under Optuna's own journal lock, so a live writer is never cut mid-append.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return None
    if not scan(path).torn:  # the common case, without taking the lock
        return None
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    with get_lock_file(JournalFileSymlinkLock(str(path))):
        found = scan(path)
        if not found.torn:
            return None
        side = path.with_name(f"{path.name}.torn-{_stamp()}")
        n = 1
        while side.exists():
            n += 1
            side = path.with_name(f"{path.name}.torn-{_stamp()}-{n}")
        with open(side, "wb") as fh:
            fh.write(found.torn)
            fh.flush()
            os.fsync(fh.fileno())
        os.truncate(path, found.good_end)
        return TornTail(path, side, len(found.torn), found.n_records)
