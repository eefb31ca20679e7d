"""GPU leases: real processes asking at once for 2 (fake) devices never hold the same one, and a dead holder frees it."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from pathlib import Path

import pytest

from hpo_assets.defs.resources import GpuLeases
from hpo_assets.training import leases

WAIT_S = 60  # bounded waits for child processes; a hang fails instead of blocking the suite


def _worker(
    lease_dir: str, start: mp.synchronize.Barrier, release: mp.synchronize.Event, out: mp.Queue
) -> None:
    """One study step: lease through the Dagster resource, report what it got, hold until told to release."""
    pid = os.getpid()
    gpu = GpuLeases(lease_dir=lease_dir, devices="0,1")
    start.wait()
    device = gpu.device_for("", holder={"worker": pid}, log=lambda msg: out.put(("wait", pid, msg, None)))
    out.put(("got", pid, device, os.environ.get("CUDA_VISIBLE_DEVICES")))
    release.wait(WAIT_S)
    gpu.teardown_after_execution(None)  # type: ignore[arg-type]
    out.put(("released", pid, os.environ.get("CUDA_VISIBLE_DEVICES"), None))


def _next(out: mp.Queue) -> tuple:
    try:
        return out.get(timeout=WAIT_S)
    except queue.Empty:
        pytest.fail("a lease worker did not report within the bounded wait")


def test_five_processes_share_two_devices_one_each(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    n = 5
    start, out = ctx.Barrier(n), ctx.Queue()
    releases = [ctx.Event() for _ in range(n)]
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), start, releases[i], out)) for i in range(n)]
    for p in procs:
        p.start()
    index_of = {p.pid: i for i, p in enumerate(procs)}
    held: dict[int, str] = {}  # pid -> physical id it holds now
    waiting: set[int] = set()
    ever_held: list[str] = []

    def take(msg: tuple) -> None:
        kind, pid, a, b = msg
        if kind == "wait":
            assert "all 2 GPU(s) are leased" in a
            waiting.add(pid)
        elif kind == "got":
            assert a == "cuda:0", "the step sees its one leased GPU as cuda:0"
            assert b in {"0", "1"} and b not in held.values(), f"device {b} leased twice: {held}"
            held[pid] = b
            ever_held.append(b)
            waiting.discard(pid)

    try:
        while len(held) < 2 or len(waiting) < n - 2:  # everyone asked at once: two hold, three wait
            take(_next(out))
        assert set(held.values()) == {"0", "1"}
        while held:
            pid, device = next(iter(held.items()))
            had_waiters = bool(waiting)
            del held[pid]  # from here on its device may be taken (the release event unlocks it)
            releases[index_of[pid]].set()
            released = False
            while not released or (had_waiters and len(held) < 2):
                msg = _next(out)
                if msg[0] == "released":
                    assert msg[1] == pid and msg[2] is None, "CUDA_VISIBLE_DEVICES is restored after the step"
                    released = True
                else:
                    take(msg)
            if had_waiters:
                assert device in held.values(), "a waiting worker took the device just released"
    finally:
        for e in releases:
            e.set()
        for p in procs:
            p.join(WAIT_S)
            if p.is_alive():
                p.kill()
    assert len(ever_held) == n and set(ever_held) == {"0", "1"}, "every worker got a device in turn"
    assert all(p.exitcode == 0 for p in procs)


def _hold(lease_dir: str, ready: mp.synchronize.Event) -> None:
    leases.acquire(lease_dir, ["7"], holder={"step": "hpo_study[2M|h1]"})
    ready.set()
    signal.pause()


def test_a_killed_holder_frees_its_device(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), ready))
    proc.start()
    try:
        assert ready.wait(WAIT_S)
        with pytest.raises(leases.LeaseError, match=rf'"pid": {proc.pid}.*hpo_study\[2M\|h1\]'):
            leases.acquire(tmp_path, ["7"], timeout_s=0.2, poll_s=0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(WAIT_S)
        lease = leases.acquire(tmp_path, ["7"], timeout_s=WAIT_S, poll_s=0.05)
        assert (lease.index, lease.physical_id, lease.device) == (0, "7", "cuda:0")
        lease.release()
    finally:
        if proc.is_alive():
            proc.kill()


def test_no_gpu_means_cpu_and_explicit_devices_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu = GpuLeases(lease_dir=str(tmp_path), devices="")
    assert gpu.device_for("") == "cpu"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "", "a CPU step sees no GPU"
    gpu.teardown_after_execution(None)  # type: ignore[arg-type]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    explicit = GpuLeases(lease_dir=str(tmp_path), devices="0,1")
    assert explicit.device_for("cuda:1") == "cuda:1" and explicit.device_for("cpu") == "cpu"
    assert not list(tmp_path.glob("*.lock")), "an explicit device takes no lease"


@pytest.mark.parametrize(
    ("env", "ids"),
    [({"CUDA_VISIBLE_DEVICES": "2,3"}, ["2", "3"]), ({"CUDA_VISIBLE_DEVICES": ""}, []),
     ({"CUDA_VISIBLE_DEVICES": "-1"}, []), ({"CUDA_VISIBLE_DEVICES": "GPU-5f1c, GPU-9a2b"}, ["GPU-5f1c", "GPU-9a2b"])],
)  # fmt: skip
def test_visible_devices_follow_cuda_visible_devices(env: dict, ids: list[str]) -> None:
    assert leases.visible_devices(env) == ids
