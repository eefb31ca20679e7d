"""What a study can optimise and which metrics a trial records: one list for trainer, search and trial table."""

from __future__ import annotations

from typing import Literal

Direction = Literal["minimize", "maximize"]

# objective name -> Optuna direction
OBJECTIVES: dict[str, Direction] = {"val_auc": "maximize", "val_loss": "minimize"}

# Metrics the trainer computes and a trial stores as user_attrs (the trial schema's result columns).
RESULT_METRICS: tuple[str, ...] = (
    "val_loss",
    "val_auc",
    "val_pr_auc",
    "precision",
    "recall",
    "accuracy",
    "pred_min",
    "pred_max",
    "pred_pos_rate",
    "train_loss",
)
