"""Optuna storages written per the live-study contract: journal files, SQLite read in bulk with SQL and through the API."""

from __future__ import annotations

from pathlib import Path

import optuna
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hpo_assets.trials.extract import build_table, extract
from hpo_assets.trials.importers import SourceError, read_sources
from hpo_assets.trials.importers.optuna_storage import read_optuna_storage, schema_revision
from hpo_assets.trials.schema import to_table
from hpo_assets_tests.fixtures.contract_studies import build_contract_study, journal_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _table(reads: list) -> pl.DataFrame:
    return build_table([to_table([r for s in reads for r in s.rows])])


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('rdb') / 'studies.db'}"
    build_contract_study(url)
    build_contract_study(url, name="hpo-20M-h3", budget="20M", horizon="h3")
    return url


def test_journal_study_follows_the_contract(tmp_path: Path) -> None:
    build_contract_study(journal_storage(tmp_path / "hpo-2M-h1.journal"))
    table = extract([str(tmp_path)]).table
    assert table.height == 6
    t = {r["trial_num"]: r for r in table.iter_rows(named=True)}
    assert (t[0]["budget"], t[0]["horizon"], t[0]["tier"], t[0]["direction"], t[0]["objective_name"]) == (
        "2M",
        "h1",
        "a20",
        "maximize",
        "val_auc",
    )
    # architecture from user_attrs, training params from the Optuna params
    assert (t[0]["d_model"], t[0]["n_layers"], t[0]["n_heads"], t[0]["d_ff"], t[0]["batch_size"]) == (
        32,
        2,
        4,
        128,
        64,
    )
    assert t[0]["forced_extreme"] is True and t[0]["extreme_type"] == "min_d_model"
    assert t[1]["duplicate_of"] == 0 and t[0]["duplicate_of"] is None
    assert (
        t[4]["rank_in_study"] == 1 and t[0]["rank_in_study"] == t[1]["rank_in_study"] == 2
    )  # ties share the best rank
    assert t[4]["is_best_in_study"] and not t[0]["is_best_in_study"]
    assert (
        t[0]["best_epoch"] == t[0]["min_val_loss_epoch"] == 2
        and t[0]["min_val_loss"] == pytest.approx(0.65)
        and t[0]["epochs_trained"] == 3
    )
    assert t[0]["early_stopped"] is True  # 3 epochs of 4 configured
    div = t[2]
    assert div["state"] == "FAIL" and div["diverged"] and div["diverge_epoch"] == 3
    assert "non-finite loss" in div["diverged_reason"] and div["last_good_loss"] == pytest.approx(0.69)
    assert div["similar_successful_trial"] == 4  # d64-L4-H8 is nearer d128-L6-H8 than d32-L2-H4
    assert t[3]["state"] == "PRUNED" and t[3]["state_reason"] == "pruned at epoch 1"
    assert t[5]["state_reason"] == "RuntimeError: out of memory" and not t[5]["diverged"]
    assert t[5]["n_curve_epochs"] == 0 and t[0]["n_curve_epochs"] == 3


def test_bulk_sql_reader_equals_the_optuna_api(sqlite_url: str) -> None:
    assert schema_revision(sqlite_url) == "v3.2.0.a"
    bulk = _table(read_optuna_storage(sqlite_url, bulk=True))
    api = _table(read_optuna_storage(sqlite_url, bulk=False))
    assert bulk.height == 12 and sorted(bulk["study"].unique()) == ["hpo-20M-h3", "hpo-2M-h1"]
    assert_frame_equal(bulk, api)


def test_a_named_study_only(sqlite_url: str) -> None:
    reads = read_optuna_storage(sqlite_url, ["hpo-20M-h3"])
    assert [r.study for r in reads] == ["hpo-20M-h3"]
    assert {row["budget"] for row in reads[0].rows} == {"20M"}
    with pytest.raises(SourceError, match="no study named 'nope'"):
        read_optuna_storage(sqlite_url, ["nope"])


def test_missing_storages_are_reported_and_never_created(tmp_path: Path) -> None:
    db, journal = tmp_path / "missing.db", tmp_path / "missing.journal"
    result = read_sources([f"sqlite:///{db}", str(journal)])
    assert result.n_read == 0 and len(result.all_problems) == 2
    assert not db.exists() and not journal.exists()


def test_a_file_that_is_not_a_journal_is_reported(tmp_path: Path) -> None:
    (tmp_path / "junk.journal").write_text("this is not an optuna journal\n")
    build_contract_study(journal_storage(tmp_path / "hpo-2M-h1.journal"))
    result = read_sources([str(tmp_path)])
    assert result.n_read == 6
    assert [Path(p.path).name for p in result.all_problems] == ["junk.journal"]


def test_bulk_sql_reader_equals_the_optuna_api_on_postgresql(postgres_url: str) -> None:
    build_contract_study(postgres_url)
    build_contract_study(postgres_url, name="hpo-20M-h3", budget="20M", horizon="h3")
    assert schema_revision(postgres_url) == "v3.2.0.a"
    bulk = _table(read_optuna_storage(postgres_url, bulk=True))
    api = _table(read_optuna_storage(postgres_url, bulk=False))
    assert bulk.height == 12 and sorted(bulk["study"].unique()) == ["hpo-20M-h3", "hpo-2M-h1"]
    assert_frame_equal(bulk, api)
