"""`hpo-assets dashboard`: one optuna-dashboard over every study of a journal folder, tested against the
real server process on a loopback port (its JSON API, as the browser reads it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest

from hpo_assets.search.combined_storage import CombinedStorage, dashboard_storage
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace
from hpo_assets.search.storage import open_storage
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer, quiet

pytest.importorskip("optuna_dashboard")

STUDIES = {"hpo-2M-h1": 3, "hpo-20M-h1": 2, "hpo-2M-h3": 4}  # name -> trials


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real studies, one journal file each (the default folder storage)."""
    root = tmp_path_factory.mktemp("hpo")
    for name, n in STUDIES.items():
        run_study(
            SearchSpace.build(ARCHS, TINY),
            cheap_trainer(),
            study_name=name,
            storage=str(root),
            options=StudyOptions(n_trials=n, n_forced=2, pruner="none", epochs_config=3),
            log=quiet,
        )
    assert sorted(p.name for p in root.glob("*.journal")) == sorted(f"{n}.journal" for n in STUDIES)
    return root


def test_combined_storage_serves_each_file_with_distinct_ids(folder: Path) -> None:
    storage, names, problems = dashboard_storage(str(folder))
    assert isinstance(storage, CombinedStorage) and not problems and names == sorted(STUDIES)
    studies = storage.get_all_studies()
    assert sorted(s.study_name for s in studies) == sorted(STUDIES)
    assert len({s._study_id for s in studies}) == len(STUDIES)
    trial_ids = set()
    for s in studies:
        own = optuna.load_study(study_name=s.study_name, storage=open_storage(str(folder), s.study_name))
        trials = storage.get_all_trials(s._study_id)
        assert [t.params for t in trials] == [t.params for t in own.trials]
        assert storage.get_study_id_from_name(s.study_name) == s._study_id
        for t in trials:  # a trial id leads back to the same trial of the same study
            assert storage.get_trial(t._trial_id).params == t.params
            assert storage.get_trial_id_from_study_id_trial_number(s._study_id, t.number) == t._trial_id
        trial_ids |= {t._trial_id for t in trials}
        assert storage.get_study_system_attrs(s._study_id)["study:metric_names"] == ["val_auc"]
    assert len(trial_ids) == sum(STUDIES.values())
    with pytest.raises(NotImplementedError, match="viewing"):
        storage.delete_study(studies[0]._study_id)


def test_a_folder_without_studies_is_one_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpo_assets.cli", "dashboard", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"hpo-assets dashboard: error: storage {str(tmp_path)!r} holds no readable study"
    )


def test_the_real_server_lists_every_study_with_its_metric_name(folder: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo_assets.cli", "dashboard", "--storage", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, listed = time.monotonic() + 60, None
        while listed is None:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                listed = _get(f"{base}/api/studies")
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
                time.sleep(0.3)
        summaries = listed["study_summaries"]
        assert sorted(s["study_name"] for s in summaries) == sorted(STUDIES)
        for s in summaries:
            detail = _get(f"{base}/api/studies/{s['study_id']}")
            assert detail["name"] == s["study_name"]
            assert detail["objective_names"] == ["val_auc"]
            assert len(detail["trials"]) == STUDIES[s["study_name"]]
            assert s["directions"] == ["maximize"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.stdout is not None
    with proc.stdout:
        first = proc.stdout.readline()
    assert first.startswith(f"optuna-dashboard: 3 studies of {folder} (hpo-20M-h1, hpo-2M-h1, hpo-2M-h3)")


def test_a_database_url_is_served_as_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    for name in ("hpo-2M-h1", "hpo-2M-h5"):
        run_study(
            SearchSpace.build(ARCHS, TINY),
            cheap_trainer(),
            study_name=name,
            storage=url,
            options=StudyOptions(n_trials=2, n_forced=2, pruner="none", epochs_config=3),
            log=quiet,
        )
    storage, names, problems = dashboard_storage(url)
    assert not isinstance(storage, CombinedStorage) and names == ["hpo-2M-h1", "hpo-2M-h5"] and not problems
    assert sorted(s.study_name for s in storage.get_all_studies()) == names
