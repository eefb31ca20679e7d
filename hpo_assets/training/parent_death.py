"""A step process that trains must die with the run worker that started it.

Under Dagster's multiprocess executor each step is a child process of the run worker. kill -9 of the
worker leaves the child running (re-parented to PID 1): it keeps training, holding its GPU lease, while
the run's pool slot is freed for the next study; when it finishes it blocks forever writing its events
to a pipe nobody reads. So a step process asks the kernel for SIGKILL when its parent dies
(`PR_SET_PDEATHSIG`, Linux) and, everywhere, runs a thread that kills the process once its parent has
changed (the kernel's signal follows the parent *thread*; the thread also covers other systems). Killed
is what the step would be had it run in-process; its GPU lease (a `flock`) goes with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_S = 1.0

_watching: set[int] = set()


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, interval_s: float) -> None:
    while True:
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(interval_s)


def die_with_parent(parent: int, interval_s: float = WATCH_S) -> bool:
    """From now on this process dies (SIGKILL) when `parent`, its parent process, is gone.

    Returns whether the kernel's parent-death signal was set (else only the watch thread acts). Calling
    it again for the same parent does nothing; a process whose parent is already gone dies at once.
    """
    if parent in _watching:
        return True
    kernel = _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)
    _watching.add(parent)
    threading.Thread(target=_watch, args=(parent, interval_s), name="hpo-parent-watch", daemon=True).start()
    return kernel
