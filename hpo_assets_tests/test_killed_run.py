"""`dagster asset materialize` of a demo-profile study, kill -9'd mid-trial (whole process group), then run again:
the second run frees the killed run's place in the gpu pool by itself, keeps every finished trial and reaches
the target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import optuna
import pytest
from optuna.trial import TrialState

from hpo_assets import settings
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.dead_runs import slot_holders
from hpo_assets.defs.instance import ensure_instance
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.search.storage import open_storage

KEY, STUDY = "2M|h5", "hpo-2M-h5"
# The demo profile, with three shallow architectures of the 2M space and three trials to stay short.
CONFIG = {
    "profile": "demo",
    "n_trials": 2,
    "n_forced": 2,
    "architectures": ["d384-L1-H8-F1536", "d512-L1-H8-F1024", "d192-L4-H8-F768"],
}


def _materialize_cmd() -> list[str]:
    run_config = {"ops": {"hpo_study": {"config": CONFIG}}}
    return [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "hpo_assets.definitions",
            "--select", "hpo_study", "--partition", KEY, "--config-json", json.dumps(run_config)]  # fmt: skip


def _trials(storage: Path) -> list[optuna.trial.FrozenTrial]:
    if not (storage / f"{STUDY}.journal").exists():
        return []
    try:
        return optuna.load_study(study_name=STUDY, storage=open_storage(str(storage), STUDY)).get_trials()
    except KeyError:  # the study record is not written yet
        return []


@pytest.mark.slow
def test_kill_9_mid_trial_then_rerun_finishes_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, storage = tmp_path / "dagster_home", tmp_path / "hpo"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HPO_ASSETS_OUTPUTS": str(tmp_path / "outputs"),
           "HPO_ASSETS_STORAGE": str(storage),
           "HPO_ASSETS_EXECUTOR": "in_process"}  # one process per run: what `hpo-assets demo` runs too  # fmt: skip
    for name in ("DAGSTER_HOME", "HPO_ASSETS_OUTPUTS", "HPO_ASSETS_STORAGE"):
        monkeypatch.setenv(name, env[name])
    ensure_instance(home)
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success

    first = subprocess.Popen(_materialize_cmd(), env=env, cwd=settings.PROJECT_ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:  # a finished trial and the next one under way: kill now
            trials = _trials(storage)
            states = [t.state for t in trials]
            if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING:
                break
            assert first.poll() is None, (
                f"the first run ended before it could be killed: {first.stderr.read()}"
            )
            assert time.monotonic() < deadline, f"no trial under way after 300 s: {states}"
            time.sleep(0.2)  # poll interval only
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    finished = {t.number: t.value for t in _trials(storage) if t.state == TrialState.COMPLETE}
    with dg.DagsterInstance.get() as instance:
        (killed_run,) = instance.get_run_records()
        assert killed_run.dagster_run.status == dg.DagsterRunStatus.STARTED  # nothing ended it
        # and it keeps its place in the gpu pool (the run queue counts it: queued studies would wait forever)
        assert [(h.run_id, h.state) for h in slot_holders(instance, ["gpu"])] == [
            (killed_run.dagster_run.run_id, "dead")
        ]

    second = subprocess.run(_materialize_cmd(), env=env, cwd=settings.PROJECT_ROOT, capture_output=True,
                            text=True, timeout=400)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]

    trials = _trials(storage)
    assert {t.number: t.value for t in trials if t.number in finished} == finished  # nothing finished is lost
    killed = [t for t in trials if t.user_attrs.get("killed_run")]
    assert len(killed) == 1 and killed[0].state == TrialState.FAIL
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or
               (t.state == TrialState.FAIL and not t.user_attrs.get("killed_run"))]  # fmt: skip
    assert len(counted) == CONFIG["n_trials"]
    with dg.DagsterInstance.get() as instance:
        old = instance.get_run_by_id(killed_run.dagster_run.run_id)
        assert old.status == dg.DagsterRunStatus.FAILURE
        assert slot_holders(instance, ["gpu"]) == []


# --- issue 22, case 1: a killed run leaves no training orphan ------------------------------------------------------

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = """
import os, time
from hpo_assets.training.parent_death import die_with_parent
die_with_parent(os.getppid())
time.sleep(600)  # "training"
"""


def _gone_within(pid: int, start: str | None, seconds: float) -> bool:
    from hpo_assets.defs.dead_runs import pid_alive

    deadline = time.monotonic() + seconds
    while pid_alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)  # poll interval only
    return True


def test_a_step_process_dies_with_its_parent_killed_9() -> None:
    from hpo_assets.defs.dead_runs import process_start

    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    start = process_start(child)
    try:
        time.sleep(1.5)  # the child has armed its watch (it imports little)
        assert start is not None and process_start(child) == start
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        assert _gone_within(child, start, 10), "the child kept running after its parent was killed"
    finally:
        parent.stdout.close()
        for pid in (parent.pid, child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_slot_is_freed_only_when_no_process_of_the_run_is_alive(tmp_path: Path) -> None:
    import uuid

    from hpo_assets.defs.dead_runs import TAG_STEP_PID, free_dead_runs, lease_tags, process_start

    ensure_instance(tmp_path)
    dead_worker = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_worker.wait()
    step = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            instance.event_log_storage.set_concurrency_slots("gpu", 1)
            run_id = str(uuid.uuid4())
            tags = {**lease_tags(dead_worker.pid), f"{TAG_STEP_PID}{step.pid}": process_start(step.pid) or ""}
            instance.add_run(dg.DagsterRun(job_name="study_job", run_id=run_id, tags=tags,
                                           status=dg.DagsterRunStatus.STARTED))  # fmt: skip
            assert instance.event_log_storage.claim_concurrency_slot("gpu", run_id, "hpo_study").is_claimed
            (holder,) = slot_holders(instance, ["gpu"])
            assert holder.state == "alive" and str(step.pid) in holder.why  # its worker is gone, its step not
            assert free_dead_runs(instance, ["gpu"]) == []
            step.kill()
            step.wait()
            assert [h.run_id for h in free_dead_runs(instance, ["gpu"])] == [run_id]
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    finally:
        if step.poll() is None:
            step.kill()
            step.wait()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_kill_9_of_a_multiprocess_run_worker_leaves_no_training_orphan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dagster asset materialize` as the README shows (multiprocess executor): kill -9 of the run worker alone,
    mid-trial. The step process training the study dies with it, and the run's tags named it."""
    from hpo_assets.defs.dead_runs import TAG_STEP_PID, process_start

    home, storage = tmp_path / "dagster_home", tmp_path / "hpo"
    env = {**os.environ, "DAGSTER_HOME": str(home), "HPO_ASSETS_OUTPUTS": str(tmp_path / "outputs"),
           "HPO_ASSETS_STORAGE": str(storage), "HPO_ASSETS_EXECUTOR": "multiprocess"}  # fmt: skip
    for name in ("DAGSTER_HOME", "HPO_ASSETS_OUTPUTS", "HPO_ASSETS_STORAGE"):
        monkeypatch.setenv(name, env[name])
    ensure_instance(home)
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success

    worker = subprocess.Popen(_materialize_cmd(), env=env, cwd=settings.PROJECT_ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    steps: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while not any(t.state == TrialState.RUNNING for t in _trials(storage)):  # a trial under way
            assert worker.poll() is None, f"the run ended before it could be killed: {worker.stderr.read()}"
            assert time.monotonic() < deadline, "no trial under way after 300 s"
            time.sleep(0.2)  # poll interval only
        steps = _children(worker.pid)
        starts = {pid: process_start(pid) for pid in steps}
        with dg.DagsterInstance.get() as instance:
            (run,) = [r.dagster_run for r in instance.get_run_records()]
            recorded = {int(k.removeprefix(TAG_STEP_PID)) for k in run.tags if k.startswith(TAG_STEP_PID)}
        assert recorded and recorded <= set(steps)  # the training step process is in the run's lease
        os.kill(worker.pid, signal.SIGKILL)  # the run worker only, not its process group
        worker.wait(timeout=60)
        orphans = [pid for pid in steps if not _gone_within(pid, starts[pid], 15)]
        assert orphans == [], f"process(es) {orphans} of the run kept running after its run worker was killed"
    finally:
        worker.stderr.close()
        for pid in [worker.pid, *steps]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
