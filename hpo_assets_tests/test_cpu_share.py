"""Training threads follow the cores actually free: the arithmetic, the kernel's counters, the affinity mask."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from hpo_assets.training import cpu_share

CASES = [(2, 0.0, None, 2), (2, 0.9, None, 1), (2, 1.0, None, 1), (2, 2.0, None, 1), (2, 7.5, None, 1),
         (8, 2.2, None, 6), (8, 0.0, 4, 4), (8, 6.0, 4, 2), (1, 0.0, None, 1)]  # fmt: skip


@pytest.mark.parametrize(("cores", "busy", "requested", "threads"), CASES)
def test_threads_are_the_free_cores(monkeypatch, cores: int, busy: float, requested, threads: int) -> None:
    monkeypatch.setattr(cpu_share, "usable_cores", lambda: cores)
    assert cpu_share.free_threads(requested, busy=busy) == threads


def test_busy_cores_counts_a_core_this_test_keeps_busy() -> None:
    """A thread spinning here keeps at least most of one core busy, whatever else the machine runs."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.1)  # let it start before sampling
        busy = cpu_share.busy_cores(sample_s=0.5)
    finally:
        stop.set()
        spinner.join()
    cores = os.cpu_count() or 1
    assert 0.8 <= busy <= cores + 1e-9, f"busy_cores read {busy:.2f} of {cores} cores while one spun here"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_usable_cores_follow_the_affinity_mask() -> None:
    """A process pinned to one core (taskset, a container's cpuset) trains with one thread even when idle."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from hpo_assets.training import cpu_share as c; print(c.usable_cores(), c.free_threads(busy=0.0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]
