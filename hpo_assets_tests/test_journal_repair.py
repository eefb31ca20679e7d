"""A journal cut at any byte of its last record is repaired before the next append; a damaged middle line is
named by its line number and does not hide the other studies of the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from hpo_assets.cli import main
from hpo_assets.search.storage import StorageError, find_studies, open_storage
from hpo_assets.trials.importers import read_sources

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _real_journal(folder: Path, name: str, n_trials: int = 4) -> Path:
    study = optuna.create_study(
        study_name=name, storage=open_storage(str(folder), name), direction="maximize"
    )
    study.set_user_attr("objective", "val_auc")
    for i in range(n_trials):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
        trial.set_user_attr("learning_curve", {"epoch": [1, 2], "val_auc": [0.5 + i / 100, 0.51 + i / 100]})
        study.tell(trial, 0.5 + i / 100)
    return folder / f"{name}.journal"


def _snapshot(path: Path, name: str) -> tuple:
    study = optuna.load_study(study_name=name, storage=open_storage(str(path), name, create=False))
    return tuple(
        (t.number, t.state.name, t.value, tuple(sorted(t.user_attrs))) for t in study.get_trials()
    ), dict(study.user_attrs)


def test_truncation_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    source = _real_journal(tmp_path / "src", "s")
    data = source.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1
    head, last = data[:cut], data[cut:]
    assert last.endswith(b"\n") and len(last) > 40  # the final tell of trial 3: a real record
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "s.journal").write_bytes(head)
    without_last, with_last = _snapshot(tmp_path / "head" / "s.journal", "s"), _snapshot(source, "s")
    assert without_last != with_last

    for k in range(len(last) + 1):
        folder = tmp_path / f"cut{k}"
        folder.mkdir()
        journal = folder / "s.journal"
        journal.write_bytes(head + last[:k])
        notes: list[str] = []
        storage = open_storage(str(folder), "s", log=notes.append)  # what a resumed study does first
        optuna.load_study(study_name="s", storage=storage).set_user_attr("resumed", k)  # then it appends

        torn = sorted(folder.glob("s.journal.torn-*"))
        trials, attrs = _snapshot(journal, "s")
        assert attrs["resumed"] == k, k
        if 0 < k < len(last):
            assert len(torn) == 1 and torn[0].read_bytes() == last[:k], k  # the damaged bytes are kept aside
            assert len(notes) == 1 and "moved to s.journal.torn-" in notes[0]
            assert trials == without_last[0], k  # continues from the last complete record
        else:
            assert torn == [] and notes == [], k
            assert trials == (with_last if k == len(last) else without_last)[0], k
        shutil.rmtree(folder)


def test_torn_tail_then_rerun_used_to_fuse_lines(tmp_path: Path) -> None:
    """The issue's case: a half-written last line, then a re-run appends; every reader still works."""
    journal = _real_journal(tmp_path, "hpo-2M-h1")
    journal.write_bytes(journal.read_bytes()[:-25])
    study = optuna.load_study(study_name="hpo-2M-h1", storage=open_storage(str(tmp_path), "hpo-2M-h1"))
    study.set_user_attr("after", 1)
    assert [name for name, _ in find_studies(str(tmp_path))[0]] == ["hpo-2M-h1"]
    assert find_studies(str(tmp_path))[1] == []
    result = read_sources([str(journal)])
    assert result.all_problems == [] and result.n_read == 4


def _damage_line(journal: Path, line_no: int) -> None:
    lines = journal.read_bytes().split(b"\n")
    lines[line_no - 1] = lines[line_no - 1][: len(lines[line_no - 1]) // 2]  # a record cut in half
    journal.write_bytes(b"\n".join(lines))


def test_damaged_middle_line_is_named_and_the_folder_stays_readable(tmp_path: Path, capsys) -> None:
    bad = _real_journal(tmp_path, "hpo-2M-h1")
    _real_journal(tmp_path, "hpo-2M-h3")
    n_lines = bad.read_bytes().count(b"\n")
    assert n_lines > 8
    _damage_line(bad, 6)
    before = bad.read_bytes()

    with pytest.raises(StorageError, match=rf"hpo-2M-h1\.journal' is damaged: line 6 \(of {n_lines}"):
        open_storage(str(tmp_path), "hpo-2M-h1")
    assert bad.read_bytes() == before  # nothing is changed by refusing it

    found, problems = find_studies(str(tmp_path))
    assert [name for name, _ in found] == ["hpo-2M-h3"] and len(problems) == 1 and "line 6" in problems[0]

    assert main(["studies", "--storage", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("hpo-2M-h3: 4 trials") and "line 6" in err and "line 1 column" not in err

    result = read_sources([str(tmp_path)])
    assert {s.study for s in result.studies} == {"hpo-2M-h3"}
    assert len(result.all_problems) == 1 and "line 6" in str(result.all_problems[0])


def test_a_file_that_is_not_a_journal_is_never_truncated(tmp_path: Path) -> None:
    path = tmp_path / "hpo-2M-h1.journal"
    path.write_bytes(b"some notes without a newline")
    with pytest.raises(StorageError, match="not a readable Optuna journal"):
        open_storage(str(tmp_path), "hpo-2M-h1")
    assert path.read_bytes() == b"some notes without a newline"
    assert list(tmp_path.glob("*.torn-*")) == []


# --- issue 22, case 2: writers killed mid-append while another appends ------------------------------------------

LIVE_WRITER = """
import sys, optuna
from hpo_assets.search.storage import open_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
folder, n = sys.argv[1], int(sys.argv[2])
study = optuna.load_study(study_name="s", storage=open_storage(folder, "s"))
dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
for i in range(n):
    trial = study.ask(dist)
    trial.set_user_attr("live", i)
    study.tell(trial, float(i))
"""

# A writer killed in the middle of an append: it holds the storage's own append lock, has written the first
# `offset` bytes of a real record, and is killed (SIGKILL) before it writes the rest.
KILLED_WRITER = """
import os, signal, sys
from hpo_assets.search.storage import open_storage
folder, offset = sys.argv[1], int(sys.argv[2])
backend = open_storage(folder, "s")._backend
record = open(os.path.join(folder, "s.journal"), "rb").read().splitlines()[-1]
backend._lock.acquire()
fd = os.open(os.path.join(folder, "s.journal"), os.O_WRONLY | os.O_APPEND)
os.write(fd, record[: offset % (len(record) - 1) + 1])
os.fsync(fd)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_writers_killed_at_random_offsets_while_another_appends(tmp_path: Path) -> None:
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    from hpo_assets.search.journal_file import scan

    folder = tmp_path / "hpo"
    journal = _real_journal(folder, "s", n_trials=2)
    rng = random.Random(22)
    n_live = 40
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(folder), str(n_live)], stderr=subprocess.PIPE
    )
    kills = 0
    try:
        while live.poll() is None or kills < 3:
            killed = subprocess.run(
                [sys.executable, "-c", KILLED_WRITER, str(folder), str(rng.randrange(1 << 20))],
                capture_output=True,
                timeout=120,
            )
            assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
            kills += 1
            time.sleep(rng.uniform(0.0, 0.3))  # let the live writer append between some kills, not others
        live_err = live.communicate(timeout=120)[1].decode()
        assert live.returncode == 0, live_err[-3000:]  # it never met a fused line
    finally:
        if live.poll() is None:
            os.kill(live.pid, signal.SIGKILL)
            live.communicate()
    assert kills >= 3 and "a half-written last record" in live_err  # the live writer met torn tails
    scan(journal, full=True)  # every line of the journal is a whole record
    study = optuna.load_study(study_name="s", storage=open_storage(str(folder), "s"))  # cuts a last torn tail
    lived = sorted(t.user_attrs["live"] for t in study.get_trials() if "live" in t.user_attrs)
    assert lived == list(range(n_live))  # no complete record of the live writer was lost
    assert all(t.state.name == "COMPLETE" for t in study.get_trials() if "live" in t.user_attrs)
    side = sorted(folder.glob("s.journal.torn-*"))
    assert side and all(f.read_bytes().startswith(b'{"op_code":') for f in side)  # torn bytes kept aside
    assert len(side) <= kills


def test_a_full_disk_under_the_storage_names_the_journal_and_the_study_resumes(tmp_path: Path) -> None:
    """Issue 22, case 6: an append that hits a full disk names the journal; the bytes it left are a torn
    tail that the next append (after space is freed) moves aside."""
    import os
    import subprocess

    from hpo_assets.search.journal_file import scan

    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        journal = _real_journal(disk, "s", n_trials=2)
        st = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 2000))
        study = optuna.load_study(study_name="s", storage=open_storage(str(disk), "s"))
        with pytest.raises(OSError, match="appending to the journal failed: No space left on device") as info:
            for i in range(50):  # until the disk is full
                study.set_user_attr(f"big{i}", "x" * 1500)
        assert info.value.filename == str(journal)
        (disk / "filler").unlink()
        study = optuna.load_study(study_name="s", storage=open_storage(str(disk), "s"))
        study.set_user_attr("after", 1)
        scan(journal, full=True)  # every line whole again
        assert (
            optuna.load_study(study_name="s", storage=open_storage(str(disk), "s")).user_attrs["after"] == 1
        )
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
