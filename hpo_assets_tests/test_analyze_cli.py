"""`hpo-assets analyze` writes every report from the shipped examples; bad input is treated like `extract`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpo_assets.cli import main
from hpo_assets_tests.conftest import EXPORTS_DIR

REPORTS = ["coverage_report", "importance_summary", "scaling_report", "hp_consistency"]
PARTITIONS = ["importance_2M_h1", "importance_20M_h1", "importance_200M_h1"]


@pytest.mark.slow  # every report of 150 real trials, figures drawn by a helper process
def test_analyze_examples_writes_every_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    # one helper process (spawned: a forked polars process can deadlock) draws the figures
    assert main(["analyze", str(EXPORTS_DIR), "--out", str(out), "--fast", "--workers", "2"]) == 0
    for name in REPORTS + PARTITIONS:
        assert (out / f"{name}.md").is_file() and (out / f"{name}.json").is_file(), name
    for png in ["coverage_report_waste.png", "scaling_report_plot.png", "importance_summary_heatmap_fanova.png",
                "importance_2M_h1_bars.png"]:  # fmt: skip
        assert (out / png).read_bytes().startswith(b"\x89PNG"), png
    html = (out / "hpo_report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "INCONCLUSIVE" in html
    coverage = json.loads((out / "coverage_report.json").read_text())
    repeats = {r["study"]: r["exact_repeat"] for r in coverage["tables"]["studies"]}
    assert repeats == {"hpo_2m_1_a50": 10, "hpo_20m_1_a50": 13, "hpo_200m_1_a50": 15}
    # The shipped "20M" and "200M" studies found the same 1.3M-parameter model: the report says so.
    notes = json.loads((out / "scaling_report.json").read_text())["notes"]
    assert "h1 a50: budgets 20M, 200M share a best trial of 1,305,071 parameters" in " ".join(notes)
    assert any("budget 200M's best trial has 1,305,071 parameters (0.0065x its label)" in n for n in notes)
    assert f"report: {out / 'hpo_report.html'}" in capsys.readouterr().out


def test_analyze_reads_an_extract_output_folder(tmp_path: Path) -> None:
    assert main(["extract", str(EXPORTS_DIR / "hpo_2m_1_a50"), "--out", str(tmp_path / "x")]) == 0
    assert main(["analyze", str(tmp_path / "x"), "--out", str(tmp_path / "r"), "--fast"]) == 0
    scaling = json.loads((tmp_path / "r" / "scaling_report.json").read_text())
    assert [p["study"] for p in scaling["tables"]["points"]] == ["hpo_2m_1_a50"]


def test_analyze_bad_input_fails_clearly_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports"
    assert main(["analyze", str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nothing could be read" in err and str(tmp_path / "missing") in err
    assert not out.exists()
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert main(["analyze", str(bad), "--out", str(out)]) == 2
    assert "not a trial table" in capsys.readouterr().err
