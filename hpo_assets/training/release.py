"""From a study's best trial to a released model: retrain k seeds, test, calibrate, save, card.

This is the only place the test split is read for a study's model: once, for the final numbers of
the chosen configuration. Everything chosen (the seed saved, the calibration method, the baselines'
settings) is chosen on validation.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo_assets import outputs
from hpo_assets.baselines.comparison import NOISE as PAIRED_NOISE
from hpo_assets.baselines.comparison import auc_block, fold_aucs, versus
from hpo_assets.baselines.folds import fit_folds, fold_rows, score_folds
from hpo_assets.calibration import calibrators
from hpo_assets.calibration.bootstrap import pooled_auc_sensitivity
from hpo_assets.calibration.evaluation import evaluate, flat
from hpo_assets.calibration.metrics import auc, brier, logloss
from hpo_assets.calibration.model_card import card_markdown, reliability_png, seed_spread
from hpo_assets.data.dataset import DATA_IDENTITY
from hpo_assets.locations import is_local
from hpo_assets.training.metrics import sigmoid
from hpo_assets.training.retrain import RetrainError, SeedRun, TrialRecipe
from hpo_assets.training.saved_model import write_model_files
from hpo_assets.training.test_folds import FoldRuns, fold_datasets, predictions_frame, retrain_folds

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

# Same data, seed, configuration and thread count on CPU: the retrain repeats the trial's arithmetic, so
# its validation AUC matches to float32 round-off. On CUDA (bf16 autocast, non-deterministic atomics in
# the backward pass) expect differences up to ~0.01 AUC; set `tolerance` accordingly there.
CPU_TOLERANCE = 1e-4
CUDA_TOLERANCE = 1e-2
METRIC_KEYS = ("auc", "log_loss", "brier", "accuracy")


@dataclass
class Release:
    """What `release_model` wrote and measured; `card` is the content of card.json."""

    folder: Path
    card: dict[str, Any]
    png: bytes
    runs: list[SeedRun]  # fold 0's (the studies' own split)
    fold_runs: list[FoldRuns]


def _objective(run: SeedRun, objective: str) -> float | None:
    value = run.val_metrics.get(objective)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _pick_saved(runs: list[SeedRun], objective: str) -> SeedRun:
    usable = [r for r in runs if r.usable and _objective(r, objective) is not None]
    if not usable:
        reasons = "; ".join(f"seed {r.seed}: {r.reason or 'no finite validation objective'}" for r in runs)
        raise RetrainError(f"no retrain produced a usable model ({reasons})")
    sign = -1.0 if objective == "val_loss" else 1.0
    return max(usable, key=lambda r: (sign * (_objective(r, objective) or 0.0), -r.seed))


def replace_folder(partial: Path, target: Any) -> None:
    """Put a completely written local folder in place as `target`.

    Locally the folder is renamed into place (the previous version kept until that succeeded); under an
    object-store root each file is uploaded as one object (`outputs.write_bytes`), the card last.
    """
    if not is_local(target):
        names = sorted((f.name for f in partial.iterdir()), key=lambda n: n.startswith("card."))
        for name in names:
            outputs.write_bytes(target / name, (partial / name).read_bytes())
        shutil.rmtree(partial, ignore_errors=True)
        return
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    partial.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def _n(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def folds_markdown(card: dict[str, Any]) -> str:
    """The card's walk-forward section: pooled and per-fold uncalibrated AUC (mean over seeds) with
    intervals, and the paired model-minus-baseline differences per fold."""
    t = card["test"]
    lines = [
        "",
        "## Walk-forward test folds (uncalibrated AUC, mean over seeds)",
        "",
        f"Pooled over {t['folds']} fold(s) x {t['seeds']} seed(s): AUC **{_n(t['auc'])}** "
        f"[{_n(t['auc_lo'])}, {_n(t['auc_hi'])}] (SE {_n(t['auc_se'])}; {t['n']} test days, {t['positives']} positive).",
        f"Noise: {t['noise']}.",
        "",
        "| fold | test days | n | positives | trained on | validated on | AUC [95%] | best seed (calibrator) |",
        "|---:|---|---:|---:|---|---|---|---|",
    ]
    for f in card["test_folds"]:
        ext = f" (+{f['val_extended_days']} d back)" if f.get("val_extended_days") else ""
        lines.append(
            f"| {f['fold']} | {f['test_first']} .. {f['test_last']} | {f['n']} | {f['positives']} | "
            f"{f['train_first']} .. {f['train_last']} | {f['val_first']} .. {f['val_last']}{ext} | "
            f"{_n(f['auc'])} [{_n(f['auc_lo'])}, {_n(f['auc_hi'])}] | {f['best_seed']} ({f['calibration_method']}) |"
        )
    names = [r["baseline"] for r in card["vs_baselines"]]
    lines += [
        "",
        "Model minus baseline, AUC per fold (paired: same resampled days; the model's seed effect carried with them):",
        "",
        "| baseline | pooled [95%] | "
        + " | ".join(f"fold {f['fold']}" for f in card["test_folds"])
        + " | verdict |",
        "|---|---|" + "---|" * len(card["test_folds"]) + "---|",
    ]
    for name, row in zip(names, card["vs_baselines"], strict=True):
        cells = " | ".join(
            f"{_n(f['auc_diff'])} [{_n(f['auc_diff_lo'])}, {_n(f['auc_diff_hi'])}]" for f in row["folds"]
        )
        lines.append(
            f"| {name} | {_n(row['auc_diff'])} [{_n(row['auc_diff_lo'])}, {_n(row['auc_diff_hi'])}] | "
            f"{cells} | {row['verdict']} |"
        )
    lines += [
        "",
        "Every test row's predictions: test_predictions.parquet (fold, date, label, seed, logit, "
        "p_calibrated).",
    ]
    return "\n".join(lines) + "\n"


def _seed_aucs(fold_runs: list[FoldRuns], seeds: list[int]) -> dict[int, float | None]:
    """Per seed, the mean over folds of its uncalibrated test AUC (None where it was not usable in a fold)."""
    out: dict[int, float | None] = {}
    for seed in seeds:
        values = []
        for fr in fold_runs:
            run = next((r for r in fr.usable if r.seed == seed), None)
            values.append(None if run is None else auc(fr.y_test, sigmoid(run.test_logits)))
        out[seed] = None if any(v is None for v in values) else float(np.mean(values))  # type: ignore[arg-type]
    return out


def release_model(
    data: PreparedData,
    recipe: TrialRecipe,
    seeds: list[int],
    folder: Any,
    *,
    budget: str,
    horizon: str,
    n_folds: int = 1,
    data_identity: dict[str, Any] | None = None,
    device: str | None = None,
    num_threads: int | None = None,
    tolerance: float = CPU_TOLERANCE,
    n_resamples: int = 1000,
    log: Any = None,
) -> Release:
    """Retrain `recipe` with `seeds` (the first should be the trial's own) on each of `n_folds` walk-forward
    test folds, evaluate, calibrate, save fold 0's best-validation seed into `folder`.

    `folder` is a local `Path` or a `UPath` under an object-store outputs root. `data_identity`: the study's
    recorded data attributes (`data.dataset.DATA_IDENTITY`), copied into the card.
    """
    if data.split.test.size == 0:
        raise RetrainError("the split has no test samples (test_start is unset or after the data's end)")
    folds = fold_datasets(data, n_folds)
    fold_runs = retrain_folds(folds, recipe, seeds, device=device, num_threads=num_threads, log=log)
    runs = fold_runs[0].runs
    saved = _pick_saved(runs, recipe.objective)
    own = runs[0]
    reproduced = _objective(own, recipe.objective)
    diff = None if reproduced is None or recipe.value is None else abs(reproduced - recipe.value)

    # Per fold: the calibration method is chosen on the fold's best-validation seed (fold 0's is the saved
    # model) and refitted on every other seed's own validation predictions of that fold.
    predictions, best_of_fold = [], []
    for fr in fold_runs:
        try:
            best = _pick_saved(fr.runs, recipe.objective)
        except RetrainError as exc:
            raise RetrainError(f"test fold {fr.fold}: {exc}") from None
        sel = calibrators.select(best.val_logits, fr.y_val, horizon=data.horizon)
        dates = [str(d) for d in fr.data.dates[fr.data.split.test]]
        for r in fr.usable:
            cal = sel.calibrator if r is best else calibrators.fit(sel.method, r.val_logits, fr.y_val)
            p = cal.predict(r.test_logits)
            predictions.append(
                {
                    "fold": fr.fold,
                    "date": dates,
                    "label": fr.y_test.astype(int),
                    "seed": r.seed,
                    "logit": r.test_logits,
                    "p_calibrated": p,
                }
            )
            if r is best:
                best_of_fold.append((best, sel, p))
    selection = best_of_fold[0][1]
    y_test = np.concatenate([fr.y_test for fr in fold_runs])
    p_before = np.concatenate([sigmoid(b.test_logits) for b, _, _ in best_of_fold])
    p_after = np.concatenate([p for _, _, p in best_of_fold])
    before = evaluate(y_test, p_before, data.horizon, n_resamples)
    after = evaluate(y_test, p_after, data.horizon, n_resamples)

    fits = fit_folds(folds)
    model_scores = [{"model": fr.test_logits()} for fr in fold_runs]
    aucs = fold_aucs(score_folds(folds, fits, model_scores), data.horizon, n_resamples)
    baselines, baselines_folds = fold_rows(folds, fits, aucs, n_resamples)
    vs_baselines = versus(aucs, "model")
    by_seed = _seed_aucs(fold_runs, [r.seed for r in runs])
    seed_aucs = [by_seed[r.seed] for r in runs]
    noise = (
        f"mean over {len(folds)} walk-forward test fold(s) of the mean over {len(seeds)} retrained seeds of the "
        f"uncalibrated test AUC; {aucs.noise()} within each fold, the seed effect carried with the days: the noise "
        "of which days were tested and of the training seed, not of how the configuration was selected"
    )
    pooled = auc_block(*aucs.pooled["model"], aucs.level, aucs.blocks())
    test_block = {
        **{k: pooled[k] for k in ("auc", "auc_lo", "auc_hi", "auc_se")},
        "n": int(y_test.size),
        "positives": int(np.sum(y_test == 1)),
        "folds": len(folds),
        "seeds": len(seeds),
        "noise": noise,
        "seed_aucs": seed_aucs,
        **{f"calibrated_{k}": v for k, v in flat(after, ("auc",)).items()},
        **flat(after, tuple(k for k in METRIC_KEYS if k != "auc")),
    }
    test_folds = []
    for fr, (best, sel, p), per in zip(fold_runs, best_of_fold, aucs.per_fold, strict=True):
        block = auc_block(*per["model"], aucs.level, aucs.blocks(fr.fold))
        span = fr.span()
        test_folds.append(
            {
                "fold": fr.fold,
                "test_first": span["test_first"],
                "test_last": span["test_last"],
                "n": int(fr.y_test.size),
                "positives": int(np.sum(fr.y_test == 1)),
                **{k: block[k] for k in ("auc", "auc_lo", "auc_hi", "auc_se")},
                "block": aucs.resamples.blocks[fr.fold],
                "seed_aucs": [auc(fr.y_test, sigmoid(r.test_logits)) if r.usable else None for r in fr.runs],
                "best_seed": best.seed,
                "calibration_method": sel.method,
                "calibrated": {
                    k: v
                    for k, v in zip(
                        ("log_loss", "brier"), (logloss(fr.y_test, p), brier(fr.y_test, p)), strict=True
                    )
                },
                "vs_baselines": [
                    {"baseline": row["baseline"], **row["folds"][fr.fold]} for row in vs_baselines
                ],
                **{
                    k: span[k]
                    for k in (
                        "train_first",
                        "train_last",
                        "n_train",
                        "val_first",
                        "val_last",
                        "n_val",
                        "val_extended_days",
                    )
                },
            }
        )

    summary = fold_runs[0].data.split.summary()
    card: dict[str, Any] = {
        "study": recipe.study_name,
        "budget": budget,
        "horizon": horizon,
        "horizon_days": data.horizon,
        "param_count": saved.param_count,
        "data_identity": {k: (data_identity or {}).get(k) for k in DATA_IDENTITY},
        "test": test_block,
        "test_folds": test_folds,
        "test_uncalibrated": flat(before, METRIC_KEYS),
        "interval_noise": noise,
        "bootstrap": {
            "block": list(aucs.resamples.blocks),
            "resamples": aucs.resamples.n_resamples,
            "level": aucs.level,
            "kind": aucs.resamples.kind,
            "sensitivity": pooled_auc_sensitivity(aucs.folds, "model", data.horizon, n_resamples),
        },
        "seeds": [r.seed for r in runs],
        "saved_seed": saved.seed,
        "saved_fold": 0,
        "seed_runs": [
            {
                "seed": r.seed,
                "status": r.status,
                "reason": r.reason,
                "best_epoch": r.best_epoch,
                "epochs_trained": r.epochs_trained,
                "val_auc": r.val_metrics.get("val_auc"),
                "val_loss": r.val_metrics.get("val_loss"),
                "test_auc": a,
                "duration_sec": r.duration_sec,
            }
            for r, a in zip(runs, seed_aucs, strict=True)
        ],
        "seed_spread": seed_spread(seed_aucs),
        "reproduction": {
            "seed": own.seed,
            "objective": recipe.objective,
            "recorded": recipe.value,
            "retrained": reproduced,
            "abs_diff": diff,
            "tolerance": tolerance,
            "passed": diff is not None and diff <= tolerance,
            "cuda_tolerance": CUDA_TOLERANCE,
        },
        "trial": recipe.to_dict(),
        "data": {
            "data_start": str(data.dates[0]),
            "data_end": str(data.dates[-1]),
            "kind": "walk_forward",
            **{k: summary.get(k) for k in ("purge_gap", "val_start")},
            "test_start": data.split.summary().get("test_start"),
            **{f"{p}_{e}": summary.get(f"{p}_{e}") for p in ("train", "val") for e in ("first", "last")},
            **{f"n_{p}": summary.get(f"n_{p}") for p in ("train", "val")},
            "test_first": test_folds[0]["test_first"],
            "test_last": test_folds[-1]["test_last"],
            "n_test": int(y_test.size),
            "test_folds": len(folds),
        },
        "calibration": {
            **selection.to_dict(),
            "folds": calibrators.CROSS_FIT_FOLDS,
            "per_test_fold": [sel.method for _, sel, _ in best_of_fold],
            "before": flat(before),
            "after": flat(after),
            "bins_before_width": before["bins_width"],
            "bins_before_mass": before["bins_mass"],
            "bins_after_width": after["bins_width"],
            "bins_after_mass": after["bins_mass"],
        },
        "baselines": baselines,
        "baselines_folds": baselines_folds,
        "vs_baselines": vs_baselines,
        "vs_baselines_noise": PAIRED_NOISE,
        "features": list(data.feature_names),
    }
    png = reliability_png(
        y_test,
        p_before,
        p_after,
        f"{budget} | {horizon}: test reliability, before vs after {selection.method} calibration",
    )
    architecture = {
        **recipe.arch.to_dict(),
        "label": recipe.arch.label,
        "param_count": saved.param_count,
        "n_features": data.n_features,
        "context": data.context,
        "patch_len": recipe.patch_len,
        "stride": recipe.stride,
        "dropout": float(recipe.train["dropout"]),
        "parametrization": recipe.parametrization,
        "normalization": str(recipe.train.get("normalization", "revin")),
    }
    if is_local(folder):
        folder = Path(folder)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial = Path(tempfile.mkdtemp(prefix="hpo-model-"))
    assert saved.model is not None
    write_model_files(
        partial, saved.model, architecture, list(data.feature_names), selection.calibrator, saved.input_scale
    )
    (partial / "reliability.png").write_bytes(png)
    predictions_frame(predictions).write_parquet(partial / "test_predictions.parquet")
    (partial / "card.json").write_text(json.dumps(card, indent=2, default=str))
    (partial / "card.md").write_text(card_markdown(card) + folds_markdown(card))
    if is_local(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
    replace_folder(partial, folder)
    return Release(folder, card, png, runs, fold_runs)
