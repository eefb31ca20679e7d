"""Waiting for a pool slot at op granularity: asleep, interruptible, never on a run whose process is gone.

Opt-in (`HPO_ASSETS_POOL_WAIT=1`): it replaces a private Dagster method, and the shipped instance keeps
pools at run granularity, where a step never waits in `claim` (the run queue holds the run instead).
With pools at op granularity, Dagster's executors (1.13) poll `InstanceConcurrencyContext.claim` in a loop that does not sleep while
a step is blocked: the in-process executor sleeps `min(0, ...)` seconds and the multiprocess executor
not at all, so a study queued behind another one burns ~90% of a core for the whole wait, and the
in-process loop never looks at Ctrl-C / SIGTERM. `install()` wraps `claim` (once per process, from
definitions.py when opted in) so that a denied claim
- records this process as the run's worker (the lease `dead_runs` checks),
- frees the slots of runs whose worker is gone (first block, then every `DEAD_RUN_CHECK_S`),
- raises the captured interrupt, and
- sleeps until Dagster's next check is due (at most `MAX_SLEEP_S`) instead of returning at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hpo_assets.defs.dead_runs import free_dead_runs, take_lease

MIN_SLEEP_S = 0.05
MAX_SLEEP_S = 1.0
DEAD_RUN_CHECK_S = 10.0
_log = logging.getLogger("hpo_assets.pool_wait")


def _wrap(original: Any) -> Any:
    def claim(self: Any, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        from dagster._core.errors import DagsterExecutionInterruptedError
        from dagster._utils.interrupts import check_captured_interrupt

        state = self.__dict__.setdefault("_hpo_wait", {"leased": False, "checked_at": None})
        if not state["leased"]:
            take_lease(self._instance, self._run_id)
            state["leased"] = True
        if original(self, concurrency_key, step_key, step_priority):
            return True
        now = time.monotonic()
        if state["checked_at"] is None or now - state["checked_at"] >= DEAD_RUN_CHECK_S:
            state["checked_at"] = now
            freed = free_dead_runs(self._instance, [concurrency_key], except_run=self._run_id)
            for holder in freed:
                _log.warning("freed a pool slot: %s", holder.describe())
            if freed:
                self._pending_timeouts[step_key] = 0.0  # claim again right away
                return False
        if check_captured_interrupt():
            raise DagsterExecutionInterruptedError(f"interrupted while waiting for pool {concurrency_key!r}")
        wait = self._pending_timeouts.get(step_key, 0.0) - time.time()
        time.sleep(min(max(wait, MIN_SLEEP_S), MAX_SLEEP_S))
        return False

    claim._hpo_wrapped = True  # type: ignore[attr-defined]  # marks the wrapper, so install() runs once
    return claim


class PoolWaitUnavailable(RuntimeError):
    """The Dagster in use has no `InstanceConcurrencyContext.claim` of the shape this wraps."""


CLAIM_PARAMETERS = ["self", "concurrency_key", "step_key", "step_priority"]


def install() -> None:
    """Wrap Dagster's claim once; raises PoolWaitUnavailable, changing nothing, on a Dagster without it."""
    import inspect

    import dagster as dg

    try:
        from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
    except ImportError as exc:
        raise PoolWaitUnavailable(f"HPO_ASSETS_POOL_WAIT: dagster {dg.__version__}: {exc}") from None
    original = getattr(InstanceConcurrencyContext, "claim", None)
    if getattr(original, "_hpo_wrapped", False):
        return
    found = list(inspect.signature(original).parameters) if callable(original) else None
    if found != CLAIM_PARAMETERS:
        raise PoolWaitUnavailable(
            f"HPO_ASSETS_POOL_WAIT: dagster {dg.__version__} has InstanceConcurrencyContext.claim{found}, "
            f"not {CLAIM_PARAMETERS}; unset HPO_ASSETS_POOL_WAIT (or keep pools at run granularity)"
        )
    InstanceConcurrencyContext.claim = _wrap(original)  # type: ignore[method-assign]  # the opt-in patch
