"""The import-folder sensor requests `imported_studies` when an export appears or changes (tested by writing
files, through Dagster's sensor test context on a real instance); the automation sensor is on by default."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from hpo_assets.definitions import defs
from hpo_assets.defs.assets.trial_table import imported_studies
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.defs.sensors import import_folders_sensor
from hpo_assets_tests.conftest import EXPORTS_DIR


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"paths": HpoPaths()})
    return import_folders_sensor(context)


def test_writing_an_export_requests_an_import_and_a_change_requests_another(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = isolated_dirs / "incoming"
    monkeypatch.delenv("HPO_ASSETS_IMPORT_DIRS", raising=False)
    instance = dg.DagsterInstance.ephemeral()

    assert "no import folders are watched" in _tick(instance, None).skip_reason.skip_message

    monkeypatch.setenv("HPO_ASSETS_IMPORT_DIRS", str(watched))
    quiet = _tick(instance, None)
    assert not quiet.run_requests and "absent or empty" in quiet.skip_reason.skip_message

    shutil.copytree(EXPORTS_DIR / "hpo_2m_1_a50", watched / "hpo_2m_1_a50")  # an export appears
    first = _tick(instance, quiet.cursor)
    (request,) = first.run_requests
    assert request.asset_selection == [dg.AssetKey("imported_studies")]
    assert request.run_config["ops"]["imported_studies"]["config"]["sources"] == [str(watched)]

    again = _tick(instance, first.cursor)
    assert not again.run_requests and "no export appeared or changed" in again.skip_reason.skip_message

    trials_file = watched / "hpo_2m_1_a50" / "all_trials.json"
    stat = trials_file.stat()
    os.utime(trials_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the export is rewritten
    changed = _tick(instance, again.cursor)
    (second,) = changed.run_requests
    assert second.run_key != request.run_key

    # The request runs as asked: the export's trials are imported.
    result = dg.materialize(
        [imported_studies], resources={"paths": HpoPaths()}, run_config=second.run_config, instance=instance
    )
    (mat,) = result.asset_materializations_for_node("imported_studies")
    assert mat.metadata["n_studies"].value == 1 and mat.metadata["n_trials"].value > 0

    # A folder imported by hand stays among the sources when the sensor imports the watched one.
    manual = isolated_dirs / "manual"
    shutil.copytree(EXPORTS_DIR / "hpo_20m_1_a50", manual / "hpo_20m_1_a50")
    assert dg.materialize(
        [imported_studies],
        resources={"paths": HpoPaths()},
        run_config={"ops": {"imported_studies": {"config": {"sources": [str(manual)]}}}},
        instance=instance,
    ).success
    shutil.copytree(EXPORTS_DIR / "hpo_200m_1_a50", watched / "hpo_200m_1_a50")
    (third,) = _tick(instance, changed.cursor).run_requests
    assert third.run_config["ops"]["imported_studies"]["config"]["sources"] == [str(manual), str(watched)]


def test_sensors_are_registered_and_running_by_default() -> None:
    sensors = {s.name: s for s in defs.sensors}
    assert {"import_folders_sensor", "automation_sensor"} <= set(sensors)
    for sensor in sensors.values():
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert sensor.description
