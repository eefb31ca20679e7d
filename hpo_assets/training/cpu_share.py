"""How many CPU threads a training run should use: the cores that are actually free when it starts.

torch starts one OpenMP thread per core. On a workstation that also runs the UI, an analysis or another
study, those threads wait for each other on cores someone else holds: on 2 cores beside two busy
processes, 2-thread training ran at 2% of its idle speed (issue #13). One thread per free core avoids
that. (`OMP_WAIT_POLICY=PASSIVE` would stop spinning when contention starts mid-run too, but it slowed
idle 2-thread training several-fold here, so it is left to the user.)
No torch import: the policy is plain arithmetic over /proc.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is no /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    values = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_cores(sample_s: float = 0.3) -> float:
    """Cores kept busy by other processes right now (sampled over `sample_s`; load average without /proc)."""
    first = _cpu_times()
    if first is None:
        return os.getloadavg()[0]
    time.sleep(sample_s)
    second = _cpu_times()
    assert second is not None
    total = second[1] - first[1]
    if total <= 0:
        return 0.0
    return (second[0] - first[0]) / total * (os.cpu_count() or 1)


def free_threads(requested: int | None = None, busy: float | None = None) -> int:
    """Threads for a run starting now: the usable cores nobody else keeps busy (at least 1, at most `requested`)."""
    cores = usable_cores()
    busy = busy_cores() if busy is None else busy
    free = max(1, min(cores, math.floor(cores - busy + 0.5)))
    return free if requested is None else max(1, min(free, requested))
