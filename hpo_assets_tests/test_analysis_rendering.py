"""Figures drawn by helper processes (`analyze(..., workers=2)`) are the files drawn in place, byte for byte,
and every table and number is the same: the helpers only draw."""

from __future__ import annotations

from pathlib import Path

from hpo_assets.analysis import importance as imp
from hpo_assets.analysis.campaign import analyze
from hpo_assets.trials.extract import extract
from hpo_assets_tests.conftest import EXPORTS_DIR

FAST = imp.ImportanceSettings(fanova_bootstrap=2, fanova_shuffles=1, ped_bootstrap=5, ped_shuffles=2)


def test_helper_processes_draw_the_same_figures_and_change_no_number(tmp_path: Path) -> None:
    table = extract([str(EXPORTS_DIR / "hpo_2m_1_a50")]).table
    here = analyze(table, tmp_path / "here", settings=FAST, workers=1)
    helped = analyze(table, tmp_path / "helped", settings=FAST, workers=2)
    assert sorted(here) == sorted(helped)
    pngs = [k for k in here if here[k].suffix == ".png"]
    assert len(pngs) >= 4  # waste, the partition's bars, heat maps, scaling
    for key, path in here.items():  # the hpo_report itself names its folder and time: not compared
        if path.suffix in {".png", ".csv", ".json"} and not key.startswith("hpo_report"):
            assert path.read_bytes() == helped[key].read_bytes(), key
