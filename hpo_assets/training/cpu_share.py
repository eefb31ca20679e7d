"""How many CPU threads a training run should use: the cores that are actually free when it starts.

torch starts one OpenMP thread per core. On a workstation that also runs the UI, an analysis or another
study, those threads wait for each other on cores someone else holds: on 2 cores beside two busy
processes, 2-thread training ran at 2% of its idle speed (issue #13). One thread per free core avoids
that. (`OMP_WAIT_POLICY=PASSIVE` would stop spinning when contention starts mid-run too, but it slowed
idle 2-thread training several-fold here, so it is left to the user.)
In a container the CPU quota is the limit, not the node's cores: a pod limited to 4 CPUs on a 64-core
node that started 64 threads would be throttled to a crawl. `quota_cpus` reads the quota (cgroup v2
`cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the tightest along the process's cgroup path),
and under a quota the busy cores are those the container's own cgroup used (other pods on the node do
not spend its quota).
No torch import: the policy is plain arithmetic over /proc and /sys/fs/cgroup.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(root: Path, self_cgroup: Path) -> tuple[list[Path], list[Path]]:
    """(v2 dirs, v1 cpu-controller dirs) from this process's cgroup up to the root, deepest first."""

    def up(base: Path, rel: str) -> list[Path]:
        parts = [p for p in rel.strip("/").split("/") if p]
        return [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]

    v2: list[Path] = []
    v1: list[Path] = []
    for line in (_read(self_cgroup) or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, rel = fields
        if controllers == "":
            v2 += up(root, rel)
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu", "cpu,cpuacct"):
                if (root / name).is_dir():
                    v1 += up(root / name, rel)
                    break
    if not v2 and not v1:  # no /proc/self/cgroup: the namespace root only
        v2 = [root]
        v1 = [root / "cpu"]
    return v2, v1


def quota_cpus(
    root: str | os.PathLike[str] = CGROUP_ROOT, self_cgroup: str | os.PathLike[str] = SELF_CGROUP
) -> float | None:
    """The CPUs the cgroup quota allows this process (e.g. 1.5), or None when no quota applies."""
    v2, v1 = _cgroup_dirs(Path(root), Path(self_cgroup))
    limits = []
    for folder in v2:
        text = _read(folder / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and period.strip().isdigit() and int(period) > 0:
                limits.append(int(quota) / int(period))
    for folder in v1:
        quota_text, period_text = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_text and period_text and period_text.isdigit() and int(period_text) > 0:
            if int(quota_text) > 0:  # -1: no quota
                limits.append(int(quota_text) / int(period_text))
    return min(limits) if limits else None


def _cgroup_usage_s(root: Path, self_cgroup: Path) -> float | None:
    """CPU seconds the process's own cgroup has used (v2 cpu.stat usage_usec, v1 cpuacct.usage)."""
    v2, _ = _cgroup_dirs(root, self_cgroup)
    for folder in v2:
        for line in (_read(folder / "cpu.stat") or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
    for line in (_read(self_cgroup) or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3 and "cpuacct" in fields[1].split(","):
            for name in (fields[1], "cpuacct", "cpu,cpuacct"):
                text = _read(root / name / fields[2].strip("/") / "cpuacct.usage")
                if text and text.isdigit():
                    return int(text) / 1e9
    return None


def usable_cores(
    root: str | os.PathLike[str] = CGROUP_ROOT, self_cgroup: str | os.PathLike[str] = SELF_CGROUP
) -> int:
    """Cores this process may run on: its affinity mask (a container's or taskset's limit), cut to the
    cgroup CPU quota (rounded down, at least 1) where one applies."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = quota_cpus(root, self_cgroup)
    return cores if quota is None else max(1, min(cores, math.floor(quota)))


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is no /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    values = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_cores(
    sample_s: float = 0.3,
    root: str | os.PathLike[str] = CGROUP_ROOT,
    self_cgroup: str | os.PathLike[str] = SELF_CGROUP,
) -> float:
    """Cores kept busy by other processes right now (sampled over `sample_s`; load average without /proc).

    Under a cgroup CPU quota: the cores the container's own cgroup keeps busy (its quota is what they
    share); otherwise the node's, from /proc/stat.
    """
    root, self_cgroup = Path(root), Path(self_cgroup)
    if quota_cpus(root, self_cgroup) is not None:
        before = _cgroup_usage_s(root, self_cgroup)
        if before is not None:
            time.sleep(sample_s)
            after = _cgroup_usage_s(root, self_cgroup)
            if after is not None:
                return max(0.0, (after - before) / sample_s)
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
