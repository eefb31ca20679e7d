"""The analysis assets materialize for real (dg.materialize) from a live journal study plus imported exports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import optuna
import polars as pl

from hpo_assets.defs.assets import analysis, trial_table
from hpo_assets.defs.resources import HpoPaths
from hpo_assets_tests.conftest import EXPORTS_DIR
from hpo_assets_tests.fixtures.contract_studies import build_contract_study, journal_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_assets_and_checks_materialize(isolated_dirs: Path) -> None:
    storage = Path(os.environ["HPO_ASSETS_STORAGE"])
    storage.mkdir(parents=True)
    build_contract_study(journal_storage(storage / "hpo-2M-h1.journal"))
    result = dg.materialize(
        [
            *dg.load_assets_from_modules([trial_table, analysis]),
            *dg.load_asset_checks_from_modules([trial_table, analysis]),
        ],
        resources={"paths": HpoPaths()},
        run_config={"ops": {"imported_studies": {"config": {"sources": [str(EXPORTS_DIR)]}}}},
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 and all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]

    out = isolated_dirs / "outputs"
    summary = pl.read_parquet(out / "summary" / "hpo_summary.parquet")
    assert summary.height == 156 and summary["study"].n_unique() == 4
    diverged = json.loads((out / "summary" / "diverged_analysis.json").read_text())
    assert [(t["study"], t["trial_num"]) for t in diverged["trials"]] == [("hpo-2M-h1", 2)]
    mats = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert mats["imported_studies"]["n_trials"].value == 150
    assert mats["trial_table"]["n_rows"].value == 156 and mats["trial_table"]["n_live_studies"].value == 1
    assert mats["diverged_analysis"]["n_diverged"].value == 1
    assert "hpo-2M-h1" in (out / "summary" / "README.md").read_text()


def test_import_of_nothing_fails_and_keeps_the_previous_import(isolated_dirs: Path) -> None:
    ok = dg.materialize(
        [trial_table.imported_studies],
        resources={"paths": HpoPaths()},
        run_config={
            "ops": {"imported_studies": {"config": {"sources": [str(EXPORTS_DIR / "hpo_2m_1_a50")]}}}
        },
    )
    assert ok.success
    saved = isolated_dirs / "outputs" / "trials" / "imported_trials.parquet"
    before = saved.read_bytes()
    bad = dg.materialize(
        [trial_table.imported_studies],
        resources={"paths": HpoPaths()},
        raise_on_error=False,
        run_config={"ops": {"imported_studies": {"config": {"sources": [str(isolated_dirs / "missing")]}}}},
    )
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    assert "nothing could be imported" in str(failure.event_specific_data.error.message)
    assert saved.read_bytes() == before
    # default config (as on the nightly schedule) re-reads the previous sources instead of dropping them
    again = dg.materialize([trial_table.imported_studies], resources={"paths": HpoPaths()})
    assert again.success and pl.read_parquet(saved).height == 50
