"""Where the report's figures are drawn: here, or in helper processes while the statistics go on.

Drawing is a third of `analyze`'s CPU on a small campaign (matplotlib lays out and rasterises every tick
label; there is one figure per partition). With `analyze(..., workers=N)`, N > 1, the figures go to N - 1
spawned processes that import only matplotlib/polars (about 1 s) and draw while the main process computes
importances; a section then holds futures until `resolved` collects the PNG bytes. Without a renderer
(`workers=1`, every Dagster asset) `draw` calls the plot function at once. This module does not import
matplotlib, so a main process that only hands figures off never pays for it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

_renderer: Executor | None = None


def _render(name: str, *args: Any) -> bytes:
    from hpo_assets.analysis import plots

    return getattr(plots, name)(*args)


def _ready() -> bool:
    from hpo_assets.analysis import plots  # noqa: F401  (import while the main process is still busy)

    return True


def draw(name: str, *args: Any) -> bytes | Future:
    """`plots.<name>(*args)`: PNG bytes now, or a Future of them inside `renderers`."""
    return _render(name, *args) if _renderer is None else _renderer.submit(_render, name, *args)


@contextmanager
def renderers(processes: int) -> Iterator[None]:
    """Within the block, `draw` hands figures to `processes` spawned processes (none: draw in place).
    Spawn, not fork: a forked child of a process whose polars thread pool has run can hang."""
    global _renderer
    if processes < 1:
        yield
        return
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in range(processes):
            pool.submit(_ready)  # start the imports now, not at the first figure
        _renderer = pool
        try:
            yield
        finally:
            _renderer = None


def resolved(plots: dict[str, Any]) -> dict[str, bytes]:
    """The section's figures as bytes (waits for those still being drawn)."""
    return {k: v.result() if isinstance(v, Future) else v for k, v in plots.items()}
