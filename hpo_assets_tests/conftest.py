"""Shared fixtures: paths to the bundled data and the real exports, and an isolated outputs/storage area."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpo_assets import settings

EXPORTS_DIR = settings.DATA_DIR / "examples" / "phase6c_a50"
SP500 = settings.DATA_DIR / "sp500_daily.csv.gz"


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point outputs and study storage at a temporary folder so tests never touch the user's."""
    monkeypatch.setenv("HPO_ASSETS_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("HPO_ASSETS_STORAGE", str(tmp_path / "hpo"))
    return tmp_path


# --- a real PostgreSQL server, started for the tests that use it ----------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port (initdb/pg_ctl as a non-root user)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the `postgres` system user
        if (
            shutil.which("runuser") is None
            or subprocess.run(["id", "postgres"], capture_output=True).returncode
        ):
            pytest.skip("running as root without a `postgres` user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(
        tempfile.mkdtemp(prefix="hpo-pg-")
    )  # not under pytest's 0700 tmp: the server user must enter it
    data = root / "data"
    if as_user:
        shutil.chown(root, "postgres")
        root.chmod(0o755)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed: {done.stderr or done.stdout}"

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")  # fmt: skip
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


# --- a real S3-compatible endpoint (moto's standalone server), started for the tests that use it -----------------


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with the AWS environment pointing at it; stopped by PID."""
    import sys
    import time
    import urllib.request

    import s3fs

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, "moto server exited at start"
                assert time.monotonic() < deadline, "moto server did not answer within 60 s"
                time.sleep(0.2)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": url,
        }.items():
            monkeypatch.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()  # fsspec caches filesystems with the endpoint they saw
        yield url
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
