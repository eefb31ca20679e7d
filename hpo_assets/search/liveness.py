"""Is a RUNNING trial still running? Worker identity plus a heartbeat, so several workers can share a study.

A resumed run must fail and retry the trials a killed run left RUNNING, but never a trial another live
worker (another process, pod or machine on the same PostgreSQL study) is training. Each trial records
`worker` {host, pid} and refreshes `heartbeat_at` (unix seconds) from a background thread. A RUNNING
trial is abandoned when its process on this host is gone, or when its heartbeat is older than
`stale_after_s` (the only signal for other hosts, e.g. a deleted Kubernetes pod).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

HOST = socket.gethostname()
HEARTBEAT_S = 60.0
STALE_AFTER_S = 900.0


def worker_identity() -> dict[str, object]:
    return {"host": HOST, "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    status = Path(f"/proc/{pid}/status")
    try:  # a killed child not yet reaped by its parent is a zombie: not running
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return True


def is_abandoned(trial: FrozenTrial, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """True when nothing is training this RUNNING trial any more."""
    now = time.time() if now is None else now
    beat = trial.user_attrs.get("heartbeat_at")
    if not isinstance(beat, int | float):
        beat = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    if now - float(beat) > stale_after_s:
        return True
    worker = trial.user_attrs.get("worker") or {}
    if worker.get("host") != HOST or not isinstance(worker.get("pid"), int):
        return False  # another machine (or no identity yet): only the heartbeat can tell
    pid = int(worker["pid"])
    return pid == os.getpid() or not _pid_alive(pid)  # this process runs one trial at a time


class Heartbeat:
    """Refreshes a trial's `heartbeat_at` every `interval_s` while the block runs (a daemon thread)."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval_s: float = HEARTBEAT_S) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.set_trial_user_attr(self._trial_id, "heartbeat_at", time.time())
            except Exception:  # the trial finished or the storage went away: nothing left to keep alive
                return

    def __enter__(self) -> Heartbeat:
        self._storage.set_trial_user_attr(self._trial_id, "heartbeat_at", time.time())
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
