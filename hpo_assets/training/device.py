"""Where training runs: CUDA when present (bf16 autocast, TF32 matmuls), else CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """The device to train on. None/"auto" picks CUDA when available, else CPU.

    A malformed name or an unavailable device is a ValueError naming it, not a late CUDA error.
    """
    if requested is None or str(requested).strip().lower() in {"", "auto"}:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(requested).strip())
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device {requested!r} is not a torch device name (try 'cpu', 'cuda', 'cuda:0')"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {requested!r} requested but MPS is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"device {requested!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    return device


def prepare_device(device: torch.device) -> None:
    """Per-process speed settings: TF32 matmuls/convolutions on CUDA (bf16 autocast covers the rest)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def bf16_supported(device: torch.device) -> bool:
    """bf16 matmuls in hardware: CUDA with bf16, or a CPU with AMX / AVX512-BF16 (emulated bf16 is slow)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool | None = None) -> Iterator[None]:
    """bf16 autocast on CUDA by default; on CPU only when `enabled=True` and bf16 is in hardware.

    Weights, optimizer state and the loss stay fp32 (autocast only lowers matmul inputs).
    """
    use = (device.type == "cuda") if enabled is None else enabled
    if use and bf16_supported(device):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
