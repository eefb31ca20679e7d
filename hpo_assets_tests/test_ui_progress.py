"""`make ui` started from a script as a user's tooling would (`make ui &`): the UI serves a study's progress
observations while the instance records them, and `make ui-stop` ends it and every process it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from hpo_assets import settings
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.assets.studies import hpo_study
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.ui_process import running_pid
from hpo_assets_tests.test_study_asset import TINY

QUERY = """{ assetOrError(assetKey: {path: ["hpo_study"]}) { ... on Asset {
  assetObservations(partitions: ["2M|h1"], limit: 20) { partition metadataEntries { label
    ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    """Every descendant of `pid` (from /proc)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            found.add(k)
            todo.append(k)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_make_ui_from_a_script_shows_progress_and_make_ui_stop_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, port = tmp_path / "home", _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "HPO_ASSETS_OUTPUTS": str(tmp_path / "out"),
           "HPO_ASSETS_STORAGE": str(tmp_path / "hpo")}  # fmt: skip
    for key in ("DAGSTER_HOME", "HPO_ASSETS_OUTPUTS", "HPO_ASSETS_STORAGE"):
        monkeypatch.setenv(key, env[key])
    stamp = ".venv/.installed"  # -o: never reinstall from a test
    script = f"make -o {stamp} ui UI_ARGS='--port {port}' > {tmp_path}/ui.log 2>&1 &"
    subprocess.run(["bash", "-c", script], cwd=settings.PROJECT_ROOT, env=env, check=True, timeout=30)
    pid_file = home / "ui.pid"
    base = f"http://127.0.0.1:{port}"
    pid = None
    try:
        deadline = time.monotonic() + 240  # bounded wait for the UI to come up, not a timing assertion
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, (tmp_path / "ui.log").read_text()[-3000:]
                time.sleep(1)
        pid = running_pid(pid_file)
        assert pid is not None
        spawned = _children(pid)
        assert len(spawned) >= 3  # webserver, daemon, code server

        instance = dg.DagsterInstance.get()  # the instance the UI reads
        assert dg.materialize(
            [market_data, features], resources={"paths": HpoPaths()}, instance=instance
        ).success
        run = dg.materialize([hpo_study], partition_key="2M|h1", instance=instance,
                             resources={"paths": HpoPaths(), "gpu": GpuLeases()},
                             run_config={"ops": {"hpo_study": {"config": {**TINY, "n_trials": 3}}}})  # fmt: skip
        assert run.success
        req = urllib.request.Request(
            f"{base}/graphql",
            data=json.dumps({"query": QUERY}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as response:
            observations = json.loads(response.read())["data"]["assetOrError"]["assetObservations"]
        shown = [
            {e["label"]: e.get("text", e.get("intValue")) for e in o["metadataEntries"]} for o in observations
        ]
        assert all(o["partition"] == "2M|h1" for o in observations)
        assert sorted(m["trials_counted"] for m in shown) == [0, 1, 2, 3]  # the start and each trial
        last = max(shown, key=lambda m: m["trials_counted"])
        assert last["progress"].startswith("hpo-2M-h1: 3/3 trials, trial #2 ")
        assert last["progress"].endswith("ETA 0 s (target reached)")
        assert "ETA" in min(shown, key=lambda m: m["trials_counted"])["progress"]

        stop = subprocess.run(["make", "ui-stop"], cwd=settings.PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert stop.returncode == 0, stop.stderr
        assert f"UI pid {pid} stopped" in stop.stdout
        assert not pid_file.exists()
        assert not [p for p in spawned | {pid} if _alive(p)]  # ui-stop returned once all had ended
        again = subprocess.run(["make", "ui-stop"], cwd=settings.PROJECT_ROOT, env=env, capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert again.returncode == 0 and "no UI running" in again.stdout
    finally:
        for p in [*(_children(pid) if pid else []), *([pid] if pid else [])]:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
