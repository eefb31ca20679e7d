"""Jobs run in this process (`hpo-assets demo`, `hpo-assets study`), their wait for a pool, and dead runs freed.

This module sits above `definitions.py` (it runs the code location's jobs) and below the CLI and the demo.
An in-process run is never health-checked by Dagster, so each one carries this process's worker lease
(`defs/dead_runs.py`) from its creation, and before it starts it frees the pool places of runs whose
worker is gone and waits, asleep and bounded, for a place a live run holds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetCheckEvaluation
from dagster._core.execution.plan.objects import StepFailureData

from hpo_assets import settings
from hpo_assets.defs.dead_runs import RECOVER_COMMAND, free_dead_runs, lease_tags, slot_holders

GPU_POOL = "gpu"
POOL_WAIT_S = 120.0  # how long a run waits for a gpu place held by another live run before it stops


class PoolBusy(RuntimeError):
    """A pool stayed full of live (or uncheckable) runs for the whole bounded wait."""


def local_instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME (default `.dagster_home/`), with SIGTERM stopping a run like Ctrl-C."""
    from dagster._utils.interrupts import setup_interrupt_handlers

    setup_interrupt_handlers()  # steps end and release their pool places on SIGTERM too
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    Path(home).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def pool_is_free(instance: dg.DagsterInstance, pool: str) -> bool:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return True
    info = storage.get_concurrency_info(pool)
    limit = info.slot_count or info.limit
    if not limit:
        return True
    taken = {h.run_id for h in slot_holders(instance, [pool]) if h.claimed}
    return len(taken) < limit


def wait_for_pool(
    instance: dg.DagsterInstance,
    pool: str,
    *,
    limit_s: float,
    poll_s: float = 2.0,
    log: Any = print,
) -> None:
    """Free the slots of dead runs, then wait (asleep) at most `limit_s` for a slot of `pool`.

    Raises PoolBusy naming the runs that hold the pool and the command that frees one.
    """
    deadline = time.monotonic() + limit_s
    announced = False
    while True:
        for holder in free_dead_runs(instance, [pool]):
            log(f"freed: {holder.describe()}")
        if pool_is_free(instance, pool):
            return
        holders = [h for h in slot_holders(instance, [pool]) if h.claimed]
        if time.monotonic() >= deadline:
            names = (
                "; ".join(h.describe() for h in holders) or "no run (the slots are held by nothing visible)"
            )
            raise PoolBusy(
                f"pool {pool!r} stayed full for {limit_s:.0f} s: {names}. If that run is stuck, free its "
                f"slot with `{RECOVER_COMMAND} --run {holders[0].run_id if holders else 'RUN_ID'}`"
            )
        if not announced:
            log(
                f"waiting up to {limit_s:.0f} s for pool {pool!r}: "
                + "; ".join(h.describe() for h in holders)
            )
            announced = True
        time.sleep(max(0.01, min(poll_s, deadline - time.monotonic())))


def pool_ready(instance: dg.DagsterInstance, pool_wait_s: float, pool: str = GPU_POOL) -> bool:
    """Free the place of a killed run; wait a bounded time for a live one, then say who holds it."""
    try:
        wait_for_pool(instance, pool, limit_s=pool_wait_s, log=lambda m: print(f"  {m}"))
    except PoolBusy as exc:
        print(f"  STOPPED: {exc}")
        return False
    return True


def recover(instance: dg.DagsterInstance, pools: list[str] | None, run_id: str = "") -> list[str]:
    """`hpo-assets recover`: free the places of dead runs (or of `run_id`, alive or not); lines to print."""
    if run_id:
        run = instance.get_run_by_id(run_id)
        held = [h for h in slot_holders(instance, pools) if h.run_id == run_id]
        if run is None and not held:
            raise ValueError(f"no run {run_id!r} in {settings.dagster_home()} and no slot held by it")
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"{RECOVER_COMMAND} --run {run_id}: freed by hand")
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        return [f"run {run_id}: marked failed, {len(held)} pool slot(s) freed"]
    freed = free_dead_runs(instance, pools)
    lines = [f"freed: {holder.describe()}" for holder in freed]
    for holder in slot_holders(instance, pools):
        hint = (
            "" if holder.state == "alive" else f"  (free it with `{RECOVER_COMMAND} --run {holder.run_id}`)"
        )
        lines.append(f"left: {holder.describe()}{hint}")
    if not freed:
        lines.append("no slot held by a dead run")
    return lines


def _short(value: Any) -> str | None:
    """A metadata value worth one line on a terminal (numbers, short text, paths); None for tables and plots."""
    inner = getattr(value, "value", value)
    if isinstance(inner, bool | int | float):
        return f"{inner:.4g}" if isinstance(inner, float) else str(inner)
    if isinstance(inner, str) and len(inner) <= 100 and "\n" not in inner and "data:image" not in inner:
        return inner
    return None


def _report(result: dg.ExecuteInProcessResult) -> None:
    for event in result.all_events:
        if not event.is_step_materialization:
            continue
        mat = event.step_materialization_data.materialization
        label = mat.asset_key.to_user_string() + (f" [{mat.partition}]" if mat.partition else "")
        print(f"  {label}")
        for key, value in mat.metadata.items():
            text = _short(value)
            if text is not None:
                print(f"      {key}: {text}")
    for event in result.all_events:
        ev = event.event_specific_data
        if isinstance(ev, AssetCheckEvaluation):
            print(f"  check {ev.asset_check_key.name}: {'passed' if ev.passed else 'FAILED'}")


def run_job(job: str, instance: dg.DagsterInstance, **kwargs: Any) -> bool:
    """Run one job of the code location in this process, print what it materialized; False when it failed."""
    from hpo_assets.definitions import defs
    from hpo_assets.search.progress import bar_on_terminal

    started = time.monotonic()
    part = f" partition {kwargs['partition_key']}" if "partition_key" in kwargs else ""
    print(f"\n== {job}{part}")
    run_config = dict(kwargs.pop("run_config", {}))
    # on a terminal with a progress bar (search/progress.py) the bar says what the INFO lines would
    level = "WARNING" if bar_on_terminal() else "INFO"
    run_config.setdefault("loggers", {"console": {"config": {"log_level": level}}})
    tags = {**kwargs.pop("tags", {}), **lease_tags()}  # this process is the run's worker
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, tags=tags, **kwargs
    )
    _report(result)
    if not result.success:
        for event in result.all_events:
            data = event.event_specific_data
            if event.is_step_failure and isinstance(data, StepFailureData):
                err = data.error
                while (
                    err is not None and err.cause is not None and (err.cls_name or "").startswith("Dagster")
                ):
                    err = err.cause  # Dagster's wrapper ("Error occurred while executing op"): say the cause
                print(f"  FAILED {event.step_key}: {err.message.strip() if err else 'unknown error'}")
        return False
    print(f"  done in {time.monotonic() - started:.1f} s")
    return True


def run_study_partition(key: str, values: dict[str, Any], pool_wait_s: float = POOL_WAIT_S) -> int:
    """`hpo-assets study KEY`: one hpo_study partition in this process (as `make demo` runs it); exit code.

    `key` and `values` are checked first (`search.study_settings.check_values`), so a bad one fails in
    one line before anything is loaded.
    """
    from hpo_assets.outputs import FEATURES_FILE
    from hpo_assets.search.partition import parse_partition
    from hpo_assets.search.study_settings import check_values

    key = parse_partition(key).key
    values = check_values(values)
    features = settings.outputs_dir().joinpath(*FEATURES_FILE)
    if not features.is_file():
        raise ValueError(f"no features at {features}: run `hpo-assets demo` or materialize market_job first")
    instance = local_instance()
    profile = str(values.get("profile") or "defaults")  # the run's tag names what it runs, not study_job's
    run_config = {"ops": {"hpo_study": {"config": values}}}
    tags = {"hpo-assets/profile": profile}
    ok = pool_ready(instance, pool_wait_s) and run_job(
        "study_job", instance, partition_key=key, run_config=run_config, tags=tags
    )
    return 0 if ok else 1
