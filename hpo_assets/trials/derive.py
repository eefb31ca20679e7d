"""Derived fields, defined once (DESIGN.md "Trials: one schema"): per trial from its curve, per study over the table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from hpo_assets.training.divergence import DIVERGED_LOSS, loss_breaks  # the trainer's rule, no torch
from hpo_assets.trials.schema import PARAM_COLUMNS, TRIAL_SCHEMA, Curve, conform, curve_columns, curve_length

NARROW_DEEP = 0.5
WIDE_SHALLOW = 0.15

_FLOAT_COLUMNS = [c for c, t in TRIAL_SCHEMA.items() if t == pl.Float64()]


def _bad_loss(value: float | None, *, is_val: bool) -> bool:
    """The shared rule (training/divergence.py): not finite or above 10 x ln 2, train and val alike."""
    return loss_breaks(value)


def _curve_breakage(curve: Curve) -> tuple[int, int, str] | None:
    """(index, epoch, reason) of the first epoch whose train or val loss breaks the shared divergence rule."""
    for i, (epoch, val, train) in enumerate(
        zip(curve["epoch"], curve["val_loss"], curve["train_loss"], strict=True)
    ):
        if loss_breaks(val):
            return i, epoch, f"val_loss={val!r} at epoch {epoch}"
        if loss_breaks(train):
            return i, epoch, f"train_loss={train!r} at epoch {epoch}"
    return None


def finish_row(
    row: dict[str, Any],
    *,
    guard_fired: bool = False,
    guard_reason: str | None = None,
    guard_epoch: int | None = None,
    recorded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fill a trial's curve-derived fields, divergence and early-stop flags, then replace non-finite numbers with null.

    `recorded` holds what the trainer itself stored: `metrics_epoch` (the epoch whose checkpoint the
    metric columns measure: it becomes best_epoch, never guessed from the curve), `epochs_trained` (used
    only without a curve) and `early_stopped` (patience, as the trainer saw it). A COMPLETE trial that counts
    as diverged becomes FAIL (the old code scored such trials with a fake value): its objective is null
    and the reason says what the source wrote. Non-finite curve values become null when the table is built.
    """
    recorded = recorded or {}
    curve = row.get("learning_curve")
    if isinstance(curve, list):
        curve = row["learning_curve"] = curve_columns(curve)
    n_epochs = curve_length(curve)
    reasons: list[str] = []
    diverge_epoch = None
    if guard_fired:
        reasons.append(guard_reason or "the trainer's divergence guard fired")
        diverge_epoch = guard_epoch
    val_loss, train_loss = row.get("val_loss"), row.get("train_loss")
    if _bad_loss(val_loss, is_val=True):
        reasons.append(
            f"val_loss={val_loss!r}"
            + (f" (> {DIVERGED_LOSS:.3g})" if val_loss is not None and math.isfinite(val_loss) else "")
        )
    if _bad_loss(train_loss, is_val=False):
        reasons.append(f"train_loss={train_loss!r}")
    if row.get("best_epoch") is None:
        row["best_epoch"] = recorded.get("metrics_epoch")
    if curve and n_epochs:
        vals, epochs = curve["val_loss"], curve["epoch"]
        min_i = None
        for i, v in enumerate(vals):
            if v is not None and math.isfinite(v) and (min_i is None or v < vals[min_i]):
                min_i = i
        row["min_val_loss"], row["min_val_loss_epoch"] = (
            (vals[min_i], epochs[min_i]) if min_i is not None else (None, None)
        )
        row["epochs_trained"] = n_epochs
        broke = _curve_breakage(curve)
        if broke is not None:
            reasons.append(f"curve: {broke[2]}")
            diverge_epoch = broke[1]
        if diverge_epoch is not None:
            good = [
                v
                for e, v in zip(epochs, vals, strict=True)
                if e < diverge_epoch and v is not None and not _bad_loss(v, is_val=True)
            ]
            row["last_good_loss"] = good[-1] if good else None
            at = [v for e, v in zip(epochs, vals, strict=True) if e == diverge_epoch]
            row["loss_at_diverge"] = at[0] if at else None
    elif row.get("epochs_trained") is None:
        row["epochs_trained"] = recorded.get("epochs_trained")
    row["diverge_epoch"] = diverge_epoch
    row["diverged"] = bool(reasons)
    row["diverged_reason"] = "; ".join(dict.fromkeys(reasons)) or None

    objective = row.get("objective")
    if row["diverged"]:
        if row.get("state") == "COMPLETE":
            row["state"] = "FAIL"
            row["state_reason"] = (
                f"diverged ({row['diverged_reason']}); the source recorded COMPLETE with value {objective!r}"
            )
        elif not row.get("state_reason"):
            row["state_reason"] = f"diverged ({row['diverged_reason']})"
        row["objective"] = None
    elif objective is not None and not math.isfinite(objective):
        row["objective"] = None
        if row.get("state") == "COMPLETE":
            row["state_reason"] = f"COMPLETE but the objective value is {objective!r}: objective left null"
    row["early_stopped"] = _early_stopped(row, recorded.get("early_stopped"))
    for key in _FLOAT_COLUMNS:
        v = row.get(key)
        if v is not None and not math.isfinite(v):
            row[key] = None
    return row


def _early_stopped(row: dict[str, Any], recorded: bool | None) -> bool | None:
    """Stopped by patience: never a pruned, diverged or failed trial; a COMPLETE one as the trainer recorded
    it, else (imports) when it ran fewer epochs than configured; null when that cannot be told."""
    state = row.get("state")
    if row.get("diverged") or state in ("PRUNED", "FAIL"):
        return False
    if state != "COMPLETE":
        return None  # RUNNING / WAITING: not stopped yet
    if recorded is not None:
        return recorded
    trained, config = row.get("epochs_trained"), row.get("epochs_config")
    return trained < config if trained is not None and config is not None else None


def arch_category(ratio: float | None) -> str | None:
    """narrow-deep (n_layers/d_model > 0.5), wide-shallow (< 0.15), else balanced."""
    if ratio is None:
        return None
    return "narrow-deep" if ratio > NARROW_DEEP else "wide-shallow" if ratio < WIDE_SHALLOW else "balanced"


def _similar_successful(df: pl.DataFrame) -> pl.DataFrame:
    """For each diverged trial, the nearest non-diverged COMPLETE trial of the same budget in log-architecture space."""
    n = df.height
    out_study: list[str | None] = [None] * n
    out_trial: list[int | None] = [None] * n
    arch = ["d_model", "n_layers", "n_heads"]
    idx = df.with_row_index("_i").filter(pl.col("budget").is_not_null() & pl.all_horizontal(pl.col(arch) > 0))
    for _, group in idx.group_by(["budget"], maintain_order=True):
        ok = group.filter((pl.col("state") == "COMPLETE") & ~pl.col("diverged")).sort(["study", "trial_num"])
        bad = group.filter(pl.col("diverged"))
        if ok.is_empty() or bad.is_empty():
            continue
        cand = np.log(ok.select(arch).to_numpy().astype(float))
        for i, *point in bad.select("_i", *arch).iter_rows():
            dist = np.linalg.norm(cand - np.log(np.asarray(point, dtype=float)), axis=1)
            j = int(np.argmin(dist))  # first minimum: ties go to the alphabetically first study, lowest trial
            out_study[i] = ok["study"][j]
            out_trial[i] = int(ok["trial_num"][j])
    return df.with_columns(
        pl.Series("similar_successful_study", out_study, dtype=pl.String),
        pl.Series("similar_successful_trial", out_trial, dtype=pl.Int64),
    )


def derive_table(df: pl.DataFrame) -> pl.DataFrame:
    """Add the study-level derived fields: duplicate_of, rank_in_study, is_best_in_study, study_in_progress,
    arch ratio/category,
    similar_successful_*, n_curve_epochs."""
    df = conform(df)
    if df.is_empty():
        return df
    has_params = pl.any_horizontal(pl.col(PARAM_COLUMNS).is_not_null())
    first_complete = (
        df.filter((pl.col("state") == "COMPLETE") & has_params)
        .group_by(["study", *PARAM_COLUMNS])
        .agg(pl.col("trial_num").min().alias("_first"))
    )
    df = df.join(
        first_complete, on=["study", *PARAM_COLUMNS], how="left", nulls_equal=True, maintain_order="left"
    )
    rank_key = (
        pl.when(pl.col("direction") == "maximize").then(-pl.col("objective")).otherwise(pl.col("objective"))
    )
    rankable = (pl.col("state") == "COMPLETE") & pl.col("objective").is_not_null()
    ratio = (pl.col("n_layers") / pl.col("d_model")).cast(pl.Float64)
    df = df.with_columns(
        duplicate_of=pl.when(has_params & (pl.col("_first") < pl.col("trial_num"))).then(pl.col("_first")),
        rank_in_study=pl.when(rankable).then(
            pl.when(rankable).then(rank_key).rank("min").over("study").cast(pl.Int64)
        ),
        arch_ratio=ratio,
        n_curve_epochs=pl.col("learning_curve").list.len().fill_null(0).cast(pl.Int64),
    ).drop("_first")
    df = df.with_columns(
        is_best_in_study=(pl.col("rank_in_study") == 1).fill_null(False),
        study_in_progress=pl.col("state").is_in(["RUNNING", "WAITING"]).any().over("study"),
        arch_category=pl.when(pl.col("arch_ratio") > NARROW_DEEP)
        .then(pl.lit("narrow-deep"))
        .when(pl.col("arch_ratio") < WIDE_SHALLOW)
        .then(pl.lit("wide-shallow"))
        .when(pl.col("arch_ratio").is_not_null())
        .then(pl.lit("balanced")),
    )
    return conform(_similar_successful(df))
