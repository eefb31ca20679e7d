"""`hpo-assets backfill`: any set of study partitions, the plan's cost first, one real Dagster backfill with --yes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from hpo_assets.cli import main
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.resources import HpoPaths


@pytest.mark.slow  # a probe epoch and Dagster's CLI loading the definitions (~30 s on a shared 2-core CPU)
def test_backfill_shows_the_plan_then_launches_one_backfill_of_the_keys(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    home = isolated_dirs / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["init-instance"]) == 0
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    capsys.readouterr()

    assert main(["backfill", "2M|h1,20M|h3", "--profile", "demo"]) == 0
    out = capsys.readouterr().out
    assert "plan: 2 partition(s), profile demo" in out and "total:" in out
    assert "not launched: add --yes" in out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_backfills() == []

    assert main(["backfill", "2M|h1,20M|h3", "--profile", "demo", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.index("total:") < out.index("launching a backfill of study_demo_job")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (backfill,) = instance.get_backfills()
        assert backfill.job_name == "study_demo_job"
        assert sorted(backfill.partition_names or []) == [
            "20M|h3",
            "2M|h1",
        ]  # these two, not their 4 combinations


def test_backfill_names_the_profiles_it_has_jobs_for(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backfill", "2M|h1", "--profile", "quick"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "hpo-assets backfill: error: argument --profile: invalid choice: 'quick'" in err
    assert "demo" in err and "full" in err and err.count("\n") == 1


def test_schedules_are_off_by_default_and_sensors_on() -> None:
    from hpo_assets.definitions import defs

    schedules = {s.name: s.default_status for s in defs.schedules or []}
    assert schedules == {
        "analysis_nightly": dg.DefaultScheduleStatus.STOPPED,
        "importance_nightly": dg.DefaultScheduleStatus.STOPPED,
    }
