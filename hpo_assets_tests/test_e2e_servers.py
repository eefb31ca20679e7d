"""End to end against real servers: dagster-webserver + dagster-daemon on a free loopback port, a temporary
DAGSTER_HOME written by `hpo-assets init-instance`, the project's workspace.yaml. Through GraphQL: the asset
graph and the 12 partition keys, a two-partition backfill of study_demo_job (the second run queued behind
the `gpu` pool), both succeed, their trials are in storage, and the automation brings the trial table up
to date. Both servers are stopped by their own PIDs."""

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
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import optuna
import pytest
import yaml

from hpo_assets import settings
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.search.storage import open_storage

BIN = Path(sys.executable).parent
# A job's baked-in config wins over a backfill's run config in Dagster, so the tiny configuration is this
# site's `demo` profile (HPO_ASSETS_SETTINGS), which study_demo_job then runs: 2 one-layer models, 1 epoch.
TINY = {"n_trials": 2, "max_epochs": 1, "n_forced": 2, "pruner": "none", "start": "2014-10-01",
        "architectures": ["d384-L1-H8-F1536", "d512-L1-H8-F1024"]}  # fmt: skip
PARTITIONS = ["2M|h1", "2M|h3"]
# Bounded waits (a hang fails the test instead of blocking CI); none of them is a timing assertion.
UP_S, RUNS_S, AUTOMATION_S = 180, 420, 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        out = json.loads(resp.read())
    assert not out.get("errors"), out["errors"]
    return out["data"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server by its PID, then to its own process group (its code servers), bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this test created for the server (start_new_session)
    except ProcessLookupError:
        pass


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HPO_ASSETS_OUTPUTS": str(tmp_path / "outputs"),
        "HPO_ASSETS_STORAGE": str(tmp_path / "hpo"),
        "CUDA_VISIBLE_DEVICES": "",  # a CPU machine: the gpu pool holds one study at a time
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HPO_ASSETS_GPU_LIMIT", None)
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"profiles": {"demo": {"study": TINY}}}))
    env["HPO_ASSETS_SETTINGS"] = str(site)
    env.pop("HPO_ASSETS_IMPORT_DIRS", None)
    init = subprocess.run([str(BIN / "hpo-assets"), "init-instance", "--home", str(home)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert init.returncode == 0, init.stderr
    port = _free_port()
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("webserver", "daemon")}
    common = {
        "cwd": settings.PROJECT_ROOT,
        "env": env,
        "stderr": subprocess.STDOUT,
        "start_new_session": True,
    }
    web = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        stdout=logs["webserver"],
        **common,  # type: ignore[arg-type]
    )
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        stdout=logs["daemon"],
        **common,  # type: ignore[arg-type]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UP_S
        while True:
            for name, proc in (("webserver", web), ("daemon", daemon)):
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited: {(tmp_path / f'{name}.log').read_text()[-3000:]}")
            try:
                nodes = _gql(base, "{ assetNodes { id } }")["assetNodes"]
                if nodes:
                    break
            except (urllib.error.URLError, ConnectionError, OSError, AssertionError):
                pass
            assert time.monotonic() < deadline, "dagster-webserver did not serve the code location in time"
            time.sleep(1)
        yield base, env
    finally:
        _stop(daemon)
        _stop(web)
        for fh in logs.values():
            fh.close()
        for name, proc in (("webserver", web), ("daemon", daemon)):
            assert proc.poll() is not None, f"{name} (pid {proc.pid}) still running"


def _timeline(runs: list[dict]) -> str:
    """Launch/start/end of each run (seconds after the first launch), for a failure message."""
    instance = dg.DagsterInstance.get()
    stats = [(r["runId"][:8], instance.get_run_stats(r["runId"])) for r in runs]
    t0 = min((s.launch_time or s.enqueued_time or 0.0) for _, s in stats) if stats else 0.0
    fmt = lambda t: "-" if t is None else f"{t - t0:.0f}"  # noqa: E731
    lines = [
        f"{rid}: launched {fmt(s.launch_time)} started {fmt(s.start_time)} ended {fmt(s.end_time)}"
        for rid, s in stats
    ]
    for r in runs[:2]:  # what each run spent its time on
        for e in instance.all_logs(r["runId"]):
            what = e.dagster_event.event_type_value if e.dagster_event else (e.user_message or "")[:80]
            lines.append(f"  {r['runId'][:8]} {fmt(e.timestamp)} {what}")
    return "\n".join(lines)


GRAPH = """{ assetNodes { assetKey { path } groupName dependencyKeys { path } }
  assetNodeOrError(assetKey: {path: ["hpo_study"]}) { ... on AssetNode { partitionKeys } } }"""
LAUNCH = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUNS = """query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId status tags { key value } } } } }"""
TABLE = """{ assetNodeOrError(assetKey: {path: ["trial_table"]}) { ... on AssetNode {
  assetMaterializations(limit: 1) { runId timestamp metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"""


def test_backfill_two_demo_partitions_through_real_servers(
    servers: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, env = servers
    for key in ("DAGSTER_HOME", "HPO_ASSETS_OUTPUTS", "HPO_ASSETS_STORAGE", "HPO_ASSETS_SETTINGS"):
        monkeypatch.setenv(key, env[key])
    instance = dg.DagsterInstance.get()  # the servers' instance: the features they need are recorded there
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}, instance=instance).success

    graph = _gql(base, GRAPH)
    deps = {
        "/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
        for n in graph["assetNodes"]
    }
    assert "features" in deps["hpo_study"] and "hpo_study" in deps["trial_table"]
    keys = graph["assetNodeOrError"]["partitionKeys"]
    assert len(keys) == 15 and {"2M|h1", "2B|h5"} <= set(keys)

    launched = _gql(base, LAUNCH, {"p": {
        "selector": {"partitionSetName": "study_demo_job_partition_set",
                     "repositorySelector": {"repositoryName": "__repository__", "repositoryLocationName": "hpo_assets"}},
        "partitionNames": PARTITIONS,
    }})["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = launched["backfillId"]

    seen_queued_behind = False
    deadline = time.monotonic() + RUNS_S
    while True:
        runs = _gql(base, RUNS, {"id": backfill})["runsOrError"]["results"]
        states = [r["status"] for r in runs]
        active = [s for s in states if s in ("STARTING", "STARTED")]
        assert len(active) <= 1, f"the gpu pool (limit 1) let two studies run at once: {states}"
        if active and "QUEUED" in states:
            seen_queued_behind = True
        if len(runs) == 2 and all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in states):
            break
        assert time.monotonic() < deadline, f"backfill runs not finished in time: {states}; {_timeline(runs)}"
        time.sleep(2)
    assert states == ["SUCCESS", "SUCCESS"], f"{states}; {_timeline(runs)}"
    assert seen_queued_behind, "the second run was never seen waiting in the queue behind the gpu pool"
    finished_at = max(
        instance.get_run_stats(r["runId"]).end_time or 0.0 for r in runs
    )  # automation must act after this

    for key in PARTITIONS:
        name = "hpo-" + key.replace("|", "-")
        study = optuna.load_study(study_name=name, storage=open_storage(env["HPO_ASSETS_STORAGE"], name))
        done = [t for t in study.trials if t.state.is_finished()]
        assert len(done) == 2 and all(t.user_attrs.get("epochs_config") == 1 for t in done)

    # The automation sensor (on by default) sees the new study partitions and rebuilds the trial table.
    deadline = time.monotonic() + AUTOMATION_S
    while True:
        mats = (_gql(base, TABLE)["assetNodeOrError"] or {}).get("assetMaterializations") or []
        if mats and float(mats[0]["timestamp"]) / 1000.0 >= finished_at:
            break
        assert time.monotonic() < deadline, "the automation did not bring trial_table up to date in time"
        time.sleep(2)
    meta = {m["label"]: m.get("intValue") for m in mats[0]["metadataEntries"]}
    assert meta.get("n_rows") == 4, meta  # both studies' trials, nothing else
    run = instance.get_run_by_id(mats[0]["runId"])
    assert run is not None and run.tags.get("dagster/from_automation_condition") == "true", (
        run.tags if run else None
    )
