"""`make demo`: run the main jobs on the bundled data into the local Dagster instance, then say where things are."""

from __future__ import annotations

import time

from hpo_assets import outputs, settings
from hpo_assets.local_runs import POOL_WAIT_S, local_instance, pool_ready, run_job
from hpo_assets.locations import mask_password

# Two budgets at h1 make one complete comparison (both winners retrained and scored on the same walk-forward
# test folds); 2M at h3 and h5 show the other horizons. 20M does not fit a CPU demo (`hpo-assets plan
# "20M|h1" --profile demo`: ~0.47 compute-hours for the study alone), 200K costs about a third of 2M.
DEMO_PARTITIONS = ["200K|h1", "2M|h1", "2M|h3", "2M|h5"]
CALIBRATED_PARTITIONS = ["200K|h1", "2M|h1"]
# importance of the demo studies and of the imported examples (20M and 200M at h1)
IMPORTANCE_PARTITIONS = [*DEMO_PARTITIONS, "20M|h1", "200M|h1"]
EXAMPLES = settings.DATA_DIR / "examples" / "phase6c_a50"


def run_demo(profile: str = "demo", pool_wait_s: float = POOL_WAIT_S) -> int:
    """Market data -> features -> 200K|h1 and three 2M studies -> baselines -> calibrated 200K|h1 and 2M|h1 models
    -> trial table, analysis."""
    settings.settings(profile)  # an unknown profile fails here, before any work
    instance = local_instance()
    started = time.monotonic()
    ok = run_job("market_job", instance)
    for key in DEMO_PARTITIONS if ok else []:
        ok = (
            ok
            and pool_ready(instance, pool_wait_s)
            and run_job(
                "study_job",
                instance,
                partition_key=key,
                run_config={"ops": {"hpo_study": {"config": {"profile": profile}}}},
            )
        )
    for horizon in dict.fromkeys(k.split("|")[1] for k in DEMO_PARTITIONS) if ok else []:
        ok = ok and run_job(
            "baselines_job",
            instance,
            partition_key=horizon,
            run_config={"ops": {"baselines": {"config": {"profile": profile}}}},
        )
    cards = []
    for key in CALIBRATED_PARTITIONS if ok else []:
        ok = (
            ok
            and pool_ready(instance, pool_wait_s)
            and run_job(
                "calibrated_model_job",
                instance,
                partition_key=key,
                run_config={"ops": {"calibrated_model": {"config": {"profile": profile}}}},
            )
        )
        budget, horizon = key.split("|")
        cards.append(settings.outputs_dir() / "models" / f"{budget}_{horizon}" / "card.md")
    if ok:
        ok = run_job(
            "analysis_job",
            instance,
            run_config={"ops": {"imported_studies": {"config": {"sources": [str(EXAMPLES)]}}}},
        )
    for key in IMPORTANCE_PARTITIONS if ok else []:
        ok = ok and run_job("importance_job", instance, partition_key=key)
    if ok:
        ok = run_job("report_job", instance)
    print(
        f"\nDemo {'finished' if ok else 'STOPPED'} in {time.monotonic() - started:.0f} s (profile {profile})."
    )
    print(f"  outputs:        {settings.outputs_dir()}")
    print(f"  study storage:  {mask_password(settings.storage_spec())}")
    print(f"  Dagster home:   {settings.dagster_home()}")
    for card in (c for c in cards if c.is_file()):
        print(f"  model card:     {card}  (load: hpo_assets.training.saved_model.load_calibrated_model)")
    print("  open the UI:    make ui   (then http://127.0.0.1:3000, Assets -> hpo_study)")
    report = settings.outputs_dir().joinpath(*outputs.ANALYSIS_DIR, "hpo_report.html")
    print(f"  report:         {report}" + ("" if ok else "  (not rebuilt: the demo stopped)"))
    return 0 if ok else 1
