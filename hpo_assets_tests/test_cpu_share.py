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


def _cgroup(tmp_path, self_lines: str, files: dict[str, str]):
    """A fake cgroup tree under tmp_path and a /proc/self/cgroup naming this process's place in it."""
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    me = tmp_path / "self_cgroup"
    me.write_text(self_lines)
    return root, me


@pytest.mark.parametrize(
    ("self_lines", "files", "quota"),
    [("0::/\n", {"cpu.max": "150000 100000\n"}, 1.5),  # v2, a pod's own namespace
     ("0::/\n", {"cpu.max": "max 100000\n"}, None),  # v2, no limit
     ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/cpu.max": "400000 100000", "kubepods/pod1/c1/cpu.max": "max 100000"}, 4.0),
     ("0::/kubepods/pod1/c1\n", {"kubepods/cpu.max": "200000 100000", "kubepods/pod1/c1/cpu.max": "300000 100000"}, 2.0),
     ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, 2.5),
     ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, None),
     ("1:cpu:/\n", {}, None)],
)  # fmt: skip
def test_the_cgroup_quota_is_read_v2_and_v1(tmp_path, self_lines: str, files: dict, quota) -> None:
    root, me = _cgroup(tmp_path, self_lines, files)
    assert cpu_share.quota_cpus(root, me) == quota
    affinity = len(os.sched_getaffinity(0))
    want = affinity if quota is None else max(1, min(affinity, int(quota)))
    assert cpu_share.usable_cores(root, me) == want


def test_a_quota_of_half_a_cpu_still_gets_one_thread(tmp_path) -> None:
    root, me = _cgroup(tmp_path, "0::/\n", {"cpu.max": "50000 100000"})
    assert cpu_share.quota_cpus(root, me) == 0.5 and cpu_share.usable_cores(root, me) == 1


def test_under_a_quota_busy_cores_are_the_containers_own(tmp_path) -> None:
    """The container's cgroup burns 0.3 CPU-seconds during a 0.2 s sample (a real writer thread): 1.5 busy
    cores, whatever the node's /proc/stat says."""
    import threading
    import time

    root, me = _cgroup(tmp_path, "0::/\n", {"cpu.max": "400000 100000", "cpu.stat": "usage_usec 1000000\n"})

    def spend() -> None:
        time.sleep(0.05)
        (root / "cpu.stat").write_text("usage_usec 1300000\nuser_usec 1\n")

    writer = threading.Thread(target=spend)
    writer.start()
    busy = cpu_share.busy_cores(0.2, root, me)
    writer.join()
    assert busy == pytest.approx(1.5)
