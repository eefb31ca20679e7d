"""Several workers on one study (issue 22, case 7), real processes on a real PostgreSQL server and on a journal
folder: the forced extremes are enqueued once (no "skipped_duplicate" FAIL rows), and a worker killed mid-trial
has its trial failed and retried by the workers still running, not left RUNNING for a later re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo_assets import settings
from hpo_assets.search.runner import counts_toward_target, study_counts
from hpo_assets.search.storage import open_storage
from hpo_assets_tests.test_workers_postgres import _database

WORKER = """
import sys, time
from pathlib import Path
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace

spec, go, pause, n_forced, target = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
space = SearchSpace.build(ARCHS, TINY)
inner = cheap_trainer(epochs=2)

def train(arch, hp, on_epoch):  # long enough that the workers' trials overlap
    time.sleep(pause)
    return inner(arch, hp, on_epoch)

while not go.exists():  # every worker is imported and waiting: start together
    time.sleep(0.01)
run_study(space, train, study_name="shared", storage=spec, log=lambda m: None,
          options=StudyOptions(n_trials=target, n_forced=n_forced, pruner="none", tpe_startup_trials=2))
"""


def _spec(kind: str, postgres_url: str, tmp_path: Path, name: str) -> str:
    return _database(postgres_url, name) if kind == "postgresql" else str(tmp_path / "hpo")


def _workers(spec: str, go: Path, n: int, pause: float, n_forced: int, target: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, spec, str(go), str(pause), str(n_forced), str(target)],
            cwd=settings.PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(n)
    ]


def _trials(spec: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="shared", storage=open_storage(spec, "shared")).get_trials()
    except KeyError:  # the study is not created yet
        return []


@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_four_workers_enqueue_the_extremes_once(postgres_url: str, tmp_path: Path, kind: str) -> None:
    spec = _spec(kind, postgres_url, tmp_path, "extremes4")
    go = tmp_path / "go"
    procs = _workers(spec, go, 4, 0.2, 4, 8)
    time.sleep(1.0)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
        proc.stderr.close()
    trials = _trials(spec)
    # (a TPE pick two workers make at once is still skipped as a repeat: that is not an extreme)
    assert [
        t.number
        for t in trials
        if t.user_attrs.get("skipped_duplicate") and t.user_attrs.get("forced_extreme")
    ] == []
    extremes = [t.user_attrs["extreme_type"] for t in trials if t.user_attrs.get("forced_extreme")]
    assert len(extremes) == 4 and len(set(extremes)) == 4  # each enqueued, and tested, once
    assert all(t.state == TrialState.COMPLETE for t in trials if t.user_attrs.get("forced_extreme"))
    assert sum(counts_toward_target(t) for t in trials) == 8


@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_a_worker_killed_mid_trial_is_retried_by_the_others(
    postgres_url: str, tmp_path: Path, kind: str
) -> None:
    spec = _spec(kind, postgres_url, tmp_path, "killed2")
    go = tmp_path / "go"
    victim, survivor = procs = _workers(spec, go, 2, 0.6, 2, 8)
    try:
        time.sleep(1.0)
        go.touch()
        deadline = time.monotonic() + 120
        while True:  # the victim trains a forced extreme: kill it now
            mine = [t for t in _trials(spec) if t.state == TrialState.RUNNING
                    and (t.user_attrs.get("worker") or {}).get("pid") == victim.pid]  # fmt: skip
            if mine and mine[0].user_attrs.get("forced_extreme"):
                break
            assert victim.poll() is None and time.monotonic() < deadline, (
                "the victim never trained an extreme"
            )
            time.sleep(0.05)  # poll interval only
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert survivor.wait(timeout=300) == 0, survivor.stderr.read()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
    trials = _trials(spec)
    (killed,) = [t for t in trials if t.number == mine[0].number]
    assert killed.state == TrialState.FAIL and killed.user_attrs.get("killed_run")  # not left RUNNING
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]  # the survivor ran the retry
    assert (
        retries[0].user_attrs.get("extreme_type") == killed.user_attrs["extreme_type"]
    )  # the extreme is tested
    assert [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)] == []
    assert sum(counts_toward_target(t) for t in trials) == 8
    counts = study_counts(optuna.load_study(study_name="shared", storage=open_storage(spec, "shared")))
    assert counts["killed"] == counts["retried"] == 1


def test_a_retry_still_waiting_is_not_counted_as_retried() -> None:
    study = optuna.create_study()
    killed = study.ask()
    study._storage.set_trial_user_attr(killed._trial_id, "killed_run", True)
    study.tell(killed, state=TrialState.FAIL)
    study.enqueue_trial({}, user_attrs={"retry_of": killed.number})
    assert study_counts(study)["killed"] == 1 and study_counts(study)["retried"] == 0
    study.tell(study.ask(), 0.5)  # the retry runs
    assert study_counts(study)["retried"] == 1
