"""The trial table says what each number is: which epoch the metrics measure, which trials patience stopped,
what data a trial saw, and how many parameters an imported model really had (not its budget label)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl
import pytest

from hpo_assets.data.dataset import load_prepared, prepare_dataset
from hpo_assets.data.features import FEATURE_COLUMNS, build_features
from hpo_assets.data.market import default_market_path, load_market
from hpo_assets.data.targets import add_labels, label_metadata
from hpo_assets.model.params import Arch, count_parameters
from hpo_assets.outputs import write_parquet
from hpo_assets.search.partition import parse_partition, study_attrs
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import ArchChoice, SearchSpace
from hpo_assets.settings import DATA_DIR, settings
from hpo_assets.trials.extract import extract
from hpo_assets.trials.schema import conform
from hpo_assets_tests.test_search_runner import ARCHS, TINY, Result, quiet

optuna.logging.set_verbosity(optuna.logging.WARNING)

EXPORTS = Path("/work/shared/fixtures/real_hpo_exports/phase6c_a50")
EXAMPLES = DATA_DIR / "examples" / "phase6c_a50"
EPOCHS = 6
# Validation loss is lowest at epoch 2 while AUC peaks at epoch 3: the two "best" epochs differ.
LOSSES = [0.69, 0.60, 0.62, 0.64, 0.66, 0.67]
AUCS = [0.55, 0.58, 0.63, 0.61, 0.60, 0.59]


def _record(epoch: int, lr: float) -> dict[str, Any]:
    return {"epoch": epoch, "train_loss": 0.7 - 0.01 * epoch, "val_loss": LOSSES[epoch - 1],
            "val_auc": AUCS[epoch - 1], "lr": lr, "seconds": 0.0}  # fmt: skip


def patience_trainer() -> Callable[..., Result]:
    """Like the real trainer: metrics of the best-AUC epoch (restored); dropout 0 stops by patience at 5/6
    epochs, dropout 0.1 runs all 6; lr 1e-2 diverges at epoch 2 (the trainer's guard)."""

    def train(arch: ArchChoice, hp: Mapping[str, Any], on_epoch: Callable[[dict[str, Any]], None]) -> Result:
        if hp["lr"] == 1e-2:
            first = _record(1, hp["lr"])
            on_epoch(first)
            broke = {**_record(2, hp["lr"]), "train_loss": float("inf"), "val_loss": None, "val_auc": None}
            metrics = {
                "val_auc": first["val_auc"],
                "val_loss": first["val_loss"],
                "train_loss": first["train_loss"],
            }
            return Result(metrics, [first, broke], status="diverged", diverged_reason="train_loss=inf at epoch 2",
                          diverge_epoch=2, best_epoch=1, epochs_trained=2)  # fmt: skip
        n = 5 if hp["dropout"] == 0.0 else EPOCHS
        curve = [_record(e, hp["lr"]) for e in range(1, n + 1)]
        for rec in curve:
            on_epoch(rec)
        best = curve[2]  # epoch 3: the objective's best, whose checkpoint is restored and measured
        metrics = {"val_auc": best["val_auc"], "val_loss": best["val_loss"], "train_loss": best["train_loss"]}
        return Result(metrics, curve, best_epoch=3, best_val_loss=best["val_loss"], epochs_trained=n,
                      early_stopped=n < EPOCHS)  # fmt: skip

    return train


@pytest.fixture(scope="module")
def data() -> Any:
    return prepare_dataset(load_market(default_market_path()), 1, start="2014-01-01", end="2016-12-31",
                           val_start="2015-10-01", test_start="2016-10-01")  # fmt: skip


@pytest.fixture(scope="module")
def live_table(tmp_path_factory: pytest.TempPathFactory, data: Any) -> pl.DataFrame:
    """A real Optuna study run by run_study, read back through the importer as the trial_table asset does."""
    storage = tmp_path_factory.mktemp("live")
    space = SearchSpace.build(ARCHS[:2], TINY)  # 2 archs x lr {1e-3, 1e-2} x dropout {0, 0.1}: 8 configs
    run_study(space, patience_trainer(), study_name="hpo-2M-h1", storage=str(storage),
              options=StudyOptions(n_trials=8, n_forced=0, pruner="none", epochs_config=EPOCHS),
              study_attrs=study_attrs(parse_partition("2M|h1"), data, 16, 8), log=quiet)  # fmt: skip
    return extract([str(storage)]).table


def test_best_epoch_is_the_metrics_epoch_and_the_lowest_loss_has_its_own_column(
    live_table: pl.DataFrame,
) -> None:
    done = live_table.filter(pl.col("state") == "COMPLETE")
    assert done.height == 4  # the four lr 1e-3 configurations
    for r in done.iter_rows(named=True):
        assert (r["best_epoch"], r["min_val_loss_epoch"], r["min_val_loss"]) == (3, 2, pytest.approx(0.60))
        at_best = r["learning_curve"][r["best_epoch"] - 1]
        # the metric columns hold that epoch's values
        assert r["val_auc"] == at_best["val_auc"] and r["val_loss"] == at_best["val_loss"]
        assert r["objective"] == r["val_auc"]


def test_early_stopped_only_by_patience_in_a_live_study(live_table: pl.DataFrame) -> None:
    rows = list(live_table.iter_rows(named=True))
    diverged = [r for r in rows if r["diverged"]]
    assert len(diverged) == 4 and all(r["state"] == "PRUNED" for r in diverged)
    # trained 2 of 6 epochs, but stopped by the divergence guard, not by patience
    assert all(r["epochs_trained"] == 2 and r["early_stopped"] is False for r in diverged)
    assert all(r["best_epoch"] == 1 for r in diverged)  # its metrics measure the restored epoch-1 model
    done = [r for r in rows if r["state"] == "COMPLETE"]
    assert sorted((r["dropout"], r["epochs_trained"], r["early_stopped"]) for r in done) == [
        (0.0, 5, True), (0.0, 5, True), (0.1, 6, False), (0.1, 6, False)
    ]  # fmt: skip


def test_live_studies_carry_their_data_provenance(live_table: pl.DataFrame, data: Any) -> None:
    labels = settings()["data"]
    expected = {
        "label_mode": str(labels["label_mode"]),
        "label_threshold": float(labels["threshold"]),
        "split_kind": "contiguous",
        "data_start": str(data.dates[0]),
        "data_end": str(data.dates[-1]),
        "val_start": data.split.details["val_start"],
        "test_start": data.split.details["test_start"],
        "train_size": len(data.split.train),
        "val_size": len(data.split.val),
        "val_positives": int(np.sum(data.y[data.split.val] == 1)),
        "n_features": 25,
        "feature_set": ",".join(FEATURE_COLUMNS),
    }
    assert expected["val_start"] >= "2015-10-01" and 0 < expected["val_positives"] < expected["val_size"]
    for col, value in expected.items():
        assert live_table[col].unique().to_list() == [value], col


def test_the_features_file_carries_its_label_definition(tmp_path: Path) -> None:
    frame = add_labels(
        build_features(load_market(default_market_path())), (1,), threshold=0.005, mode="close"
    )
    path = write_parquet(frame, tmp_path / "features.parquet", metadata=label_metadata(0.005, "close"))
    data = load_prepared(path, 1, start="2014-01-01", end="2016-12-31", val_start="2015-10-01",
                         test_start="2016-10-01")  # fmt: skip
    assert (data.label_threshold, data.label_mode) == (0.005, "close")
    unknown = load_prepared(write_parquet(frame, tmp_path / "plain.parquet"), 1, start="2014-01-01",
                            end="2016-12-31", val_start="2015-10-01", test_start="2016-10-01")  # fmt: skip
    assert (unknown.label_threshold, unknown.label_mode) == (None, None)  # not guessed from the settings


def _arch_count(r: dict[str, Any], n_features: int) -> int:
    return count_parameters(Arch(r["d_model"], r["n_layers"], r["n_heads"], r["d_ff"]), n_features)


@pytest.mark.parametrize("root", [EXAMPLES, EXPORTS], ids=["examples", "shared_fixtures"])
def test_imported_param_count_is_the_formula_not_the_label(root: Path) -> None:
    table = extract([str(root)]).table
    assert table.height == 150 and set(table["tier"]) == {"a50"} and set(table["n_features"]) == {55}
    assert table["param_count"].null_count() == 0  # forced trials too (their params come from forced_*)
    for r in table.iter_rows(named=True):
        assert r["param_count"] == _arch_count(r, 55)
    counts = {b: table.filter(pl.col("budget") == b)["param_count"] for b in ("2M", "20M", "200M")}
    # the "2M" study's largest model is a third of its label, its median a fifth: the table says so
    assert counts["2M"].max() < 0.7e6 and counts["2M"].median() < 0.5e6
    assert counts["20M"].max() < counts["200M"].max()
    # what these exports never recorded stays null: the metrics' epoch, epochs configured, hence early stops
    assert table["best_epoch"].null_count() == 150 and table["early_stopped"].null_count() == 150
    assert table["label_mode"].null_count() == table["val_size"].null_count() == 150


def test_tier_comes_from_the_nearest_folder_that_names_one(tmp_path: Path) -> None:
    study = tmp_path / "phase6c_a100" / "hpo_2m_h1"
    shutil.copytree(EXPORTS / "hpo_2m_1_a50", study)
    table = extract([str(tmp_path)]).table
    assert set(table["tier"]) == {"a100"} and set(table["n_features"]) == {105}
    r = table.row(10, named=True)
    assert r["param_count"] == _arch_count(r, 105)


def test_an_imported_early_stop_needs_a_complete_trial_shorter_than_configured(tmp_path: Path) -> None:
    items = json.loads((EXPORTS / "hpo_2m_1_a50" / "all_trials.json").read_text())[6:10]
    items[0]["params"]["epochs"], items[0]["user_attrs"]["epochs_run"] = 50, 30  # stopped early
    items[1]["params"]["epochs"] = 50  # ran all 50
    items[2]["params"]["epochs"], items[2]["user_attrs"]["epochs_run"] = 50, 30
    items[2]["state"] = "TrialState.PRUNED"
    folder = tmp_path / "hpo_2m_1_a50"
    folder.mkdir()
    (folder / "all_trials.json").write_text(json.dumps(items))
    got = {r["trial_num"]: r["early_stopped"] for r in extract([str(folder)]).table.iter_rows(named=True)}
    assert got == {6: True, 7: False, 8: False, 9: None}  # 9: epochs configured unknown


def test_best_epoch_of_another_writer_is_not_trusted(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="other-2M-h1", storage=f"sqlite:///{tmp_path / 'o.db'}",
                                direction="maximize")  # fmt: skip
    study.add_trial(optuna.trial.create_trial(value=0.6, user_attrs={"best_epoch": 4, "val_auc": 0.6}))
    study.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={"metrics_epoch": 2, "val_auc": 0.7}))
    table = extract([f"sqlite:///{tmp_path / 'o.db'}"]).table
    assert table["best_epoch"].to_list() == [None, 2]


def test_a_table_written_before_the_split_is_read_honestly(live_table: pl.DataFrame) -> None:
    """An older parquet (best_epoch = lowest val_loss, early_stopped = shorter than configured) keeps what it
    meant under the new names; which epoch its metrics measure becomes unknown."""
    old = live_table.drop("min_val_loss_epoch", "best_epoch").rename({"min_val_loss": "best_val_loss"})
    old = old.with_columns(
        best_epoch=pl.lit(2, dtype=pl.Int64),
        early_stopped=pl.col("epochs_trained") < pl.col("epochs_config"),  # the old rule: diverged ones too
    )
    table = conform(old)
    assert table["best_epoch"].null_count() == table.height and set(table["min_val_loss_epoch"]) == {2}
    assert table["min_val_loss"].to_list() == live_table["min_val_loss"].to_list()
    assert table["early_stopped"].to_list() == live_table["early_stopped"].to_list()


def test_another_writers_storage_gets_the_formula_count_from_its_tier(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="hpo_2m_1_a50", storage=url, direction="maximize")
    arch = {"d_model": 96, "n_layers": 2, "n_heads": 8, "d_ff": 192}
    study.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={**arch, "param_count": 2_000_000}))
    (row,) = extract([url]).table.iter_rows(named=True)
    assert (row["tier"], row["n_features"]) == ("a50", 55)
    assert row["param_count"] == count_parameters(Arch(96, 2, 8, 192), 55) < 300_000
