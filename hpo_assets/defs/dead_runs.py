"""Runs whose process is gone but whose pool slots are still held: find them, fail them, free the slots.

Dagster frees a run's pool slots when the run ends; a run killed with SIGKILL never ends, so its `gpu`
slot stays claimed and every later study waits on it. The daemon's run monitoring (enabled in the
instance config) frees the slots of runs already marked finished, but it never health-checks a run
executed in-process (`dagster asset materialize`, `hpo-assets demo`). So every run worker leaves a lease
in its run tags (host, pid and the pid's start time, which tells a reused pid apart): `local_runs.py`
when it creates an in-process run, the `gpu` resource when a GPU step starts. A GPU step running in its
own process (multiprocess executor) also records its pid and dies with the run worker
(training/parent_death.py); a run counts as dead only when none of its processes is left. Whatever waits for a slot
(`local_runs.wait_for_pool`, `hpo_study`, the `free_dead_runs` sensor) checks the leases of the runs
holding it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

HOST = socket.gethostname()
TAG_HOST = "hpo-assets/host"
TAG_PID = "hpo-assets/pid"
TAG_PID_START = "hpo-assets/pid-start"
TAG_STEP_PID = "hpo-assets/step-pid-"  # + a step process's pid -> its start time (multiprocess executor)
RECOVER_COMMAND = "hpo-assets recover"


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces or ')'
    if len(fields) < 20 or fields[0] == "Z":  # a zombie is dead, only not yet reaped
        return None
    return fields[19]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """True when `pid` runs on this host (and, given `start`, is the same process that took the lease)."""
    if pid <= 0:
        return False
    if Path("/proc").is_dir():
        now = process_start(pid)
        return now is not None and (start is None or start == now)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_tags(pid: int | None = None) -> dict[str, str]:
    pid = os.getpid() if pid is None else pid
    return {TAG_HOST: HOST, TAG_PID: str(pid), TAG_PID_START: process_start(pid) or ""}


def take_lease(instance: dg.DagsterInstance, run_id: str, pid: int | None = None) -> None:
    """Record this process (or `pid`) as the worker of `run_id` (idempotent)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return
    mine = lease_tags(pid)
    if any(run.tags.get(k) != v for k, v in mine.items()):
        instance.add_run_tags(run_id, mine)


def lease_run_worker(instance: dg.DagsterInstance, run_id: str) -> None:
    """Record the run's worker as its lease from inside a step: this process when it started the run
    (in-process executor), its parent when this is a step process of it (multiprocess executor)."""
    started_by = _event_pid(instance, run_id)
    for pid in (os.getpid(), os.getppid()):
        if pid == started_by:
            take_lease(instance, run_id, pid)
            if pid != os.getpid():  # a step process: it dies with its run worker, and the run lists it
                from hpo_assets.training.parent_death import die_with_parent

                die_with_parent(pid)
                me = os.getpid()
                instance.add_run_tags(run_id, {f"{TAG_STEP_PID}{me}": process_start(me) or ""})
            return


def live_steps(run: dg.DagsterRun) -> list[int]:
    """The run's recorded step processes on this host that still run (a run is dead only without them)."""
    if run.tags.get(TAG_HOST) != HOST:
        return []
    pids = [
        (k.removeprefix(TAG_STEP_PID), v or None) for k, v in run.tags.items() if k.startswith(TAG_STEP_PID)
    ]
    return sorted(int(pid) for pid, start in pids if pid.isdigit() and pid_alive(int(pid), start))


@dataclass(frozen=True)
class SlotHolder:
    """A run holding (or queued for) a pool slot, and whether its process is still there."""

    run_id: str
    pool: str
    step_key: str
    claimed: bool
    state: str  # "alive", "dead" or "unknown" (another host, no lease)
    why: str

    def describe(self) -> str:
        what = "holds" if self.claimed else "is queued for"
        return f"run {self.run_id} ({self.step_key}) {what} a slot of pool {self.pool!r}: {self.why}"


def _event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started the run (every Dagster event records its pid)."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    for record in records:
        if record.dagster_event is not None and record.dagster_event.pid:
            return int(record.dagster_event.pid)
    return None


def _local_instance(instance: dg.DagsterInstance) -> bool:
    """A SQLite instance lives on one machine's disk, so a run's pid without a host tag is local."""
    return "sqlite" in type(instance.run_storage).__name__.lower()


def run_state(instance: dg.DagsterInstance, run_id: str) -> tuple[str, str]:
    """("alive" | "dead" | "unknown", why) for the run holding a slot."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return "dead", "the run no longer exists"
    steps = live_steps(run)
    if steps:  # its worker may be gone, but a step process still trains (and holds its GPU lease)
        return "alive", f"its step process(es) {', '.join(map(str, steps))} on {HOST} still run"
    if run.is_finished:
        return "dead", f"the run is {run.status.value} but never released the slot"
    host, pid, start = run.tags.get(TAG_HOST), run.tags.get(TAG_PID), run.tags.get(TAG_PID_START) or None
    if host is None:
        event_pid = _event_pid(instance, run_id)
        if event_pid is None or not _local_instance(instance):
            return "unknown", f"the run is {run.status.value} with no worker lease to check"
        host, pid, start = HOST, str(event_pid), None
    if host != HOST:
        return "unknown", f"the run's worker is on host {host!r}; only that host can check it"
    if pid is None or not pid.isdigit():
        return "unknown", f"the run is {run.status.value} with an unreadable lease {pid!r}"
    if pid_alive(int(pid), start):
        return "alive", f"its worker process {pid} on {host} is running"
    return "dead", f"its worker process {pid} on {host} is gone"


def _pool_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, set[str]]]:
    """Started runs and the pools they use: at run granularity each counts against those pools' limits."""
    records = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    runs = [r.dagster_run for r in records]
    return [(run, set(run.run_op_concurrency.all_pools or ())) for run in runs if run.run_op_concurrency]


def slot_holders(instance: dg.DagsterInstance, pools: list[str] | None = None) -> list[SlotHolder]:
    """Every run that takes a place in a pool: a claimed slot or queued step (op granularity), or a started
    run that uses the pool (run granularity: the run queue counts it until it ends)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    started = _pool_runs(instance)
    names = set(pools) if pools is not None else storage.get_concurrency_keys()
    holders = []
    for pool in sorted(names):
        info = storage.get_concurrency_info(pool)
        entries = [(s.run_id, s.step_key, True) for s in info.claimed_slots]
        claimed = {(s.run_id, s.step_key) for s in info.claimed_slots}
        # a dead run's queued step would be handed the next free slot and keep it: it counts too
        entries += [
            (p.run_id, p.step_key, False) for p in info.pending_steps if (p.run_id, p.step_key) not in claimed
        ]
        seen = {run_id for run_id, _, _ in entries}
        entries += [
            (run.run_id, "whole run", True)
            for run, pools_used in started
            if pool in pools_used and run.run_id not in seen
        ]
        for run_id, step_key, is_claimed in entries:
            state, why = run_state(instance, run_id)
            holders.append(SlotHolder(run_id, pool, step_key, is_claimed, state, why))
    return holders


def free_dead_runs(
    instance: dg.DagsterInstance, pools: list[str] | None = None, *, except_run: str | None = None
) -> list[SlotHolder]:
    """Mark every run whose worker is gone as failed and free its slots; returns what was freed."""
    freed: list[SlotHolder] = []
    done: set[str] = set()
    for holder in slot_holders(instance, pools):
        if holder.state != "dead" or holder.run_id == except_run:
            continue
        if holder.run_id not in done:
            run = instance.get_run_by_id(holder.run_id)
            if run is not None and not run.is_finished:
                instance.report_run_failed(run, f"hpo-assets: {holder.why}; its pool slots were freed")
            instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
            done.add(holder.run_id)
        freed.append(holder)
    return freed
