"""A real dagster-webserver process serves the code location: the UI's face, checked over GraphQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hpo_assets import settings

QUERY = """
{ assetNodes { assetKey { path } groupName description isPartitioned
    partitionKeysByDimension { name partitionKeys } } }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture
def webserver(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "HPO_ASSETS_OUTPUTS": str(tmp_path / "out")}
    log = open(tmp_path / "webserver.log", "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # bounded wait for the process to come up, not a timing assertion
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster-webserver exited: {(tmp_path / 'webserver.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("dagster-webserver did not answer within 180 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_webserver_lists_assets_and_partitions(webserver: str) -> None:
    deadline = time.monotonic() + 120
    while True:  # the code location loads in the background after the server answers
        data = _post(f"{webserver}/graphql", QUERY)
        nodes = (data.get("data") or {}).get("assetNodes") or []
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    by_name = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert {"market_data", "features", "hpo_study", "trial_table", "hpo_summary"} <= set(by_name), data
    study = by_name["hpo_study"]
    assert study["isPartitioned"] is True
    dims = {d["name"]: d["partitionKeys"] for d in study["partitionKeysByDimension"]}
    assert dims == {"budget": ["200K", "2M", "20M", "200M", "2B"], "horizon": ["h1", "h3", "h5"]}
    assert by_name["market_data"]["groupName"] == "market"
    assert all(n["description"] for n in nodes)
