"""Assets of group `models`: baselines, the calibrated best model per study, cross-budget validation.

These are the only assets that read the test split, and only for the final numbers of chosen models.
"""

# No `from __future__ import annotations`: Dagster reads the Config annotations at runtime.

import base64
import json
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from hpo_assets import outputs
from hpo_assets import settings as project_settings
from hpo_assets.calibration.model_card import interval_text
from hpo_assets.defs.assets.studies import GPU_OP_TAGS
from hpo_assets.defs.metadata import table
from hpo_assets.defs.partitions import budget_horizon_partitions, horizon_partitions
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.locations import mask_password
from hpo_assets.search.partition import parse_partition, study_budgets
from hpo_assets.search.runner import StudyConfigError
from hpo_assets.search.study_settings import study_settings

_MODELS = project_settings.settings()["models"]
MODELS_DIR, BASELINES_DIR, CROSS_BUDGET_DIR = ("models",), ("baselines",), ("cross_budget",)


class ModelsConfig(dg.Config):
    """Settings of the models assets; the data window and split come from the studies (or the profile)."""

    profile: str = Field(
        default="",
        description='Profile laid over defaults.yaml ("demo", "full"; "" = defaults): its study '
        "window and split dates and its models: section.",
    )
    seeds: int = Field(
        default=0, description="Retrains per model and test fold (trial's own seed first); 0 = models.seeds."
    )
    test_folds: int = Field(
        default=0, description="Walk-forward test folds in the test period; 0 = models.test_folds."
    )
    bootstrap_resamples: int = Field(
        default=0, description="Block-bootstrap resamples; 0 = the configured value."
    )
    storage: str = Field(default="", description='Optuna storage of the studies; "" = the `paths` resource.')
    device: str = Field(default="", description='"" = a leased GPU when present, else CPU.')
    cpu_threads: int = Field(
        default=-1,
        description="CPU threads for training; -1 = the study's recorded value, 0 = torch's default.",
    )
    tolerance: float = Field(
        default=float(_MODELS["reproduce_tolerance"]),
        description="Allowed |retrained - recorded| validation objective for the reproduction check "
        "(1e-4 on CPU; use ~1e-2 on CUDA, where bf16 and non-deterministic kernels change the arithmetic).",
    )


class CrossBudgetConfig(ModelsConfig):
    budgets: list[str] = Field(
        default=[],
        description="Budgets whose studies enter the matrix (any parameter count, e.g. '50K'); "
        "[] = every configured budget. Budgets without a finished study are skipped and listed.",
    )


def _models_settings(config: ModelsConfig) -> dict[str, Any]:
    try:
        values = dict(project_settings.settings(config.profile or None)["models"])
    except ValueError as exc:
        raise StudyConfigError(f"profile: {exc}") from None
    if config.seeds:
        values["seeds"] = values["cross_budget_seeds"] = config.seeds
    if config.bootstrap_resamples:
        values["bootstrap_resamples"] = config.bootstrap_resamples
    if config.test_folds:
        values["test_folds"] = config.test_folds
    for key in ("seeds", "cross_budget_seeds", "bootstrap_resamples", "test_folds"):
        if int(values[key]) < 1:
            raise StudyConfigError(f"{key} must be a whole number >= 1, got {values[key]!r}")
    if config.tolerance < 0:
        raise StudyConfigError(f"tolerance must be >= 0, got {config.tolerance!r}")
    return values


def _fail(asset: str, exc: Exception) -> dg.Failure:
    return dg.Failure(description=f"{asset}: {mask_password(exc)}", allow_retries=False)


def _png_md(name: str, png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{name}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")


def _load_study(spec: str, name: str) -> Any:
    import optuna

    from hpo_assets.search.storage import list_studies, open_storage

    if name not in list_studies(spec):
        return None
    return optuna.load_study(study_name=name, storage=open_storage(spec, name))


# --- baselines --------------------------------------------------------------------------------------------


@dg.asset(
    group_name="models",
    partitions_def=horizon_partitions,
    deps=["features"],
    kinds={"scikitlearn"},
    description="Majority class, atr_14/close, logistic regression and histogram gradient boosting, refitted on "
    "each walk-forward test fold's past: per-fold and pooled test AUC (paired block bootstrap), log loss, Brier.",
)
def baselines(
    context: dg.AssetExecutionContext, config: ModelsConfig, paths: HpoPaths
) -> dg.MaterializeResult:
    from hpo_assets.baselines.folds import folds_document
    from hpo_assets.data.dataset import load_prepared
    from hpo_assets.training.test_folds import fold_datasets

    try:
        horizon = str(context.partition_key)
        models = _models_settings(config)
        window = study_settings(config.profile)
        data = load_prepared(
            paths.outputs(*outputs.FEATURES_FILE),
            int(horizon[1:]),
            start=window.start or None,
            end=window.end or None,
            **window.split_dates(),
        )
        folds = fold_datasets(data, int(models["test_folds"]))
    except (ValueError, FileNotFoundError) as exc:
        raise _fail("baselines", exc) from None
    doc = folds_document(folds, horizon, int(models["bootstrap_resamples"]))
    target = outputs.write_text(
        paths.outputs(*BASELINES_DIR, f"baselines_{horizon}.json"), json.dumps(doc, indent=2)
    )
    frame = pl.DataFrame(
        [
            {
                k: r[k]
                for k in ("model", "split", "auc", "auc_lo", "auc_hi", "log_loss", "brier", "n", "positives")
            }
            for r in doc["rows"]
        ],
        infer_schema_length=None,
    )
    best_test = max(
        (r for r in doc["rows"] if r["split"] == "test" and r["auc"] is not None),
        key=lambda r: r["auc"],
        default=None,
    )
    per_fold = pl.DataFrame(
        [
            {
                k: r.get(k)
                for k in (
                    "fold",
                    "model",
                    "test_first",
                    "test_last",
                    "auc",
                    "auc_lo",
                    "auc_hi",
                    "log_loss",
                    "brier",
                    "n",
                    "positives",
                )
            }
            for r in doc["test_folds"]
            if r["split"] == "test"
        ],
        infer_schema_length=None,
    )
    return dg.MaterializeResult(
        metadata={
            "baselines": table(frame),
            "test_folds": table(per_fold),
            "n_folds": doc["n_folds"],
            "auc_noise": doc["auc_noise"],
            "best_test_baseline": best_test["model"] if best_test else dg.MetadataValue.null(),
            "best_test_baseline_auc": float(best_test["auc"]) if best_test else dg.MetadataValue.null(),
            "split": dg.MetadataValue.json(doc["split"]),
            "interval_noise": doc["interval_noise"],
            "path": dg.MetadataValue.path(str(target)),
        }
    )


# --- calibrated_model -------------------------------------------------------------------------------------


@dg.asset(
    group_name="models",
    partitions_def=budget_horizon_partitions,
    deps=["features", "hpo_study"],
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch", "scikitlearn"},
    description="The partition study's best COMPLETE trial retrained with k seeds on each walk-forward test fold, "
    "scored on the fold's test days (pooled AUC: mean over folds and seeds, paired intervals vs baselines), "
    "calibrated on each fold's validation, fold 0's best seed saved with a model card.",
    check_specs=[
        dg.AssetCheckSpec(
            "reproduces_trial",
            asset="calibrated_model",
            description="Retraining with the trial's own seed reproduces its recorded validation objective "
            "within the configured tolerance (1e-4 on CPU; about 1e-2 expected on CUDA).",
        )
    ],
)
def calibrated_model(
    context: dg.AssetExecutionContext, config: ModelsConfig, paths: HpoPaths, gpu: GpuLeases
) -> dg.MaterializeResult:
    from hpo_assets.data.dataset import load_prepared
    from hpo_assets.search.runner import DATA_IDENTITY
    from hpo_assets.training.release import release_model
    from hpo_assets.training.retrain import RetrainError, best_trial_recipe, seeds_for

    try:
        part = parse_partition(context.partition_key)
        models = _models_settings(config)
        window = study_settings(config.profile)
        spec = config.storage or paths.storage_spec()
        study = _load_study(spec, part.study_name)
        if study is None:
            raise RetrainError(
                f"no study {part.study_name!r} in {mask_password(spec)}; materialize hpo_study for {part.key} first"
            )
        recipe = best_trial_recipe(study, window.model_dump())
        data = load_prepared(
            paths.outputs(*outputs.FEATURES_FILE),
            part.horizon_days,
            start=recipe.start,
            end=recipe.end,
            val_start=recipe.val_start,
            test_start=recipe.test_start,
        )
        threads = config.cpu_threads if config.cpu_threads >= 0 else (recipe.num_threads or 0)
        device = gpu.device_for(
            config.device, holder={"run_id": context.run.run_id, "partition": part.key}, log=context.log.info
        )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail("calibrated_model", exc) from None
    if recipe.assumed:
        context.log.warning(
            f"{part.study_name} does not record {', '.join(recipe.assumed)}; using the configuration's"
        )
    seeds = seeds_for(recipe, int(models["seeds"]))
    context.log.info(
        f"{part.study_name}: best trial #{recipe.trial_number} {recipe.arch.label}, seeds {seeds}, "
        f"{models['test_folds']} test fold(s)"
    )
    identity = {k: study.user_attrs.get(k) for k in DATA_IDENTITY}  # as the study records it now
    try:
        rel = release_model(
            data,
            recipe,
            seeds,
            paths.outputs(*MODELS_DIR, f"{part.budget}_{part.horizon}"),
            budget=part.budget,
            horizon=part.horizon,
            n_folds=int(models["test_folds"]),
            data_identity=identity,
            device=device or None,
            num_threads=threads or None,
            tolerance=config.tolerance,
            n_resamples=int(models["bootstrap_resamples"]),
            log=context.log.info,
        )
    except ValueError as exc:
        raise _fail("calibrated_model", exc) from None
    card = rel.card
    cal = card["calibration"]
    compare = pl.DataFrame(
        [
            {
                "model": "this model (AUC uncalibrated, mean over seeds; log loss/Brier calibrated)",
                "auc": card["test"]["auc"],
                "auc_lo": card["test"]["auc_lo"],
                "auc_hi": card["test"]["auc_hi"],
                "log_loss": card["test"]["log_loss"],
                "brier": card["test"]["brier"],
            }
        ]
        + [
            {k: r[k] for k in ("model", "auc", "auc_lo", "auc_hi", "log_loss", "brier")}
            for r in card["baselines"]
            if r["split"] == "test"
        ],
        infer_schema_length=None,
    )
    folds_table = pl.DataFrame(
        [
            {
                k: f[k]
                for k in (
                    "fold",
                    "test_first",
                    "test_last",
                    "n",
                    "positives",
                    "auc",
                    "auc_lo",
                    "auc_hi",
                    "block",
                    "train_last",
                    "val_first",
                )
            }
            for f in card["test_folds"]
        ],
        infer_schema_length=None,
    )
    paired = pl.DataFrame(
        [
            {
                k: r[k]
                for k in (
                    "baseline",
                    "auc_diff",
                    "auc_diff_lo",
                    "auc_diff_hi",
                    "auc_diff_se",
                    "auc_diff_se_unpaired",
                    "verdict",
                )
            }
            for r in card["vs_baselines"]
        ],
        infer_schema_length=None,
    )
    before_after = pl.DataFrame(
        [
            {
                "metric": k,
                "before": cal["before"].get(k),
                "before_lo": cal["before"].get(f"{k}_lo"),
                "before_hi": cal["before"].get(f"{k}_hi"),
                "after": cal["after"].get(k),
                "after_lo": cal["after"].get(f"{k}_lo"),
                "after_hi": cal["after"].get(f"{k}_hi"),
            }
            for k in ("ece_width", "ece_mass", "mce_width", "brier", "log_loss", "auc", "accuracy")
        ],
        infer_schema_length=None,
    )
    rep = card["reproduction"]
    return dg.MaterializeResult(
        metadata={
            "card_path": dg.MetadataValue.path(str(rel.folder / "card.md")),
            "model_dir": dg.MetadataValue.path(str(rel.folder)),
            "trial": recipe.trial_number,
            "architecture": recipe.arch.label,
            "param_count": card["param_count"],
            "seeds": str(card["seeds"]),
            "test_auc": card["test"]["auc"],
            "test_auc_interval": "no interval"
            if card["test"]["auc_lo"] is None or card["test"]["auc_hi"] is None
            else interval_text(card["test"]["auc_lo"], card["test"]["auc_hi"]),
            "test_auc_seed_mean": card["seed_spread"]["auc_mean"] or dg.MetadataValue.null(),
            "test_folds": table(folds_table),
            "test_auc_noise": card["test"]["noise"],
            "test_vs_baselines": table(compare),
            "paired_auc_vs_baselines": table(paired),
            "paired_interval_noise": card["vs_baselines_noise"],
            "calibration_method": cal["chosen"],
            "calibration_before_after": table(before_after),
            "calibration_warnings": "; ".join(cal["warnings"]) or "none",
            "reliability": _png_md("reliability", rel.png),
            "interval_noise": card["interval_noise"],
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="reproduces_trial",
                passed=bool(rep["passed"]),
                metadata={
                    "recorded": rep["recorded"] if rep["recorded"] is not None else dg.MetadataValue.null(),
                    "retrained": rep["retrained"]
                    if rep["retrained"] is not None
                    else dg.MetadataValue.null(),
                    "abs_diff": rep["abs_diff"] if rep["abs_diff"] is not None else dg.MetadataValue.null(),
                    "tolerance": rep["tolerance"],
                    "seed": rep["seed"],
                },
            )
        ],
    )


# --- cross_budget_validation ------------------------------------------------------------------------------


@dg.asset(
    group_name="models",
    partitions_def=horizon_partitions,
    deps=["features", "hpo_study"],
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch"},
    description="For every pair of budgets with a finished study at this horizon: budget B's best architecture "
    "trained with budget A's best training parameters, k seeds; test AUC matrix and transfer gaps with intervals.",
)
def cross_budget_validation(
    context: dg.AssetExecutionContext, config: CrossBudgetConfig, paths: HpoPaths, gpu: GpuLeases
) -> dg.MaterializeResult:
    from hpo_assets.data.dataset import load_prepared
    from hpo_assets.model.budgets import parse_budget
    from hpo_assets.training.cross_budget import cross_budget_matrix, matrix_markdown, matrix_png
    from hpo_assets.training.retrain import RetrainError, best_trial_recipe

    try:
        horizon = str(context.partition_key)
        models = _models_settings(config)
        window = study_settings(config.profile)
        spec = config.storage or paths.storage_spec()
        budgets = list(config.budgets) or study_budgets()
        for b in budgets:
            parse_budget(b)
        recipes, skipped = {}, {}
        for b in budgets:
            study = _load_study(spec, f"hpo-{b}-{horizon}")
            if study is None:
                skipped[b] = "no study"
                continue
            try:
                recipes[b] = best_trial_recipe(study, window.model_dump())
            except RetrainError as exc:
                skipped[b] = str(exc)
        if not recipes:
            raise RetrainError(f"no budget of {budgets} has a finished study at {horizon} ({skipped})")
        windows = {b: (r.start, r.end, r.val_start, r.test_start) for b, r in recipes.items()}
        if len(set(windows.values())) > 1:
            raise RetrainError(f"the studies at {horizon} used different data windows/splits: {windows}")
        first = next(iter(recipes.values()))
        data = load_prepared(
            paths.outputs(*outputs.FEATURES_FILE),
            int(horizon[1:]),
            start=first.start,
            end=first.end,
            val_start=first.val_start,
            test_start=first.test_start,
        )
        threads = (
            config.cpu_threads if config.cpu_threads >= 0 else 0
        )  # 0: the trainer's default (free cores)
        device = gpu.device_for(
            config.device, holder={"run_id": context.run.run_id, "partition": horizon}, log=context.log.info
        )
        matrix = cross_budget_matrix(
            data,
            recipes,
            int(models["cross_budget_seeds"]),
            device=device or None,
            num_threads=threads or None,
            n_resamples=int(models["bootstrap_resamples"]),
            log=context.log.info,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail("cross_budget_validation", exc) from None
    matrix["horizon"], matrix["skipped_budgets"] = horizon, skipped
    md, png = matrix_markdown(matrix, horizon), matrix_png(matrix, horizon)
    base = paths.outputs(*CROSS_BUDGET_DIR, f"cross_budget_{horizon}.json")
    outputs.write_text(base, json.dumps(matrix, indent=2, default=str))
    outputs.write_text(base.with_suffix(".md"), md)
    outputs.write_bytes(base.with_suffix(".png"), png)
    cells = pl.DataFrame(
        [
            {
                k: c[k]
                for k in (
                    "params_from",
                    "arch_from",
                    "arch",
                    "param_count",
                    "auc_mean",
                    "auc_lo",
                    "auc_hi",
                    "gap",
                    "gap_lo",
                    "gap_hi",
                    "gap_verdict",
                )
            }
            for c in matrix["cells"]
        ],
        infer_schema_length=None,
    )
    return dg.MaterializeResult(
        metadata={
            "budgets": str(list(recipes)),
            "skipped_budgets": dg.MetadataValue.json(skipped),
            "k_seeds": matrix["k_seeds"],
            "cells": table(cells),
            "matrix": dg.MetadataValue.md(md),
            "heatmap": _png_md("heatmap", png),
            "path": dg.MetadataValue.path(str(base)),
            "interval_noise": matrix["interval_noise"],
        }
    )
