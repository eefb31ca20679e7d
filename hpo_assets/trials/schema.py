"""The one normalized trial table: every column's polars type and its meaning (the README is written from it)."""

from __future__ import annotations

from itertools import accumulate, chain
from typing import Any

import polars as pl

STATES = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
DIRECTIONS = ["maximize", "minimize"]

# One epoch of a learning curve; keys a source does not record are null.
CURVE_FIELDS: dict[str, pl.DataType] = {
    "epoch": pl.Int64(),
    "train_loss": pl.Float64(),
    "val_loss": pl.Float64(),
    "val_auc": pl.Float64(),
    "lr": pl.Float64(),
    "seconds": pl.Float64(),
}
CURVE_TYPE = pl.List(pl.Struct(CURVE_FIELDS))

# (name, type, description): the order is the table's column order.
_COLUMNS: list[tuple[str, pl.DataType, str]] = [
    # identity
    ("study", pl.String(), "Study name: the Optuna study name, or the export folder's name."),
    (
        "source",
        pl.String(),
        "Reader that produced the row: optuna_storage, template_export, legacy_export or trial_json.",
    ),
    ("source_path", pl.String(), "Storage URL, journal file or folder the study was read from."),
    (
        "budget",
        pl.String(),
        "Parameter budget label (2M, 20M, 200M, 2B), from the study/folder name when files disagree.",
    ),
    (
        "horizon",
        pl.String(),
        "Forecast horizon label (h1, h3, h5), from the study/folder name when files disagree.",
    ),
    (
        "tier",
        pl.String(),
        "Feature tier a<n> (OHLCV + n indicators, e.g. a20, a50): the study's own record, else the nearest "
        "folder on the source path that names one (phase6c_a100/hpo_2m_h1 -> a100), else null.",
    ),
    ("trial_num", pl.Int64(), "Trial number inside its study (Optuna's trial.number)."),
    # data provenance: what the trial was trained and measured on (null when the source does not say)
    ("label_mode", pl.String(), "Label definition: high (intraday high touches the threshold) or close."),
    ("label_threshold", pl.Float64(), "Label threshold as a fraction (0.01 = a 1% rise within the horizon)."),
    ("split_kind", pl.String(), "How train/val/test were cut: contiguous (by date) or chunks."),
    ("data_start", pl.String(), "First date of the data window (ISO)."),
    ("data_end", pl.String(), "Last date of the data window (ISO)."),
    ("val_start", pl.String(), "First date of the validation part (contiguous splits)."),
    ("test_start", pl.String(), "First date of the test part (contiguous splits; null when there is none)."),
    ("train_size", pl.Int64(), "Training samples."),
    ("val_size", pl.Int64(), "Validation samples the metrics were measured on."),
    ("val_positives", pl.Int64(), "Positive labels among the validation samples."),
    (
        "n_features",
        pl.Int64(),
        "Model inputs per day: the study's record, else from the tier (a<n> = n + 5 OHLCV inputs).",
    ),
    ("feature_set", pl.String(), "The input columns, comma-separated, in model order (live studies)."),
    # state
    ("state", pl.Enum(STATES), "COMPLETE, PRUNED, FAIL, RUNNING or WAITING (enqueued, not started)."),
    (
        "state_reason",
        pl.String(),
        "Why the trial is in its state (fail reason, pruned epoch, missing value...), else null.",
    ),
    # architecture
    ("d_model", pl.Int64(), "Transformer width."),
    ("n_layers", pl.Int64(), "Number of encoder layers."),
    ("n_heads", pl.Int64(), "Number of attention heads."),
    ("d_ff", pl.Int64(), "Feed-forward width (d_model x d_ff_ratio for exports that store a ratio)."),
    (
        "param_count",
        pl.Int64(),
        "Trainable parameters. Live: the exact count the trial recorded. Imported: the closed formula "
        "(model/params.py) on the trial's architecture and n_features, at the study's context/patch/stride "
        "or this project's defaults; a budget label does not count (a '2M' study may hold 0.2M models). "
        "A count the source recorded only where the formula cannot apply; else null.",
    ),
    # training parameters
    ("lr", pl.Float64(), "Peak learning rate."),
    ("dropout", pl.Float64(), "Dropout probability."),
    ("weight_decay", pl.Float64(), "AdamW weight decay."),
    ("warmup_steps", pl.Int64(), "Learning-rate warm-up steps."),
    ("epochs_config", pl.Int64(), "Maximum epochs the trial was configured to train."),
    ("batch_size", pl.Int64(), "Mini-batch size."),
    # results
    (
        "objective",
        pl.Float64(),
        "The study's objective value for this trial (PRUNED: the last reported epoch value, as Optuna stores it; null when missing or not finite). Only COMPLETE trials are ranked.",
    ),
    ("objective_name", pl.String(), "What the objective measures: val_auc or val_loss."),
    ("direction", pl.Enum(DIRECTIONS), "Whether the study maximizes or minimizes the objective."),
    (
        "val_loss",
        pl.Float64(),
        "Validation loss of the model the metric columns measure (at best_epoch when that is known).",
    ),
    ("val_auc", pl.Float64(), "Validation ROC-AUC."),
    ("val_pr_auc", pl.Float64(), "Validation precision-recall AUC."),
    ("precision", pl.Float64(), "Validation precision at threshold 0.5."),
    ("recall", pl.Float64(), "Validation recall at threshold 0.5."),
    ("accuracy", pl.Float64(), "Validation accuracy."),
    ("pred_min", pl.Float64(), "Smallest predicted probability on the validation set."),
    ("pred_max", pl.Float64(), "Largest predicted probability on the validation set."),
    ("pred_pos_rate", pl.Float64(), "Share of validation samples predicted positive."),
    ("train_loss", pl.Float64(), "Training loss at best_epoch (as the source recorded it for imports)."),
    # dynamics
    (
        "best_epoch",
        pl.Int64(),
        "The epoch whose model the metric columns (val_loss, val_auc ... train_loss) measure: the objective's "
        "best epoch, whose checkpoint the trainer restored. Null when the source does not say (exports, "
        "per-trial JSON, pruned trials without measured metrics).",
    ),
    (
        "min_val_loss_epoch",
        pl.Int64(),
        "Epoch with the lowest finite val_loss on the learning curve (need not be best_epoch when the "
        "objective is val_auc); null without a curve.",
    ),
    ("min_val_loss", pl.Float64(), "Lowest finite val_loss on the learning curve; null without a curve."),
    ("epochs_trained", pl.Int64(), "Length of the learning curve (else the trainer's own epoch count)."),
    (
        "early_stopped",
        pl.Boolean(),
        "Stopped by patience (the objective stopped improving). Live: as the trainer recorded it. Imported: "
        "COMPLETE, not diverged and epochs_trained < epochs_config. False for pruned, diverged and failed "
        "trials; null when unknown (e.g. epochs_config not recorded).",
    ),
    ("duration_sec", pl.Float64(), "Wall-clock training time in seconds."),
    # flags
    ("forced_extreme", pl.Boolean(), "True for the enqueued extreme-architecture trials run before TPE."),
    ("extreme_type", pl.String(), "Which extreme a forced trial tests (e.g. min_d_model), else null."),
    (
        "transferred_from",
        pl.String(),
        "Warm-started studies: the source trial ('hpo-2M-h1#17') whose best configuration this trial "
        "transfers, else null (see the study's `transferred_from` metadata for the study's sources).",
    ),
    (
        "duplicate_of",
        pl.Int64(),
        "Earliest COMPLETE trial of the same study with identical parameters, else null.",
    ),
    (
        "diverged",
        pl.Boolean(),
        "The shared rule (training/divergence.py): a train/val loss not finite or above 10 x ln 2 ~ 6.93, or the trainer's guard fired (live diverged trials are PRUNED).",
    ),
    ("diverged_reason", pl.String(), "Why the trial counts as diverged, else null."),
    (
        "rank_in_study",
        pl.Int64(),
        "Rank by objective in the study's direction, 1 = best, ties share the best rank.",
    ),
    ("is_best_in_study", pl.Boolean(), "rank_in_study == 1."),
    (
        "study_in_progress",
        pl.Boolean(),
        "The study has RUNNING or WAITING trials: its run is in progress (or was killed; resuming finishes "
        "them). Its trials are shown but left out of the verdicts until it finishes.",
    ),
    # divergence diagnosis
    (
        "diverge_epoch",
        pl.Int64(),
        "First epoch whose loss breaks the divergence rule (or as the trainer recorded).",
    ),
    ("last_good_loss", pl.Float64(), "Last val_loss within the divergence rule before the divergence epoch."),
    (
        "loss_at_diverge",
        pl.Float64(),
        "val_loss at the divergence epoch (null when not finite: see diverged_reason).",
    ),
    ("arch_ratio", pl.Float64(), "n_layers / d_model."),
    ("arch_category", pl.String(), "narrow-deep (arch_ratio > 0.5), wide-shallow (< 0.15) or balanced."),
    (
        "similar_successful_study",
        pl.String(),
        "For diverged trials: study of the nearest non-diverged COMPLETE trial of the same budget.",
    ),
    (
        "similar_successful_trial",
        pl.Int64(),
        "For diverged trials: number of that nearest trial (log d_model, log n_layers, log n_heads).",
    ),
    # raw material
    (
        "params_json",
        pl.String(),
        "The trial's parameters as the source named them (JSON), forced values filled in.",
    ),
    ("n_curve_epochs", pl.Int64(), "Number of records in learning_curve (0 when the source has none)."),
    ("learning_curve", CURVE_TYPE, "Per-epoch records {epoch, train_loss, val_loss, val_auc, lr, seconds}."),
]

TRIAL_SCHEMA: pl.Schema = pl.Schema({name: dtype for name, dtype, _ in _COLUMNS})
COLUMN_DOCS: dict[str, str] = {name: doc for name, _, doc in _COLUMNS}
COLUMNS: list[str] = [name for name, _, _ in _COLUMNS]

# Columns no row may leave null (checked by an asset check).
REQUIRED_COLUMNS = [
    "study",
    "source",
    "source_path",
    "trial_num",
    "state",
    "direction",
    "diverged",
    "n_curve_epochs",
]
# The parameters of a trial: its architecture and its training parameters, the one list of their names.
ARCH_PARAMS = ["d_model", "n_layers", "n_heads", "d_ff"]
TRAINING_PARAMS = ["lr", "dropout", "weight_decay", "warmup_steps"]
# The parameters that make two trials "the same configuration".
PARAM_COLUMNS = [*ARCH_PARAMS, *TRAINING_PARAMS, "epochs_config", "batch_size"]
# A trial's configuration as the trial table and the divergence report show it, with its parameter count.
CONFIG_COLUMNS = [*ARCH_PARAMS, "param_count", *TRAINING_PARAMS, "batch_size"]
# Flat columns (everything but the nested curve), for CSV.
FLAT_COLUMNS = [c for c in COLUMNS if c != "learning_curve"]


def type_name(dtype: pl.DataType) -> str:
    """A short human name of a column type for the README."""
    if isinstance(dtype, pl.Enum):
        return "enum(" + "|".join(dtype.categories.to_list()) + ")"
    if isinstance(dtype, pl.List):
        return "list[struct]"
    return {pl.String: "string", pl.Int64: "int64", pl.Float64: "float64", pl.Boolean: "bool"}.get(
        type(dtype), str(dtype)
    )


def empty_table() -> pl.DataFrame:
    """A table with the schema and no rows."""
    return pl.DataFrame(schema=TRIAL_SCHEMA)


Curve = dict[str, list[Any]]  # a learning curve held by column: one equal-length list per CURVE_FIELDS key


def _as_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _as_epoch(v: Any, i: int) -> int:
    if type(v) is int:
        return v
    f = _as_float(v)
    return int(f) if f is not None and f.is_integer() else i + 1


def curve_columns(raw: Any) -> Curve | None:
    """A curve (list of per-epoch dicts) as columns; unknown keys dropped, missing ones null, a missing epoch
    numbered by position. None when `raw` is not a list of dicts. Columns keep memory small at 100k trials."""
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        return None
    cols: Curve = {}
    for key in CURVE_FIELDS:
        vals = [r.get(key) for r in raw]
        if key == "epoch":
            cols[key] = [_as_epoch(v, i) for i, v in enumerate(vals)]
        else:
            cols[key] = [v if type(v) is float or v is None else _as_float(v) for v in vals]
    return cols


def curve_length(curve: Curve | None) -> int:
    return len(curve["epoch"]) if curve else 0


_ROW_SCHEMA = pl.Schema({k: v for k, v in TRIAL_SCHEMA.items() if k != "learning_curve"})


def _curve_series(curves: list[Curve | None]) -> pl.Series:
    """The learning_curve column built in bulk (through Arrow) from columnar curves; non-finite numbers become null."""
    import pyarrow as pa

    present = [c for c in curves if c]
    arrays = []
    for key, dtype in CURVE_FIELDS.items():
        values = list(chain.from_iterable(c[key] for c in present))
        if dtype == pl.Float64():
            arr = pa.array(values, type=pa.float64(), from_pandas=True)  # NaN -> null
            arr = pa.compute.if_else(pa.compute.is_inf(arr), pa.scalar(None, pa.float64()), arr)
        else:
            arr = pa.array(values, type=pa.int64())
        arrays.append(arr)
    structs = pa.StructArray.from_arrays(arrays, names=list(CURVE_FIELDS))
    offsets = pa.array([0, *accumulate(curve_length(c) for c in curves)], type=pa.int64())
    lists = pa.LargeListArray.from_arrays(offsets, structs)
    return pl.Series("learning_curve", lists).cast(CURVE_TYPE)


def to_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Build the typed table from row dicts (missing keys are null). `learning_curve` may be a columnar
    Curve, a list of per-epoch dicts, or None (no curve: an empty list)."""
    if not rows:
        return empty_table()
    df = pl.DataFrame(rows, schema=_ROW_SCHEMA, strict=False, infer_schema_length=None)
    curves = [r.get("learning_curve") for r in rows]
    curves = [curve_columns(c) if isinstance(c, list) else c for c in curves]
    return df.with_columns(_curve_series(curves)).select(list(TRIAL_SCHEMA))


def _from_older_schema(df: pl.DataFrame) -> pl.DataFrame:
    """A table written before best_epoch meant the metrics' epoch: its best_epoch/best_val_loss were the
    curve's lowest val_loss (now min_val_loss_epoch/min_val_loss; which epoch its metrics measure is
    unknown), and early_stopped was "shorter than configured" (now patience only)."""
    if "best_val_loss" not in df.columns or "min_val_loss" in df.columns:
        return df
    df = df.rename({"best_val_loss": "min_val_loss"})
    if "best_epoch" in df.columns:
        df = df.rename({"best_epoch": "min_val_loss_epoch"})
    if {"early_stopped", "state", "diverged"} <= set(df.columns):
        state, diverged = pl.col("state").cast(pl.String), pl.col("diverged").fill_null(False)
        df = df.with_columns(
            early_stopped=pl.when(state.is_in(["PRUNED", "FAIL"]) | diverged)
            .then(False)
            .when(state == "COMPLETE")
            .then(pl.col("early_stopped"))  # a complete live run shorter than configured stopped by patience
        )
    return df


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Cast a table read back from parquet (or an older run) to the schema, adding missing columns as null."""
    df = _from_older_schema(df)
    exprs = [
        (pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c))
        for c, t in TRIAL_SCHEMA.items()
    ]
    return df.select(exprs)
