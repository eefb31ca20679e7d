"""A study process killed with SIGKILL mid-trial: the next run keeps every finished trial and reaches the target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpo_assets import settings
from hpo_assets.search.runner import KILLED_REASON, StudyOptions, run_study
from hpo_assets.search.storage import open_storage

TARGET = 4
KILL_AT_TRIAL = 2


def tiny_setup():
    """Real tiny PatchTSTs on a small window of the bundled data (used by the killed subprocess too)."""
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.model.params import Arch, count_parameters
    from hpo_assets.search.objective import TorchTrainer
    from hpo_assets.search.space import ArchChoice, SearchSpace

    data = prepare_dataset(load_market(default_market_path()), 1, start="2014-01-01", end="2016-12-31",
                           val_start="2015-10-01", test_start="2016-10-01")  # fmt: skip
    archs = [ArchChoice(a.label, a.d_model, a.n_layers, a.n_heads, a.d_ff, count_parameters(a, 25, 80, 16, 8))
             for a in (Arch(16, 1, 2, 32), Arch(32, 1, 2, 64), Arch(32, 2, 4, 64))]  # fmt: skip
    choices = {"lr": [1e-3, 3e-3], "dropout": [0.0, 0.1], "weight_decay": [0.0], "warmup_frac": [0.0], "normalization": ["zscore"],
               "batch_size": [128]}  # fmt: skip
    space = SearchSpace.build(archs, choices)
    # One epoch per trial: the kill lands after epoch 1 is reported, before the trial is told.
    trainer = TorchTrainer(data, max_epochs=1, patience=1, seed=0, device="cpu", num_threads=1)
    options = StudyOptions(n_trials=TARGET, n_forced=2, pruner="none", epochs_config=1)
    return space, trainer, options


CHILD = f"""
import sys, threading
from pathlib import Path
from hpo_assets_tests.test_study_resume import tiny_setup
from hpo_assets.search.runner import run_study

storage, marker = sys.argv[1], Path(sys.argv[2])
space, trainer, options = tiny_setup()

def hold_mid_trial(number, record):
    if number == {KILL_AT_TRIAL} and record["epoch"] == 1:
        marker.write_text(str(number))
        threading.Event().wait()  # stay inside the trial until the test kills this process

run_study(space, trainer, study_name="s", storage=storage, options=options, epoch_hook=hold_mid_trial,
          log=lambda m: None)
"""


def _wait_for(marker: Path, proc: subprocess.Popen, limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"study process exited early ({proc.returncode}): {proc.stderr.read()}")
        assert time.monotonic() < deadline, "the study process never reached the marked epoch"
        time.sleep(0.05)  # poll interval only; nothing depends on how long training takes


def test_sigkill_mid_trial_then_resume(tmp_path: Path) -> None:
    storage, marker = tmp_path / "hpo", tmp_path / "in_trial"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(storage), str(marker)], cwd=settings.PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for(marker, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    study = optuna.load_study(study_name="s", storage=open_storage(str(storage), "s"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    before = {t.number: (t.params, t.value, t.user_attrs) for t in study.trials[:KILL_AT_TRIAL]}
    killed_params = study.trials[KILL_AT_TRIAL].params

    space, trainer, options = tiny_setup()
    run = run_study(space, trainer, study_name="s", storage=str(storage), options=options, log=lambda m: None)

    study = optuna.load_study(study_name="s", storage=open_storage(str(storage), "s"))
    assert {t.number: (t.params, t.value, t.user_attrs) for t in study.trials[:KILL_AT_TRIAL]} == before
    killed = study.trials[KILL_AT_TRIAL]
    assert killed.state == TrialState.FAIL and killed.user_attrs["fail_reason"] == KILLED_REASON
    assert killed.user_attrs["learning_curve"][0]["epoch"] == 1, (
        "the epoch it finished before the kill is kept"
    )
    retry = study.trials[KILL_AT_TRIAL + 1]
    assert retry.params == killed_params and retry.user_attrs["retry_of"] == KILL_AT_TRIAL
    assert retry.state == TrialState.COMPLETE
    assert run.counted == TARGET and run.killed == 1 and len(study.trials) == TARGET + 1
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


HOLDER = """
import sys, threading
from pathlib import Path
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace

storage, marker = sys.argv[1], Path(sys.argv[2])

def hold(number, record):
    marker.write_text(str(number))
    threading.Event().wait()  # a live worker, busy inside trial 0

run_study(SearchSpace.build(ARCHS, TINY), cheap_trainer(), study_name="s", storage=storage,
          options=StudyOptions(n_trials=1, n_forced=0, pruner="none"), epoch_hook=hold, log=lambda m: None)
"""


def test_a_live_worker_trial_is_left_alone_and_failed_once_its_process_is_gone(tmp_path: Path) -> None:
    from hpo_assets.search.space import PARAM_NAMES, SearchSpace
    from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer

    storage, marker = tmp_path / "hpo", tmp_path / "in_trial"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(storage), str(marker)], cwd=settings.PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    space = SearchSpace.build(ARCHS, TINY)

    def run(n: int):
        return run_study(space, cheap_trainer(), study_name="s", storage=str(storage),
                         options=StudyOptions(n_trials=n, n_forced=0, pruner="none"), log=lambda m: None)  # fmt: skip

    try:
        _wait_for(marker, proc)
        run(3)  # a second worker on the same study, while the first is still training trial 0
        study = optuna.load_study(study_name="s", storage=open_storage(str(storage), "s"))
        held = study.trials[0]
        assert held.state == TrialState.RUNNING and "killed_run" not in held.user_attrs
        # the live worker's trial counts toward the target (claimed): 2 more, not 3 (no overshoot, issue #13)
        assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 2
        keys = [tuple(t.params[k] for k in PARAM_NAMES) for t in study.trials]
        assert len(set(keys)) == 3, "the live worker's configuration counts as tested"
    finally:
        proc.kill()
        proc.wait(timeout=60)

    run(4)  # the first worker is gone now: its trial is failed and retried
    study = optuna.load_study(study_name="s", storage=open_storage(str(storage), "s"))
    assert (
        study.trials[0].state == TrialState.FAIL
        and study.trials[0].user_attrs["fail_reason"] == KILLED_REASON
    )
    assert study.trials[3].user_attrs["retry_of"] == 0 and study.trials[3].params == study.trials[0].params
    assert study.trials[3].state == TrialState.COMPLETE and len(study.trials) == 5


def test_abandoned_means_dead_process_here_or_stale_heartbeat_elsewhere(tmp_path: Path) -> None:
    from optuna.trial import create_trial

    from hpo_assets.search.liveness import HOST, Heartbeat, is_abandoned

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = 1_000_000.0

    def running(host: str, pid: int, beat: float):
        return create_trial(state=TrialState.RUNNING, user_attrs={"worker": {"host": host, "pid": pid},
                                                                  "heartbeat_at": beat})  # fmt: skip

    assert is_abandoned(running(HOST, gone.pid, now), now=now)
    assert not is_abandoned(running(HOST, os.getppid(), now), now=now)
    assert is_abandoned(running(HOST, os.getpid(), now), now=now)  # this process runs no other trial
    assert not is_abandoned(running("another-pod", 7, now - 60), now=now, stale_after_s=900)
    assert is_abandoned(running("another-pod", 7, now - 901), now=now, stale_after_s=900)

    study = optuna.create_study(study_name="h", storage=open_storage(str(tmp_path), "h"))
    trial = study.ask()
    with Heartbeat(trial.storage, trial._trial_id, interval_s=3600):
        assert isinstance(study.trials[0].user_attrs["heartbeat_at"], float)
