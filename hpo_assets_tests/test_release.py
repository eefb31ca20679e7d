"""Retrain a study's best trial, release it calibrated, load it back; cross-budget cells keep B's parameter count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from hpo_assets.data.dataset import prepare_dataset
from hpo_assets.data.features import build_features
from hpo_assets.data.market import load_market
from hpo_assets.model.budgets import budget_space, parse_budget
from hpo_assets.model.params import count_parameters
from hpo_assets.search.objective import TorchTrainer
from hpo_assets.search.runner import DATA_IDENTITY, StudyOptions, run_study
from hpo_assets.search.space import SearchSpace, arch_choices
from hpo_assets.search.storage import open_storage
from hpo_assets.training.cross_budget import cross_budget_matrix, matrix_markdown, matrix_png
from hpo_assets.training.release import release_model
from hpo_assets.training.retrain import RetrainError, best_trial_recipe, configs_from_trial
from hpo_assets.training.saved_model import SavedModelError, load_calibrated_model
from hpo_assets_tests.conftest import SP500

WINDOW = {
    "start": "2013-07-01",
    "end": "2018-12-31",
    "val_start": "2015-10-01",
    "test_start": "2016-10-01",
}  # the demo profile's
TRAIN = {"lr": [1e-3, 3e-3], "dropout": [0.1], "weight_decay": [0.0], "warmup_frac": [0.0], "batch_size": [64],
         "normalization": ["zscore"]}  # fmt: skip


def tiny_study(
    data, budget: str, storage: str, seed: int = 42, archs: list[str] | None = None
) -> optuna.Study:
    """Two 2-epoch trials (the budget's first two architectures, or `archs`), recorded like hpo_study does."""
    choices = arch_choices(budget_space(budget))
    choices = [a for a in choices if a.label in archs] if archs else choices[:2]
    space = SearchSpace.build(choices, TRAIN)
    name = f"hpo-{budget}-h{data.horizon}"
    run_study(
        space, TorchTrainer(data, 2, 2, "val_auc", seed, "cpu", num_threads=1), study_name=name,
        storage=storage, options=StudyOptions(n_trials=2, n_forced=0, pruner="none", epochs_config=2, seed=seed),
        study_attrs={"budget": budget, "horizon": f"h{data.horizon}", "seed": seed, "max_epochs": 2, "patience": 2, "cpu_threads": 1,
                     "data_start": str(data.dates[0]), "data_end": str(data.dates[-1]),
                     "val_start": WINDOW["val_start"], "test_start": WINDOW["test_start"]},
        log=lambda _: None,
    )  # fmt: skip
    return optuna.load_study(study_name=name, storage=open_storage(storage, name))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    frame = build_features(load_market(SP500))
    data = prepare_dataset(frame, 1, **WINDOW)
    storage = str(tmp_path_factory.mktemp("hpo"))
    studies = {b: tiny_study(data, b, storage) for b in ("50K", "200K")}
    return frame, data, studies, tmp_path_factory.mktemp("out")


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_release_reproduces_the_trial_and_the_loaded_model_gives_the_cards_probabilities(setup) -> None:
    frame, data, studies, out = setup
    recipe = best_trial_recipe(studies["50K"])
    assert recipe.seed == 42 and recipe.max_epochs == 2 and recipe.assumed == () and recipe.num_threads == 1
    assert recipe.value == studies["50K"].best_value
    folder = out / "models" / "50K_h1"
    identity = {k: studies["50K"].user_attrs.get(k) for k in DATA_IDENTITY}
    rel = release_model(
        data, recipe, [42, 43], folder, budget="50K", horizon="h1", n_folds=2, data_identity=identity,
        num_threads=1, n_resamples=100,
    )  # fmt: skip
    card = json.loads((folder / "card.json").read_text())
    assert card["reproduction"]["passed"] and card["reproduction"]["abs_diff"] <= 1e-4
    assert card["param_count"] == recipe.param_count == rel.runs[0].param_count
    # the contract the scaling report reads
    assert card["study"] == "hpo-50K-h1" and card["trial"]["trial_number"] == recipe.trial_number
    assert set(card["data_identity"]) == set(DATA_IDENTITY)
    assert (
        card["data_identity"]["val_start"] == WINDOW["val_start"]
        and card["data_identity"]["n_features"] is None
    )
    t = card["test"]
    assert {"auc", "auc_lo", "auc_hi", "auc_se", "n", "positives", "folds", "seeds", "noise"} <= set(t)
    assert (t["folds"], t["seeds"], t["n"]) == (2, 2, len(data.split.test))
    assert t["auc_lo"] <= t["auc"] <= t["auc_hi"] and t["auc_se"] > 0 and "seed" in t["noise"]
    assert {"log_loss", "brier", "accuracy", "seed_aucs"} <= set(t) and len(t["seed_aucs"]) == 2

    # test_predictions.parquet: every fold x seed x test day; the pooled AUC is recomputed from it here
    pred = pl.read_parquet(folder / "test_predictions.parquet")
    assert pred.columns == ["fold", "date", "label", "seed", "logit", "p_calibrated"]
    assert (
        pred.schema["fold"] == pl.Int64
        and pred.schema["date"] == pl.String
        and pred.schema["logit"] == pl.Float64
    )
    assert pred.height == 2 * len(data.split.test)
    per_fold, weights = [], []
    for k, f in enumerate(card["test_folds"]):
        rows = pred.filter(pl.col("fold") == k)
        assert (f["fold"], f["n"], f["test_first"], f["test_last"]) == (
            k,
            rows.height // 2,
            rows["date"].min(),
            rows["date"].max(),
        )
        assert f["positives"] == rows.filter(pl.col("seed") == 42)["label"].sum()
        assert f["auc_lo"] <= f["auc"] <= f["auc_hi"] and f["block"] >= 1
        assert f["train_last"] < f["val_first"] <= f["val_last"] < f["test_first"]
        seed_auc = [roc_auc_score(g["label"], g["logit"]) for _, g in rows.group_by("seed")]
        assert f["auc"] == pytest.approx(np.mean(seed_auc), abs=1e-9)
        per_fold.append(np.mean(seed_auc))
        weights.append(f["positives"] * (f["n"] - f["positives"]))
    # the mean over seeds, pooled over folds by their positives x negatives (the pairs each fold orders)
    assert t["auc"] == pytest.approx(np.average(per_fold, weights=weights), abs=1e-9)
    first, second = card["test_folds"]
    assert first["test_first"] >= WINDOW["test_start"] and first["test_last"] < second["test_first"]
    assert first["val_first"] >= WINDOW["val_start"] and second["train_last"] > first["train_last"]
    assert card["calibration"]["chosen"] == card["calibration"]["calibrator"]["method"]
    assert (
        sum(b["count"] for b in card["calibration"]["bins_after_mass"])
        == card["test"]["n"]
        == len(data.split.test)
    )
    assert {(r["model"], r["split"]) for r in card["baselines"]} >= {("logistic", "test"), ("hgb", "test")}
    assert {(r["fold"], r["split"]) for r in card["baselines_folds"]} == {
        (k, s) for k in (0, 1) for s in ("validation", "test")
    }
    paired = {r["baseline"]: r for r in card["vs_baselines"]}
    assert set(paired) == {"majority", "atr_ratio", "logistic", "hgb"}
    for r in paired.values():
        assert r["auc_diff_lo"] <= r["auc_diff"] <= r["auc_diff_hi"] and len(r["folds"]) == 2
        assert (r["verdict"] == "inconclusive") == (r["auc_diff_lo"] <= 0 <= r["auc_diff_hi"])
    logistic_test = next(b for b in card["baselines"] if (b["model"], b["split"]) == ("logistic", "test"))
    assert paired["logistic"]["auc_diff"] == pytest.approx(
        card["test"]["auc"] - logistic_test["auc"], abs=1e-9
    )
    assert paired["majority"]["auc_diff"] == pytest.approx(card["test"]["auc"] - 0.5, abs=1e-9)
    md = (folder / "card.md").read_text()
    assert "| logistic | " in md.split("Model minus baseline")[1]
    assert "## Baselines on the same split (test)" in md and "![reliability](reliability.png)" in md
    assert (
        "## Walk-forward test folds" in md
        and f"| 1 | {second['test_first']} .. {second['test_last']} |" in md
    )
    assert (folder / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "models" / "50K_h1.partial").exists()

    # A z-score model carries the training split's statistics; loading applies them to every input.
    feats = json.loads((folder / "features.json").read_text())
    assert len(feats["mean"]) == len(feats["std"]) == data.n_features and min(feats["std"]) > 0
    assert json.loads((folder / "architecture.json").read_text())["normalization"] == "zscore"

    # Round trip: the loaded model maps the features frame to the card's test probabilities.
    model = load_calibrated_model(folder)
    proba = model.predict_proba(frame)
    assert proba.shape == (frame.height,) and np.isnan(proba[:79]).all()
    dates = frame["date"].cast(pl.String).to_list()
    saved = pred.filter((pl.col("fold") == 0) & (pl.col("seed") == card["saved_seed"]))
    rows = [dates.index(d) for d in saved["date"]]
    np.testing.assert_allclose(proba[rows], saved["p_calibrated"].to_numpy(), rtol=0, atol=1e-6)

    # The same files under an object-store root (fsspec's in-memory store): uploaded whole, loaded back.
    import shutil

    from hpo_assets.locations import as_path
    from hpo_assets.training.release import replace_folder

    local = shutil.copytree(folder, out / "upload")
    replace_folder(local, as_path("memory://hpo-outputs/models/50K_h1"))
    remote = load_calibrated_model("memory://hpo-outputs/models/50K_h1")
    np.testing.assert_allclose(remote.predict_proba(frame)[rows], saved["p_calibrated"].to_numpy(), atol=1e-6)
    assert not local.exists()

    (folder / "features.json").write_text(json.dumps({**feats, "std": feats["std"][:-1]}))
    with pytest.raises(SavedModelError, match="features.json: mean/std must hold one value per column"):
        load_calibrated_model(folder)
    (folder / "features.json").write_text(json.dumps(feats))
    (folder / "calibrator.json").write_text("{not json")
    with pytest.raises(SavedModelError, match="calibrator.json is not readable JSON"):
        load_calibrated_model(folder)
    with pytest.raises(SavedModelError, match="does not exist"):
        load_calibrated_model(out / "nowhere")


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_cross_budget_cells_train_budget_bs_exact_parameter_count(setup) -> None:
    _, data, studies, _ = setup
    recipes = {b: best_trial_recipe(s) for b, s in studies.items()}
    matrix = cross_budget_matrix(data, recipes, k=1, num_threads=1, n_resamples=100)
    assert len(matrix["cells"]) == 4
    for cell in matrix["cells"]:
        b = recipes[cell["arch_from"]]
        exact = count_parameters(b.arch, data.n_features, data.context)
        assert cell["model_param_counts"] == [exact] and cell["param_count"] == exact
        assert abs(exact / parse_budget(cell["arch_from"]) - 1) <= 0.25
        assert cell["train"] == recipes[cell["params_from"]].train
        if cell["params_from"] == cell["arch_from"]:
            assert cell["gap"] is None
        else:
            assert cell["gap_lo"] <= cell["gap"] <= cell["gap_hi"]
            diag = next(c for c in matrix["cells"] if c["params_from"] == c["arch_from"] == cell["arch_from"])
            assert cell["gap"] == pytest.approx(cell["auc_mean"] - diag["auc_mean"])
            # same training parameters: the same run twice, a gap of exactly 0 with no noise; else paired noise
            same = cell["train"] == diag["train"]
            assert (cell["gap"] == cell["gap_se"] == 0) if same else cell["gap_se"] > 0
    assert "| params \\ arch | 50K | 200K |" in matrix_markdown(matrix, "h1")
    assert matrix_png(matrix, "h1")[:4] == b"\x89PNG"


def test_a_trial_without_architecture_or_study_without_complete_trial_is_one_message(tmp_path: Path) -> None:
    with pytest.raises(RetrainError, match="name no architecture"):
        configs_from_trial({"lr": 1e-3}, {})
    with pytest.raises(RetrainError, match="lack training parameter"):
        configs_from_trial({"arch": "d32-L2-H2-F64"}, {})
    study = optuna.create_study(study_name="hpo-2M-h1", storage=open_storage(str(tmp_path), "hpo-2M-h1"))
    with pytest.raises(RetrainError, match="has no COMPLETE trial"):
        best_trial_recipe(study)
