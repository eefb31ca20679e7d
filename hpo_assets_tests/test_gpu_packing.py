"""Several small trials per GPU: real processes lease slots of simulated devices; 2M trials pack four to a
GPU, a 2B trial waits for a whole free one, and the gpu pool allows GPUs x slots."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from pathlib import Path

import pytest

from hpo_assets.defs.instance import gpu_limit
from hpo_assets.defs.resources import GpuLeases
from hpo_assets.model import budgets
from hpo_assets.training import leases

WAIT_S = 60


def _hold(lease_dir: str, budget: str, out: mp.Queue, release: mp.synchronize.Event) -> None:
    """A study step of `budget`: lease through the Dagster resource on 2 simulated GPUs, report, hold."""
    gpu = GpuLeases(lease_dir=lease_dir, devices="0,1", wait_timeout_s=WAIT_S)
    device = gpu.device_for("", holder={"step": budget}, budget=budget)
    lease = gpu._lease
    out.put((os.getpid(), budget, device, os.environ["CUDA_VISIBLE_DEVICES"], lease.slots))
    release.wait(WAIT_S)
    gpu.teardown_after_execution(None)  # type: ignore[arg-type]


def _start(ctx, lease_dir: Path, budget: str, out: mp.Queue) -> tuple[mp.Process, mp.synchronize.Event]:
    release = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(lease_dir), budget, out, release))
    proc.start()
    return proc, release


def _get(out: mp.Queue) -> tuple:
    try:
        return out.get(timeout=WAIT_S)
    except queue.Empty:
        pytest.fail("a lease process did not report within the bounded wait")


def _stop(procs: list[tuple[mp.Process, mp.synchronize.Event]]) -> None:
    for proc, release in procs:
        if proc.exitcode is None:  # a killed waiter leaves its Event unusable: set only live ones
            release.set()
    for proc, _ in procs:
        proc.join(WAIT_S)
        if proc.is_alive():
            proc.kill()


def test_eight_2m_steps_pack_four_per_gpu_and_a_ninth_waits(tmp_path: Path) -> None:
    assert budgets.trials_per_gpu("2M") == 4 and budgets.gpu_slots() == 4, "the shipped budgets.yaml"
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [_start(ctx, tmp_path, "2M", out) for _ in range(8)]
    try:
        got = [_get(out) for _ in range(8)]
        assert all(device == "cuda:0" for _, _, device, _, _ in got), "each step sees its GPU as cuda:0"
        per_gpu = {g: sorted(s for _, _, _, gid, (s,) in got if gid == g) for g in ("0", "1")}
        assert per_gpu == {"0": [0, 1, 2, 3], "1": [0, 1, 2, 3]}, "four 2M steps per GPU, one slot each"
        with pytest.raises(leases.LeaseError, match="no GPU free"):
            leases.acquire(tmp_path, ["0", "1"], share=4, slots=4, timeout_s=0.3, poll_s=0.05)
    finally:
        _stop(procs)


def test_a_2b_step_takes_a_whole_gpu_and_waits_while_a_2m_step_holds_a_slot(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    small = _start(ctx, tmp_path, "2M", out)
    procs = [small]
    try:
        _, _, _, small_gpu, small_slots = _get(out)
        assert len(small_slots) == 1
        procs.append(_start(ctx, tmp_path, "2B", out))
        _, _, _, big_gpu, big_slots = _get(out)
        assert big_gpu != small_gpu and big_slots == (0, 1, 2, 3), "2B holds every slot of the free GPU"
        # the next 2M step packs beside the first one (best fit) instead of waiting
        procs.append(_start(ctx, tmp_path, "2M", out))
        assert _get(out)[3] == small_gpu
        with pytest.raises(leases.LeaseError, match=r"no GPU free.*\"budget\": \"2M\""):
            leases.acquire(tmp_path, ["0", "1"], share=1, slots=4, timeout_s=0.3, poll_s=0.05)
        for proc, _ in procs[::2]:  # both 2M steps die (kill -9): the kernel frees their slots
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(WAIT_S)
            assert proc.exitcode == -signal.SIGKILL
        lease = leases.acquire(tmp_path, ["0", "1"], share=1, slots=4, timeout_s=WAIT_S, poll_s=0.05)
        assert (lease.physical_id, lease.slots) == (small_gpu, (0, 1, 2, 3))
        lease.release()
    finally:
        _stop(procs)


def test_a_step_naming_no_budget_gets_a_whole_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu = GpuLeases(lease_dir=str(tmp_path), devices="5")
    assert gpu.device_for("") == "cuda:0" and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert gpu._lease.slots == (0, 1, 2, 3)
    gpu.teardown_after_execution(None)  # type: ignore[arg-type]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


@pytest.mark.parametrize(("share", "slots", "units"), [(4, 4, 1), (2, 4, 2), (1, 4, 4), (3, 4, 2), (8, 4, 1)])
def test_units_keep_at_most_share_trials_on_a_gpu(share: int, slots: int, units: int) -> None:
    assert leases.units_for(share, slots) == units
    assert slots // units <= max(share, 1) or units == 1


def test_pool_limit_is_gpus_times_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_ASSETS_GPU_LIMIT", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert gpu_limit() == 3 * budgets.gpu_slots() == 12
    assert gpu_limit(n_gpus=2, slots=1) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_limit() == 1, "a CPU-only machine runs one step at a time"


def test_trials_per_gpu_from_a_budgets_file_and_a_bad_value_named(tmp_path: Path) -> None:
    text = budgets.BUDGETS_FILE.read_text()
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("2M: {trials_per_gpu: 4}", "2M: {trials_per_gpu: 8}"))
    assert budgets.trials_per_gpu("2M", good) == 8 and budgets.gpu_slots(good) == 8
    assert budgets.trials_per_gpu("500K", good) == 1, "a budget not named gets the default's value"
    assert budgets.trials_per_gpu(None, good) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("20M: {trials_per_gpu: 2}", "20M: {trials_per_gpu: 0}"))
    with pytest.raises(
        budgets.BudgetConfigError, match=r"budgets\.20M\.trials_per_gpu' must be a whole number"
    ):
        budgets.trials_per_gpu("20M", bad)


@pytest.mark.parametrize(("partition", "slots"), [("2M|h1", (0,)), ("20M|h5", (0, 1)), ("2B|h1", (0, 1, 2, 3)),
                                                  ("h1", (0, 1, 2, 3)), (None, (0, 1, 2, 3))])  # fmt: skip
def test_the_budget_follows_the_steps_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partition: str | None, slots: tuple[int, ...]
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu = GpuLeases(lease_dir=str(tmp_path), devices="3")
    gpu.device_for("", holder={"partition": partition} if partition else None)
    try:
        assert gpu._lease.slots == slots
    finally:
        gpu.teardown_after_execution(None)  # type: ignore[arg-type]
