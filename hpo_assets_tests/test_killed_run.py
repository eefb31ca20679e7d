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
