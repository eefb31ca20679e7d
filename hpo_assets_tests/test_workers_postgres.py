"""Two and four worker processes start together on an empty PostgreSQL database: all of them work, Optuna's
tables are created once, and the study stops at exactly its target."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo_assets import settings
from hpo_assets.search.runner import counts_toward_target

TARGET = 6
WORKER = f"""
import sys, time
from pathlib import Path
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace

url, go = sys.argv[1], Path(sys.argv[2])
space = SearchSpace.build(ARCHS, TINY)
inner = cheap_trainer(epochs=2)

def train(arch, hp, on_epoch):  # long enough that the workers' trials overlap
    time.sleep(0.3)
    return inner(arch, hp, on_epoch)

while not go.exists():  # every worker is imported and waiting: start together
    time.sleep(0.01)
run = run_study(space, train, study_name="shared", storage=url, log=lambda m: None,
                options=StudyOptions(n_trials={TARGET}, n_forced=2, pruner="none", tpe_startup_trials=2))
print("new", len(run.new_trials))
"""


def _database(server_url: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("n_workers", [2, 4])
def test_workers_starting_together_on_an_empty_database(
    postgres_url: str, tmp_path: Path, n_workers: int
) -> None:
    url = _database(postgres_url, f"workers{n_workers}")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(go)],
            cwd=settings.PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(n_workers)
    ]
    time.sleep(1.0)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]  # no UniqueViolation from two workers creating the tables
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert sum(counts_toward_target(t) for t in trials) == TARGET  # not TARGET + n_workers - 1
    assert [t for t in trials if t.state == TrialState.RUNNING] == []
    assert sum(int(out.split()[-1]) for out, _ in outs) == len(trials)  # every trial was run by one worker
