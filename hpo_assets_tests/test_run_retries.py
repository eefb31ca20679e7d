"""Preemption: a demo study run launched through a real dagster-daemon is kill -9'd mid-study; the daemon's
free_dead_runs sensor fails it, run retries (dagster.yaml run_retries + the job's dagster/max_retries tag)
relaunch it, and the retry resumes the study to its target with every trial finished before the kill kept."""

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
import yaml
from optuna.trial import TrialState

from hpo_assets import settings
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.dead_runs import TAG_PID
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.search.storage import open_storage

BIN = Path(sys.executable).parent
KEY, STUDY = "2M|h5", "hpo-2M-h5"
# This site's `demo` profile (HPO_ASSETS_SETTINGS; study_demo_job bakes in the profile): 4 short trials.
TINY = {"n_trials": 4, "max_epochs": 2, "n_forced": 4, "pruner": "none", "start": "2014-10-01",
        "architectures": ["d384-L1-H8-F1536", "d512-L1-H8-F1024", "d192-L4-H8-F768"]}  # fmt: skip
WAIT_S = 480  # bounded waits: a hang fails the test; none is a timing assertion


def _trials(storage: Path) -> list[optuna.trial.FrozenTrial]:
    if not (storage / f"{STUDY}.journal").exists():
        return []
    try:
        return optuna.load_study(study_name=STUDY, storage=open_storage(str(storage), STUDY)).get_trials()
    except KeyError:
        return []


def _wait(what: str, check, deadline: float, daemon: subprocess.Popen, log: Path):  # type: ignore[no-untyped-def]
    while True:
        found = check()
        if found:
            return found
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; daemon log: {log.read_text()[-3000:]}")
        time.sleep(1)


@pytest.mark.slow
def test_a_killed_study_run_is_retried_and_finishes_with_no_trial_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, storage = tmp_path / "home", tmp_path / "hpo"
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"profiles": {"demo": {"study": TINY}}}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "HPO_ASSETS_OUTPUTS": str(tmp_path / "outputs"),
           "HPO_ASSETS_STORAGE": str(storage), "HPO_ASSETS_SETTINGS": str(site), "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    for name in ("HPO_ASSETS_GPU_LIMIT", "HPO_ASSETS_IMPORT_DIRS", "HPO_ASSETS_EXECUTOR"):
        env.pop(name, None)
    for name in ("DAGSTER_HOME", "HPO_ASSETS_OUTPUTS", "HPO_ASSETS_STORAGE", "HPO_ASSETS_SETTINGS"):
        monkeypatch.setenv(name, env[name])
    init = subprocess.run([str(BIN / "hpo-assets"), "init-instance", "--home", str(home)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success

    log = tmp_path / "daemon.log"
    with open(log, "w") as fh:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                  cwd=settings.PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    instance = dg.DagsterInstance.get()
    try:
        launch = subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "study_demo_job",
             "--tags", json.dumps({"dagster/partition": KEY}),  # the job's own profile, as a backfill runs it
             "--config-json", json.dumps({"ops": {"hpo_study": {"config": {"profile": "demo"}}}})],
            cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert launch.returncode == 0, launch.stderr[-3000:]
        deadline = time.monotonic() + WAIT_S

        def first_run() -> dg.DagsterRun | None:
            runs = instance.get_runs(dg.RunsFilter(job_name="study_demo_job"))
            return runs[-1] if runs else None

        def worker_mid_study() -> tuple[dg.DagsterRun, int] | None:
            run = first_run()
            if run is None or TAG_PID not in run.tags:
                return None
            done = [t for t in _trials(storage) if t.state == TrialState.COMPLETE]
            return (run, int(run.tags[TAG_PID])) if done else None

        killed, pid = _wait("a trial of the first run to finish", worker_mid_study, deadline, daemon, log)
        before = {t.number: t.value for t in _trials(storage) if t.state == TrialState.COMPLETE}
        assert 0 < len(before) < TINY["n_trials"], "killed mid-study"
        assert killed.tags.get("dagster/max_retries") == "3"
        os.kill(pid, signal.SIGKILL)

        def retry_done() -> dg.DagsterRun | None:
            runs = [r for r in instance.get_runs(dg.RunsFilter(job_name="study_demo_job"))
                    if r.parent_run_id == killed.run_id]  # fmt: skip
            if runs and runs[0].status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                pytest.fail(f"the retry run {runs[0].run_id} ended {runs[0].status}")
            return runs[0] if runs and runs[0].status == dg.DagsterRunStatus.SUCCESS else None

        retry = _wait("the retry run to succeed", retry_done, deadline, daemon, log)
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=30)
        try:
            os.killpg(daemon.pid, signal.SIGTERM)  # its code server, in the group this test made
        except ProcessLookupError:
            pass

    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert retry.tags.get("dagster/retry_number") == "1" and retry.tags.get("dagster/partition") == KEY
    after = _trials(storage)
    complete = {t.number: t.value for t in after if t.state == TrialState.COMPLETE}
    assert all(complete.get(n) == v for n, v in before.items()), (
        "every trial finished before the kill is kept"
    )
    assert len(complete) >= TINY["n_trials"], "the retry resumed the study to its target"
    assert not [t for t in after if t.state == TrialState.RUNNING], "no trial is left RUNNING"
