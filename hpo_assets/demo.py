"""`make demo`: run the main jobs on the bundled data into the local Dagster instance, then say where things are."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetCheckEvaluation
from dagster._core.execution.plan.objects import StepFailureData

from hpo_assets import outputs, settings
from hpo_assets.locations import mask_password

DEMO_PARTITIONS = ["2M|h1", "2M|h3", "2M|h5"]
CALIBRATED_PARTITION = "2M|h1"
# importance of the demo studies and of the imported examples (20M and 200M at h1)
IMPORTANCE_PARTITIONS = [*DEMO_PARTITIONS, "20M|h1", "200M|h1"]
EXAMPLES = settings.DATA_DIR / "examples" / "phase6c_a50"
POOL_WAIT_S = 120.0  # how long a study waits for a gpu slot held by another live run before the demo stops


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


def _run(defs: dg.Definitions, job: str, instance: dg.DagsterInstance, **kwargs: Any) -> bool:
    started = time.monotonic()
    part = f" partition {kwargs['partition_key']}" if "partition_key" in kwargs else ""
    print(f"\n== {job}{part}")
    run_config = dict(kwargs.pop("run_config", {}))
    run_config.setdefault("loggers", {"console": {"config": {"log_level": "INFO"}}})
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, **kwargs
    )
    _report(result)
    if not result.success:
        for event in result.all_events:
            data = event.event_specific_data
            if event.is_step_failure and isinstance(data, StepFailureData):
                err = data.error
                print(f"  FAILED {event.step_key}: {err.message.strip() if err else 'unknown error'}")
        return False
    print(f"  done in {time.monotonic() - started:.1f} s")
    return True


def _pool_ready(instance: dg.DagsterInstance, pool_wait_s: float) -> bool:
    """Free the gpu slot of a killed run; wait a bounded time for a live one, then say who holds it."""
    from hpo_assets.defs.dead_runs import PoolBusy, wait_for_pool

    try:
        wait_for_pool(instance, "gpu", limit_s=pool_wait_s, log=lambda m: print(f"  {m}"))
    except PoolBusy as exc:
        print(f"  STOPPED: {exc}")
        return False
    return True


def run_demo(profile: str = "demo", pool_wait_s: float = POOL_WAIT_S) -> int:
    """Market data -> features -> three 2M studies -> baselines -> calibrated 2M|h1 model -> trial table, analysis."""
    from dagster._utils.interrupts import setup_interrupt_handlers

    from hpo_assets.definitions import defs

    setup_interrupt_handlers()  # SIGTERM stops the run like Ctrl-C: steps end and release their slots

    settings.settings(profile)  # an unknown profile fails here, before any work
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    Path(home).mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.get()
    started = time.monotonic()
    ok = _run(defs, "market_job", instance)
    for key in DEMO_PARTITIONS if ok else []:
        ok = (
            ok
            and _pool_ready(instance, pool_wait_s)
            and _run(
                defs,
                "study_job",
                instance,
                partition_key=key,
                run_config={"ops": {"hpo_study": {"config": {"profile": profile}}}},
            )
        )
    for horizon in dict.fromkeys(k.split("|")[1] for k in DEMO_PARTITIONS) if ok else []:
        ok = ok and _run(
            defs,
            "baselines_job",
            instance,
            partition_key=horizon,
            run_config={"ops": {"baselines": {"config": {"profile": profile}}}},
        )
    card = None
    if ok:
        ok = _pool_ready(instance, pool_wait_s) and _run(
            defs,
            "calibrated_model_job",
            instance,
            partition_key=CALIBRATED_PARTITION,
            run_config={"ops": {"calibrated_model": {"config": {"profile": profile}}}},
        )
        budget, horizon = CALIBRATED_PARTITION.split("|")
        card = settings.outputs_dir() / "models" / f"{budget}_{horizon}" / "card.md"
    if ok:
        ok = _run(
            defs,
            "analysis_job",
            instance,
            run_config={"ops": {"imported_studies": {"config": {"sources": [str(EXAMPLES)]}}}},
        )
    for key in IMPORTANCE_PARTITIONS if ok else []:
        ok = ok and _run(defs, "importance_job", instance, partition_key=key)
    if ok:
        ok = _run(defs, "report_job", instance)
    print(
        f"\nDemo {'finished' if ok else 'STOPPED'} in {time.monotonic() - started:.0f} s (profile {profile})."
    )
    print(f"  outputs:        {settings.outputs_dir()}")
    print(f"  study storage:  {mask_password(settings.storage_spec())}")
    print(f"  Dagster home:   {home}")
    if card is not None and card.is_file():
        print(f"  model card:     {card}  (load: hpo_assets.training.saved_model.load_calibrated_model)")
    print("  open the UI:    make ui   (then http://127.0.0.1:3000, Assets -> hpo_study)")
    report = settings.outputs_dir().joinpath(*outputs.ANALYSIS_DIR, "hpo_report.html")
    print(f"  report:         {report}" + ("" if ok else "  (not rebuilt: the demo stopped)"))
    return 0 if ok else 1
