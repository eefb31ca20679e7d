"""`hpo-assets extract`: the files researchers open, the printed report, and a clear failure when nothing is read."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from hpo_assets.cli import main
from hpo_assets.trials.schema import COLUMNS
from hpo_assets_tests.conftest import EXPORTS_DIR


def test_extract_real_exports_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["extract", str(EXPORTS_DIR), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read 150 trials from 3 studies; skipped 0" in printed
    assert "hpo_20m_1_a50" in printed and "says budget '2M'; using '20M'" in printed

    with open(out / "hpo_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 150 and len(rows[0]) >= 35
    parquet = pl.read_parquet(out / "hpo_summary.parquet")
    assert parquet.columns == COLUMNS and parquet.height == 150

    full = json.loads((out / "hpo_full.json").read_text())
    assert full["metadata"]["n_studies"] == 3 and full["metadata"]["n_trials"] == 150
    assert full["metadata"]["n_diverged"] == 0 and full["metadata"]["sources"] == [str(EXPORTS_DIR)]
    assert len(full["trials"]) == 150 and "learning_curve" in full["trials"][0]
    diverged = json.loads((out / "diverged_analysis.json").read_text())
    assert diverged["trials"] == [] and diverged["metadata"]["n_trials"] == 0

    readme = (out / "README.md").read_text()
    assert all(f"| {c} |" in readme for c in COLUMNS)
    n_dups = parquet["duplicate_of"].is_not_null().sum()
    assert (
        f"duplicate trials (same parameters as an earlier COMPLETE trial of the same study): {n_dups}"
        in readme
    )
    assert "hpo_200m_1_a50" in readme and "template_export" in readme and "jq " in readme


def test_extract_with_a_bad_source_still_writes_the_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    shutil.copytree(EXPORTS_DIR / "hpo_2m_1_a50", src / "hpo_2m_1_a50")
    (src / "hpo_20m_1_a50").mkdir()
    (src / "hpo_20m_1_a50" / "all_trials.json").write_text('[{"number": 0, ')
    assert main(["extract", str(src), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "read 50 trials from 1 studies" in printed and "hpo_20m_1_a50/all_trials.json" in printed
    assert pl.read_csv(tmp_path / "out" / "hpo_summary.csv").height == 50


def test_extract_from_nothing_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nothing could be read" in err and "nowhere: does not exist" in err
    assert not (tmp_path / "out").exists()


def test_a_nan_parameter_is_named_in_a_problem_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22, case 8: a NaN learning rate used to become null in the table without a word."""
    src = tmp_path / "src" / "hpo_2m_1_a50"
    shutil.copytree(EXPORTS_DIR / "hpo_2m_1_a50", src)
    items = json.loads((src / "all_trials.json").read_text())
    (item,) = [i for i in items if i["number"] == 6]
    item["params"]["learning_rate"] = float("nan")
    item["params"]["d_model"] = 48.5  # a fraction for an integer parameter: the same
    (src / "all_trials.json").write_text(json.dumps(items))  # Python writes NaN, as exporters do
    out = tmp_path / "out"
    assert main(["extract", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trial 6 parameter learning_rate=nan is not a usable number: left null" in printed
    assert "trial 6 parameter d_model=48.5 is not a usable number: left null" in printed
    row = pl.read_parquet(out / "hpo_summary.parquet").filter(pl.col("trial_num") == 6)
    assert row["lr"].to_list() == [None] and row["d_model"].to_list() == [None]
    full = json.loads((out / "hpo_full.json").read_text())
    assert any("learning_rate=nan" in p for p in full["metadata"]["problems"])
