"""Writers racing for one file or one folder (issue 22, case 4): real processes, no mocks.

Every file is written whole (`atomic_write`), and a set of files that belong together (what `extract`
writes) is replaced as one set, so a folder never mixes two runs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from hpo_assets.outputs import write_bytes
from hpo_assets_tests.conftest import EXPORTS_DIR

WRITER = """
import sys
from pathlib import Path
from hpo_assets.outputs import write_bytes
target, tag, n = Path(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
payload = tag * (300_000 // len(tag))
for _ in range(n):
    write_bytes(target, payload)
"""


def test_processes_writing_one_file_never_crash_or_tear_it(tmp_path: Path) -> None:
    target = tmp_path / "studies" / "study.json"
    tags = ["A1", "B22", "C333", "D4444"]
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(target), tag, "150"], stderr=subprocess.PIPE)
        for tag in tags
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * len(tags), errors
    data = target.read_bytes()
    whole = [tag.encode() * (300_000 // len(tag)) for tag in tags]
    assert data in whole  # one writer's file, whole: not a fusion of two
    assert sorted(p.name for p in target.parent.iterdir()) == ["study.json"]  # no temporary left behind


def test_a_set_written_together_is_all_or_nothing(tmp_path: Path) -> None:
    from hpo_assets.outputs import files_together

    folder = tmp_path / "out"
    with files_together(folder) as stage:
        write_bytes(stage / "a.csv", b"old a")
        write_bytes(stage / "b.json", b"old b")
    with pytest.raises(OSError), files_together(folder) as stage:  # e.g. the disk filled after one file
        write_bytes(stage / "a.csv", b"new a")
        raise OSError(28, "No space left on device")
    assert (folder / "a.csv").read_bytes() == b"old a" and (folder / "b.json").read_bytes() == b"old b"
    assert not [p for p in folder.iterdir() if p.name.startswith(".staging-")]


def _extract(source: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo_assets.cli", "extract", str(source), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "POLARS_MAX_THREADS": "1"},
    )


def _one_run(out: Path) -> str:
    """The source every file of the folder was extracted from; fails if the files disagree."""
    full = json.loads((out / "hpo_full.json").read_text())
    diverged = json.loads((out / "diverged_analysis.json").read_text())
    with open(out / "hpo_summary.csv", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    parquet = pl.read_parquet(out / "hpo_summary.parquet")
    n = full["metadata"]["n_trials"]
    assert len(full["trials"]) == n == len(csv_rows) == parquet.height
    assert diverged["metadata"]["n_trials_in_table"] == n
    assert diverged["metadata"]["sources"] == full["metadata"]["sources"]
    assert full["metadata"]["generated"] in (out / "README.md").read_text()
    assert {r["study"] for r in csv_rows} == set(parquet["study"])
    return full["metadata"]["sources"][0]


@pytest.mark.slow
def test_two_extract_runs_into_one_folder_leave_one_runs_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sources = [EXPORTS_DIR, EXPORTS_DIR / "hpo_2m_1_a50"]  # 150 and 50 trials
    for _ in range(8):
        procs = [_extract(src, out) for src in sources]
        errors = [p.communicate()[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        assert _one_run(out) in {str(s) for s in sources}
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".hpo-assets-write.lock"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs (needs root, as a container's test run has); skipped where it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_extract_on_a_full_disk_names_the_file_and_keeps_the_previous_set(small_disk: Path) -> None:
    out = small_disk / "out"
    first = _extract(EXPORTS_DIR / "hpo_2m_1_a50", out)
    assert first.wait(timeout=120) == 0, first.stderr.read().decode()
    first.stderr.close()
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 150_000))  # room for less than the next set
    second = _extract(EXPORTS_DIR, out)
    err = second.communicate(timeout=120)[1].decode()
    errors = [line for line in err.strip().splitlines() if "error" in line]  # progress lines come first
    assert second.returncode == 2 and len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert err.count("(the previous files are kept)") == 1, err
    assert "No space left on device" in err and f"{out}/hpo_" in err and ".staging-" not in err, err
    assert _one_run(out) == str(EXPORTS_DIR / "hpo_2m_1_a50")  # the previous run's files, all of them
    assert [p.name for p in out.iterdir() if p.name.startswith(".staging-")] == []


@pytest.mark.slow
def test_analyze_on_a_full_disk_keeps_the_previous_report_folder(small_disk: Path, capsys) -> None:
    """`analyze` used to print "No space left on device" without a path and leave old and new files mixed."""
    from hpo_assets.cli import main

    out = small_disk / "report"
    assert main(["analyze", str(EXPORTS_DIR), "--out", str(out), "--fast"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert (
        str(out / "coverage_report.json") in before["hpo_report.json"].decode()
    )  # indexed at their final place
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(free - 100_000, 0))  # room for less than a new report
    capsys.readouterr()
    assert main(["analyze", str(EXPORTS_DIR / "hpo_2m_1_a50"), "--out", str(out), "--fast"]) == 2  # no room
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and f"'{out}/" in err and ".staging-" not in err, err
    assert {
        p.name: p.read_bytes() for p in out.iterdir()
    } == before  # every file of the first report, unchanged
