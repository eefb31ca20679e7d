"""The models assets materialized for real: baselines, calibrated_model (with its check), cross_budget_validation."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from hpo_assets.data.dataset import load_prepared
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.assets.models import baselines, calibrated_model, cross_budget_validation
from hpo_assets.defs.assets.studies import GPU_OP_TAGS
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.model.params import count_parameters
from hpo_assets_tests.test_release import WINDOW, tiny_study

RESOURCES = {"paths": HpoPaths(), "gpu": GpuLeases(devices="")}
FAST = {"profile": "demo", "bootstrap_resamples": 100, "cpu_threads": -1}


def _run(asset, key: str, config: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], partition_key=key, resources=RESOURCES, raise_on_error=False,
                          run_config={"ops": {asset.op.name: {"config": config}}})  # fmt: skip


def _meta(result: dg.ExecuteInProcessResult, name: str) -> dict:
    (mat,) = result.asset_materializations_for_node(name)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.fixture
def prepared(isolated_dirs: Path):
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    data = load_prepared(isolated_dirs / "outputs" / "features" / "features.parquet", 1, **WINDOW)
    return isolated_dirs, data


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_baselines_and_calibrated_model_write_the_file_contract(prepared) -> None:
    root, data = prepared
    tiny_study(data, "2M", str(root / "hpo"), archs=["d384-L1-H8-F1536"])

    result = _run(baselines, "h1", FAST)
    assert result.success
    doc = json.loads((root / "outputs" / "baselines" / "baselines_h1.json").read_text())
    assert doc["horizon"] == "h1" and {r["model"] for r in doc["rows"]} == {
        "majority",
        "atr_ratio",
        "logistic",
        "hgb",
    }
    for row in doc["rows"]:
        assert {"model", "split", "auc", "auc_lo", "auc_hi", "log_loss", "brier", "n", "positives"} <= set(
            row
        )
    test_n = next(r["n"] for r in doc["rows"] if r["split"] == "test")
    assert test_n == len(data.split.test)  # the demo profile's split = the studies' split
    # the demo profile's 2 walk-forward folds: each baseline refitted per fold, pooled AUC weighted by positives x negatives
    assert doc["n_folds"] == 2 and [f["fold"] for f in doc["folds"]] == [0, 1]
    assert doc["folds"][0]["test_last"] < doc["folds"][1]["test_first"]
    for model in ("logistic", "hgb"):
        tests = [r for r in doc["test_folds"] if r["model"] == model and r["split"] == "test"]
        pooled = next(r for r in doc["rows"] if r["model"] == model and r["split"] == "test")
        assert [r["fold"] for r in tests] == [0, 1] and sum(r["n"] for r in tests) == pooled["n"]
        pairs = [
            r["positives"] * (r["n"] - r["positives"]) for r in tests
        ]  # folds weighted by the pairs they order
        assert pooled["auc"] == pytest.approx(np.average([r["auc"] for r in tests], weights=pairs), abs=1e-12)
        assert pooled["auc_lo"] <= pooled["auc"] <= pooled["auc_hi"]
    assert _meta(result, "baselines")["n_folds"] == 2

    result = _run(calibrated_model, "2M|h1", {**FAST, "seeds": 2})
    assert result.success
    card = json.loads((root / "outputs" / "models" / "2M_h1" / "card.json").read_text())
    assert (card["budget"], card["horizon"]) == ("2M", "h1")
    assert 1.5e6 <= card["param_count"] <= 2.5e6
    assert {"auc", "auc_lo", "auc_hi", "log_loss", "brier", "accuracy", "seed_aucs"} <= set(card["test"])
    assert len(card["test"]["seed_aucs"]) == 2 and card["interval_noise"]
    assert (card["test"]["folds"], card["test"]["seeds"]) == (2, 2) and len(card["test_folds"]) == 2
    assert card["study"] == "hpo-2M-h1" and card["data_identity"]["test_start"] == WINDOW["test_start"]
    assert (root / "outputs" / "models" / "2M_h1" / "test_predictions.parquet").is_file()
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "reproduces_trial" and check.passed
    meta = _meta(result, "calibrated_model")
    assert (
        meta["test_auc"] == card["test"]["auc"]
        and meta["test_auc_interval"] == f"[{card['test']['auc_lo']:.4f}, {card['test']['auc_hi']:.4f}]"
        and meta["calibration_method"] == card["calibration"]["chosen"]
    )
    assert meta["reliability"].startswith("![reliability](data:image/png;base64,")
    models = {r["model"] for r in meta["test_vs_baselines"].records for r in [r.data]}
    assert len(models) == 5 and {"majority", "atr_ratio", "logistic", "hgb"} < models
    assert [r.data["fold"] for r in meta["test_folds"].records] == [0, 1]
    paired = {r.data["baseline"]: r.data["verdict"] for r in meta["paired_auc_vs_baselines"].records}
    assert paired == {r["baseline"]: r["verdict"] for r in card["vs_baselines"]} and len(paired) == 4


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_calibrated_model_without_a_study_says_what_to_materialize(prepared) -> None:
    result = _run(calibrated_model, "2M|h3", FAST)
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    text = failure.event_specific_data.error.message
    assert "no study 'hpo-2M-h3'" in text and "materialize hpo_study for 2M|h3 first" in text
    assert not (prepared[0] / "outputs" / "models").exists()


@pytest.mark.slow  # real training / fitting on a shared CPU: tens of seconds
def test_cross_budget_validation_on_two_tiny_budgets(prepared) -> None:
    root, data = prepared
    studies = {b: tiny_study(data, b, str(root / "hpo")) for b in ("50K", "200K")}
    result = _run(cross_budget_validation, "h1", {**FAST, "seeds": 1, "budgets": ["50K", "200K", "20M"]})
    assert result.success
    matrix = json.loads((root / "outputs" / "cross_budget" / "cross_budget_h1.json").read_text())
    assert matrix["budgets"] == ["50K", "200K"] and matrix["skipped_budgets"] == {"20M": "no study"}
    assert len(matrix["cells"]) == 4
    for cell in matrix["cells"]:
        best = studies[cell["arch_from"]].best_trial.user_attrs
        exact = best["param_count"]
        assert cell["model_param_counts"] == [exact] == [cell["param_count"]]
        dims = (best["d_model"], best["n_layers"], best["n_heads"], best["d_ff"])
        assert cell["arch"] == "d{}-L{}-H{}-F{}".format(*dims)
        from hpo_assets.model.params import Arch

        assert count_parameters(Arch(*dims), data.n_features, data.context) == exact
    assert (root / "outputs" / "cross_budget" / "cross_budget_h1.png").read_bytes()[:4] == b"\x89PNG"
    assert "Transfer gap" in (root / "outputs" / "cross_budget" / "cross_budget_h1.md").read_text()


def test_gpu_assets_run_in_the_gpu_pool_and_baselines_do_not() -> None:
    for asset in (calibrated_model, cross_budget_validation):
        assert asset.op.pool == "gpu"
        assert json.loads(asset.op.tags["dagster-k8s/config"]) == GPU_OP_TAGS["dagster-k8s/config"]
    assert baselines.op.pool is None
    assert {baselines.group_names_by_key[k] for k in baselines.keys} == {"models"}


def test_a_bad_fold_count_is_one_message_naming_the_field(isolated_dirs: Path) -> None:
    result = _run(baselines, "h1", {"test_folds": -1})
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "test_folds must be a whole number >= 1, got -1" in failure.event_specific_data.error.message
