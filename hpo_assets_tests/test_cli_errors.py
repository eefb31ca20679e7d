"""Every bad key, config value, argument or path on the command line: one line naming it and what is valid, exit 2.
Import notes of a results tree are grouped and counted."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo_assets.cli import main
from hpo_assets.search.partition import valid_keys
from hpo_assets.search.storage import open_storage
from hpo_assets.trials.extract import extract, format_report
from hpo_assets.trials.importers import read_sources


def _error(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["study", "3M|h1"], ["budget '3M'", "valid keys: " + ", ".join(valid_keys())]),
        (["study", "2M-h1"], ["must read budget|horizon", "2M|h1, 2M|h3"]),
        (["study", "2M|h2"], ["horizon 'h2'", "['h1', 'h3', 'h5']"]),
        (["study", "2M|h1", "--set", "n_trials=many"], ["n_trials must be a whole number, got 'many'"]),
        (
            ["study", "2M|h1", "--config-json", '{"max_epochs": "3"}'],
            ["max_epochs must be a whole number, got '3'"],
        ),
        (["study", "2M|h1", "--set", "cpu_bf16=maybe"], ["cpu_bf16 must be true or false, got 'maybe'"]),
        (["study", "2M|h1", "--set", "epochs=3"], ["unknown field(s) ['epochs']", "max_epochs"]),
        (["study", "2M|h1", "--set", "pruner=sometimes"], ["pruner 'sometimes'", "median"]),
        (["study", "2M|h1", "--profile", "huge"], ["unknown profile 'huge'", "demo"]),
        (["space", "2M", "--tolerance", "wide"], ["--tolerance: invalid float value: 'wide'"]),
        (["demo", "--pool-wait", "-1"], ["--pool-wait must be >= 0"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'", "studies"]),
    ],
)
def test_bad_input_is_one_line_with_the_valid_choices(capsys, argv: list[str], needles: list[str]) -> None:
    line = _error(capsys, argv)
    for needle in needles:
        assert needle in line, line


def test_extract_out_naming_an_existing_file(capsys, tmp_path: Path) -> None:
    existing = tmp_path / "summary.csv"
    existing.write_text("keep me\n")
    line = _error(capsys, ["extract", str(tmp_path), "--out", str(existing)])
    assert "is an existing file; give a folder" in line and str(existing) in line
    assert existing.read_text() == "keep me\n"


def test_notes_of_a_results_tree_are_grouped_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for i in range(12):
        (root / f"run{i:02d}" / "logs").mkdir(parents=True)
    study = optuna.create_study(
        study_name="hpo-2M-h1", storage=open_storage(str(root / "run03"), "hpo-2M-h1")
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)

    result = read_sources([str(root)])
    assert result.n_read == 2
    problems = [str(p) for p in result.all_problems]
    assert len(problems) == 1, problems  # not one line per ordinary folder
    assert "no studies found in 12 folder(s) inside" in problems[0] and "and 9 more" in problems[0]

    report = format_report(extract([str(root)]))
    assert report.count("no studies found") == 1


def test_a_reader_that_leaves_early_is_no_error() -> None:
    """`hpo-assets space 2B | head -0`: the pipe closes before the table is written; exit 0, nothing on stderr."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "hpo_assets.cli", "space", "2B"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command prints anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0 and err == "", err


# --- issue 22, case 6: settings that pass the up-front check but used to fail inside the run --------------------


@pytest.fixture
def with_features(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Features in place, so `hpo-assets study` gets as far as starting the run."""
    import dagster as dg

    from hpo_assets.defs.assets.market import features, market_data
    from hpo_assets.defs.resources import HpoPaths

    monkeypatch.setenv("DAGSTER_HOME", str(isolated_dirs / "dagster_home"))
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    return isolated_dirs


@pytest.mark.parametrize(
    ("setting", "needles"),
    [
        ("start=notadate", ["start 'notadate' is not a date", "YYYY-MM-DD"]),
        ("device=cuda:7", ["device 'cuda:7'"]),
        ("architectures=[foo]", ["architectures: ['foo'] are not in the 2M budget's space"]),
        ("storage=postgresql://hpo:Sl/ash_Pw@127.0.0.1:1/optuna", ["cannot be reached", "127.0.0.1"]),
    ],
)
def test_a_study_setting_the_run_would_refuse_is_one_line_before_it_starts(
    capsys, monkeypatch: pytest.MonkeyPatch, with_features: Path, setting: str, needles: list[str]
) -> None:
    from hpo_assets.locations import STORAGE_PASSWORD_ENV

    monkeypatch.setenv(STORAGE_PASSWORD_ENV, "")  # restored after the test (the command sets it)
    capsys.readouterr()
    line = _error(capsys, ["study", "2M|h1", "--profile", "demo", "--set", "n_trials=1", "--set", setting])
    assert all(n in line for n in needles) and "Sl/ash_Pw" not in line, line
    assert not (with_features / "hpo").exists()  # nothing was created (no empty journal file)
    assert not (with_features / "dagster_home" / "history").exists()  # and no run was started


def test_init_instance_with_a_password_but_not_its_variable(capsys, tmp_path: Path, monkeypatch) -> None:
    """It used to write dagster.yaml, then fail opening it with Dagster's PostProcessingError traceback."""
    monkeypatch.delenv("HPO_ASSETS_PG_PASSWORD", raising=False)
    url = "postgresql+psycopg2://hpo:Sl/ash_Pw@127.0.0.1:1/dagster"
    line = _error(capsys, ["init-instance", "--home", str(tmp_path / "home"), "--postgres-url", url])
    assert "HPO_ASSETS_PG_PASSWORD" in line and "Sl/ash_Pw" not in line and "hpo:***@127.0.0.1" in line
    assert not (tmp_path / "home" / "dagster.yaml").exists()
