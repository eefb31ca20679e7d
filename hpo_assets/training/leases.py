"""GPU leases: each training process holds one device to itself, by an advisory file lock per device index.

Dagster's `gpu` pool limits how many study steps run at once, not which device each one gets; without
a lease every step would train on `cuda:0`. A lease is `flock` on `<lease_dir>/<index>.lock`, so the
kernel releases it when the holding process dies, however it dies (kill -9 included): no stale leases.
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
from dataclasses import dataclass
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
    """One held device: `index` into the visible list, its physical id, and the open locked file."""

    index: int | None
    physical_id: str | None
    path: Path | None
    _fd: int | None = None

    @property
    def device(self) -> str:
        """The torch device name once `CUDA_VISIBLE_DEVICES` is set to the leased id: cuda:0, or cpu."""
        return CPU if self.physical_id is None else "cuda:0"

    @property
    def cuda_visible_devices(self) -> str:
        """The value to export: the leased physical id, or "" (no GPU visible) when on CPU."""
        return "" if self.physical_id is None else self.physical_id

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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


def holders(lease_dir: Path, n_devices: int) -> dict[int, str]:
    """Who holds each index (the holder line written by the lease), for a message while waiting."""
    out = {}
    for index in range(n_devices):
        path = Path(lease_dir) / f"{index}.lock"
        try:
            out[index] = path.read_text().strip() or "?"
        except OSError:
            out[index] = "?"
    return out


def acquire(
    lease_dir: str | os.PathLike[str],
    devices: list[str],
    *,
    holder: dict | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
    on_wait: Callable[[str], None] | None = None,
) -> Lease:
    """Lease one of `devices` (physical ids) for this process; a CPU lease when the list is empty.

    Tries every index without blocking, then sleeps `poll_s` and tries again (waiting costs no CPU);
    after `timeout_s` (None = forever) raises LeaseError naming the holders. `on_wait` hears once
    that the process waits, and who holds the devices.
    """
    if not devices:
        return Lease(None, None, None)
    folder = Path(lease_dir)
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), **(holder or {})}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    told = False
    while True:
        for index, physical in enumerate(devices):
            path = folder / f"{index}.lock"
            fd = _try_lock(path, {**info, "device": physical})
            if fd is not None:
                return Lease(index, physical, path, fd)
        if not told and on_wait is not None:
            on_wait(f"all {len(devices)} GPU(s) are leased ({holders(folder, len(devices))}); waiting")
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            raise LeaseError(
                f"no GPU free in {lease_dir} after {timeout_s:g} s; held by {holders(folder, len(devices))}"
            )
        time.sleep(poll_s)
