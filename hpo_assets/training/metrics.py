"""Binary-classification metrics of validation logits (scikit-learn), None where undefined."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    z = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def bce_with_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy computed from logits (float64, stable)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """val_loss, ROC-AUC, PR-AUC, precision/recall/accuracy at p=0.5, prediction range and positive rate.

    AUCs are None when the labels hold one class; precision is None with no positive prediction,
    recall None with no positive label. Non-finite logits give None for everything but counts.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if z.shape != y.shape:
        raise ValueError(f"logits ({z.shape[0]}) and labels ({y.shape[0]}) differ in length")
    out: dict[str, Any] = {
        "n": int(y.size),
        "pos_rate": float(y.mean()) if y.size else None,
        "val_loss": None,
        "val_auc": None,
        "val_pr_auc": None,
        "precision": None,
        "recall": None,
        "accuracy": None,
        "pred_min": None,
        "pred_max": None,
        "pred_pos_rate": None,
    }
    if y.size == 0 or not np.all(np.isfinite(z)):
        return out
    p = sigmoid(z)
    pred = (p >= 0.5).astype(np.int64)
    two_classes = np.unique(y).size == 2
    out.update(
        val_loss=_clean(bce_with_logits(z, y)),
        val_auc=float(roc_auc_score(y, p)) if two_classes else None,
        val_pr_auc=float(average_precision_score(y, p)) if two_classes else None,
        precision=float(precision_score(y, pred, zero_division=0)) if pred.any() else None,
        recall=float(recall_score(y, pred, zero_division=0)) if y.any() else None,
        accuracy=float(accuracy_score(y, pred)),
        pred_min=float(p.min()),
        pred_max=float(p.max()),
        pred_pos_rate=float(pred.mean()),
    )
    return out
