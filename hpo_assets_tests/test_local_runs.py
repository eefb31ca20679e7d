"""Jobs run in this process carry this process's worker lease from the start, and a failed step is named."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from hpo_assets.defs.dead_runs import TAG_PID, run_state
from hpo_assets.defs.instance import ensure_instance
from hpo_assets.local_runs import local_instance, run_job


@pytest.fixture
def instance(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home = isolated_dirs / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_instance(home)
    return local_instance()


def test_an_in_process_run_is_leased_to_this_process(instance: dg.DagsterInstance, capsys) -> None:
    assert run_job("market_job", instance)
    (record,) = instance.get_run_records()
    run = record.dagster_run
    assert run.tags[TAG_PID] == str(os.getpid())
    assert run_state(instance, run.run_id)[0] == "dead"  # finished: nothing holds a place for it
    out = capsys.readouterr().out
    assert "== market_job" in out and "features" in out and "done in" in out


def test_a_failed_step_is_named(instance: dg.DagsterInstance, capsys) -> None:
    # the report step needs the analysis files, which no job wrote here
    assert not run_job("report_job", instance)
    out = capsys.readouterr().out
    assert "FAILED importance_summary" in out or "FAILED hpo_report" in out, out
