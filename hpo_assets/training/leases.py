"""GPU leases: each training process holds its share of one device, by advisory file locks per device slot.

Dagster's `gpu` pool limits how many study steps run at once, not which device each one gets; without
a lease every step would train on `cuda:0`. A device has `slots` slots (`<lease_dir>/<index>.<slot>.lock`);
a trial of a budget that packs `share` trials per GPU locks ceil(slots / share) of one device's slots, so
several small trials share a device while a 2B trial (share 1) gets all of it. A lease is `flock`, so
the kernel releases it when the holding process dies, however it dies (kill -9 included): no stale leases.
No torch import here: the lease must be taken before CUDA is initialised in the process, so that
`CUDA_VISIBLE_DEVICES` still applies.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CPU = "cpu"


class LeaseError(RuntimeError):
    """No device could be leased in time; the message names the holders."""


def visible_devices(environ: dict[str, str] | None = None) -> list[str]:
    """The physical GPU ids this process may use, without initialising CUDA.

    `CUDA_VISIBLE_DEVICES` when set (its entries, in order); else one id per line of `nvidia-smi -L`;
    else none (a CPU-only machine).
    """
    env = os.environ if environ is None else environ
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        ids = [part.strip() for part in given.split(",") if part.strip()]
        return [] if ids in (["-1"], ["none"], ["NoDevFiles"]) else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


@dataclass
class Lease:
    """One held share of a device: `index` into the visible list, its physical id, the slots and their locked files."""

    index: int | None
    physical_id: str | None
    path: Path | None
    _fd: int | None = None
    slots: tuple[int, ...] = ()
    _more_fds: list[int] = field(default_factory=list)

    @property
    def device(self) -> str:
        """The torch device name once `CUDA_VISIBLE_DEVICES` is set to the leased id: cuda:0, or cpu."""
        return CPU if self.physical_id is None else "cuda:0"

    @property
    def cuda_visible_devices(self) -> str:
        """The value to export: the leased physical id, or "" (no GPU visible) when on CPU."""
        return "" if self.physical_id is None else self.physical_id

    def release(self) -> None:
        _unlock(([] if self._fd is None else [self._fd]) + self._more_fds)
        self._fd, self._more_fds = None, []

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def slot_path(lease_dir: str | os.PathLike[str], index: int, slot: int) -> Path:
    return Path(lease_dir) / f"{index}.{slot}.lock"


def _try_lock(path: Path, holder: dict) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    return fd


def _unlock(fds: list[int]) -> None:
    for fd in fds:
        os.ftruncate(fd, 0)  # a free slot names no holder
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holders(lease_dir: Path, n_devices: int, slots: int = 1) -> dict[str, str]:
    """Who holds each slot ("index.slot": the holder line written by the lease), for a message while waiting."""
    out = {}
    for index in range(n_devices):
        for slot in range(slots):
            try:
                text = slot_path(lease_dir, index, slot).read_text().strip()
            except OSError:
                continue
            if text:
                out[f"{index}.{slot}"] = text
    return out


def units_for(share: int, slots: int) -> int:
    """Slots one trial locks: ceil(slots / share), so at most `share` such trials fit one device."""
    if share < 1 or slots < 1:
        raise ValueError(f"a lease needs share >= 1 and slots >= 1, got share={share!r}, slots={slots!r}")
    return min(slots, -(-slots // share))


def _take(folder: Path, devices: list[str], info: dict, units: int, slots: int) -> Lease | None:
    """Best fit: the device with the fewest free slots that still holds `units` (big trials keep whole devices)."""
    free: list[tuple[int, list[tuple[int, int]]]] = []
    for index, physical in enumerate(devices):
        got = []
        for slot in range(slots):
            fd = _try_lock(slot_path(folder, index, slot), {**info, "device": physical, "slot": slot})
            if fd is not None:
                got.append((slot, fd))
        free.append((index, got))
    fits = [(len(got), index) for index, got in free if len(got) >= units]
    chosen = min(fits)[1] if fits else None
    lease = None
    for index, got in free:
        keep = got[:units] if index == chosen else []
        _unlock([fd for _, fd in got[len(keep) :]])
        if keep:
            fds = [fd for _, fd in keep]
            lease = Lease(
                index,
                devices[index],
                slot_path(folder, index, keep[0][0]),
                fds[0],
                tuple(s for s, _ in keep),
                fds[1:],
            )
    return lease


def acquire(
    lease_dir: str | os.PathLike[str],
    devices: list[str],
    *,
    holder: dict | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
    on_wait: Callable[[str], None] | None = None,
    share: int = 1,
    slots: int = 1,
) -> Lease:
    """Lease a share of one of `devices` (physical ids) for this process; a CPU lease when the list is empty.

    `slots` is the number of slots per device (the same for every process of the machine: the most
    trials any budget packs per GPU); `share` is how many trials of this one's budget may share a device.
    Tries every device without blocking, then sleeps `poll_s` and tries again (waiting costs no CPU);
    after `timeout_s` (None = forever) raises LeaseError naming the holders. `on_wait` hears once
    that the process waits, and who holds the devices.
    """
    if not devices:
        return Lease(None, None, None)
    units = units_for(share, slots)
    folder = Path(lease_dir)
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), **(holder or {}), "share": share}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    told = False
    while True:
        lease = _take(folder, devices, info, units, slots)
        if lease is not None:
            return lease
        if not told and on_wait is not None:
            on_wait(
                f"all {len(devices)} GPU(s) are leased (this trial needs {units} of {slots} slot(s) of one) "
                f"({holders(folder, len(devices), slots)}); waiting"
            )
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            raise LeaseError(
                f"no GPU free in {lease_dir} after {timeout_s:g} s; held by {holders(folder, len(devices), slots)}"
            )
        time.sleep(poll_s)
