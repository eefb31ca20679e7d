"""Training threads follow the cores actually free; OpenMP waits passively unless the user says otherwise."""

from __future__ import annotations

import os

import pytest

from hpo_assets.training import cpu_share


@pytest.mark.parametrize(
    ("cores", "busy", "requested", "threads"),
    [(2, 0.0, None, 2), (2, 0.9, None, 1), (2, 1.0, None, 1), (2, 2.0, None, 1), (2, 7.5, None, 1),
     (8, 2.2, None, 6), (8, 0.0, 4, 4), (8, 6.0, 4, 2), (1, 0.0, None, 1)],
)  # fmt: skip
def test_threads_are_the_free_cores(monkeypatch, cores: int, busy: float, requested, threads: int) -> None:
    monkeypatch.setattr(cpu_share, "usable_cores", lambda: cores)
    assert cpu_share.free_threads(requested, busy=busy) == threads


def test_busy_cores_is_measured_from_the_kernel() -> None:
    busy = cpu_share.busy_cores(sample_s=0.2)
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 1e-9
