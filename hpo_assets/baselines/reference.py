"""Four reference predictors of the label, fitted on the study's training samples, tuned on validation.

- `majority`: the training positive rate for every sample (the majority class as a probability);
- `atr_ratio`: atr_14 / close of the sample's last day, a volatility score with no training (AUC only:
  it is not a probability, so its log loss and Brier are null);
- `logistic`: standardized logistic regression on the last day's stationary inputs, C chosen by
  validation log loss;
- `hgb`: scikit-learn's HistGradientBoostingClassifier on the same inputs, learning rate and
  leaf count chosen by validation log loss.

Stationary inputs (`stationary_inputs`), never raw price levels: a price level's test values lie
outside anything seen in training (every 2017-18 close is above the training maximum; logistic h5
on levels went from validation AUC 0.82 to test 0.64). Price-like columns become ratios to the close
(sma_50 / close - 1), the close itself 1/5/20-day log returns, atr_14 and macd_line are divided by
the close, bounded oscillators (RSI, StochRSI, ADX, %B) stay as they are, and everything else
(volume, OBV, A/D oscillator, unknown columns) is a trailing 60-day z-score. The test split is only
scored, never used to choose anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hpo_assets.calibration.bootstrap import metric_intervals
from hpo_assets.calibration.evaluation import INTERVAL_NOISE
from hpo_assets.calibration.metrics import auc, brier, logloss

BASELINES = ("majority", "atr_ratio", "logistic", "hgb")
LOGISTIC_C = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
HGB_GRID = tuple((lr, leaves) for lr in (0.05, 0.1) for leaves in (7, 31))
SPLITS = (("validation", "val"), ("test", "test"))
PRICE_LIKE = ("open", "high", "low", "sma_", "dema_", "ema_", "vwap_", "bb_upper", "bb_middle", "bb_lower")
BOUNDED = ("rsi_", "stochrsi_", "adx_", "bb_percent_b")
RETURN_DAYS = (1, 5, 20)
ZSCORE_DAYS = 60
ZSCORE_MIN_DAYS = 10


def _rolling_z(v: np.ndarray, window: int = ZSCORE_DAYS) -> np.ndarray:
    """Trailing z-score over the last `window` days (fewer at the start, 0 before ZSCORE_MIN_DAYS or on
    a flat window): causal, and unchanged by any rescaling of the column."""
    n = v.size
    c1 = np.concatenate([[0.0], np.cumsum(v)])
    c2 = np.concatenate([[0.0], np.cumsum(v * v)])
    t = np.arange(n)
    lo = np.maximum(0, t - window + 1)
    count = t - lo + 1
    mean = (c1[t + 1] - c1[lo]) / count
    var = np.maximum((c2[t + 1] - c2[lo]) / count - mean**2, 0.0)
    sd = np.sqrt(var)
    ok = (count >= ZSCORE_MIN_DAYS) & (sd > 1e-12 * np.maximum(1.0, np.abs(mean)))
    return np.where(ok, (v - mean) / np.where(ok, sd, 1.0), 0.0)


def _rule(name: str) -> str:
    if name.startswith(PRICE_LIKE):
        return "ratio"
    if name in ("atr_14", "macd_line"):
        return "over_close"
    return "bounded" if name.startswith(BOUNDED) else "zscore"


def stationary_names(names: list[str]) -> list[str]:
    """The names of `stationary_inputs`' columns for raw inputs `names`, in order."""
    labels = {
        "ratio": "{}/close-1",
        "over_close": "{}/close",
        "bounded": "{}",
        "zscore": f"z{ZSCORE_DAYS}({{}})",
    }
    return [f"log_return_{k}d" for k in RETURN_DAYS] + [
        labels[_rule(n)].format(n) for n in names if n != "close"
    ]


def stationary_inputs(x: Any, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """(days, k) stationary inputs from the raw (days, features) matrix, and their names (module doc)."""
    x = np.asarray(x, dtype=np.float64)
    if "close" not in names:
        raise ValueError(f"baselines need a 'close' input to build stationary inputs; got {names[:8]}...")
    close = x[:, names.index("close")]
    if np.any(close <= 0):
        raise ValueError("baselines need positive close prices (ratios and log returns of the close)")
    log_close = np.log(close)
    cols = []
    for k in RETURN_DAYS:
        r = np.zeros_like(close)
        r[k:] = log_close[k:] - log_close[:-k]
        cols.append(r)
    for j, name in enumerate(names):
        if name == "close":
            continue
        v, rule = x[:, j], _rule(name)
        cols.append(
            v / close - 1.0
            if rule == "ratio"
            else v / close
            if rule == "over_close"
            else v
            if rule == "bounded"
            else _rolling_z(v)
        )
    return np.stack(cols, axis=1), stationary_names(names)


@dataclass
class BaselineFit:
    """One reference predictor's scores per split and what was chosen on validation."""

    model: str
    scores: dict[str, np.ndarray]  # split name -> probabilities (or a raw score for atr_ratio)
    probabilities: bool = True
    chosen: dict[str, Any] = field(default_factory=dict)


def _val_loss(y: np.ndarray, p: np.ndarray) -> float:
    loss = logloss(y, p)
    return float("inf") if loss is None else loss


def fit_baselines(data: Any, seed: int = 0, threads: int | None = 1) -> list[BaselineFit]:
    """Fit the four baselines on `data.split.train`, choose on `.val`, score `.val` and `.test`.

    `data` is a `hpo_assets.data.dataset.PreparedData` (features x, labels y, split). `threads`
    caps the OpenMP/BLAS threads (1 by default: on a shared small machine more threads spin-wait).
    """
    with threadpool_limits(limits=threads):
        return _fit(data, seed)


def _fit(data: Any, seed: int) -> list[BaselineFit]:
    split = data.split
    parts = {"train": split.train, "val": split.val, "test": split.test}
    names = list(data.feature_names)
    raw = np.asarray(data.x, dtype=np.float64)
    inputs, input_names = stationary_inputs(raw, names)
    x = {k: inputs[np.asarray(v, dtype=np.int64)] for k, v in parts.items()}
    y = {k: np.asarray(data.y[v], dtype=np.float64) for k, v in parts.items()}
    fits = []

    rate = float(y["train"].mean())
    fits.append(
        BaselineFit(
            "majority",
            {k: np.full(len(y[k]), rate) for k in ("val", "test")},
            chosen={"train_positive_rate": rate},
        )
    )

    if "atr_14" not in names:
        raise ValueError("the atr_ratio baseline needs an 'atr_14' input (atr_14 / close)")
    atr = input_names.index("atr_14/close")
    fits.append(
        BaselineFit(
            "atr_ratio",
            {k: x[k][:, atr] for k in ("val", "test")},
            probabilities=False,
            chosen={"inputs": ["atr_14/close"]},
        )
    )

    best: tuple[float, Any, Any] | None = None
    for c in LOGISTIC_C:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(
            x["train"], y["train"]
        )
        loss = _val_loss(y["val"], model.predict_proba(x["val"])[:, 1])
        if best is None or loss < best[0]:
            best = (loss, model, c)
    assert best is not None
    fits.append(
        BaselineFit(
            "logistic",
            {k: best[1].predict_proba(x[k])[:, 1] if len(x[k]) else np.empty(0) for k in ("val", "test")},
            chosen={"C": best[2], "n_inputs": len(input_names)},
        )
    )

    best = None
    for lr, leaves in HGB_GRID:
        model = HistGradientBoostingClassifier(
            learning_rate=lr, max_leaf_nodes=leaves, max_iter=100, early_stopping=False, random_state=seed
        ).fit(x["train"], y["train"])
        loss = _val_loss(y["val"], model.predict_proba(x["val"])[:, 1])
        if best is None or loss < best[0]:
            best = (loss, model, (lr, leaves))
    assert best is not None
    fits.append(
        BaselineFit(
            "hgb",
            {k: best[1].predict_proba(x[k])[:, 1] if len(x[k]) else np.empty(0) for k in ("val", "test")},
            chosen={"learning_rate": best[2][0], "max_leaf_nodes": best[2][1], "n_inputs": len(input_names)},
        )
    )
    return fits


def baseline_rows(
    data: Any, n_resamples: int = 1000, seed: int = 0, fits: list[BaselineFit] | None = None
) -> list[dict[str, Any]]:
    """One row per baseline and split: AUC, log loss, Brier with block-bootstrap intervals.

    `fits`: baselines already fitted on `data` (`fit_baselines`), so a caller that also compares
    against their scores fits them once.
    """
    metrics = {"auc": auc, "log_loss": logloss, "brier": brier}
    rows = []
    for fit in fits if fits is not None else fit_baselines(data, seed):
        for split_name, key in SPLITS:
            idx = getattr(data.split, key)
            yk = np.asarray(data.y[idx], dtype=np.float64)
            if len(yk) == 0:
                continue
            score = fit.scores[key]
            if not fit.probabilities:  # a raw score: rank it for AUC (any monotone map keeps AUC)
                score = rankdata(score) / (len(score) + 1)
            ev = metric_intervals(yk, score, metrics, data.horizon, n_resamples, seed)
            row: dict[str, Any] = {"model": fit.model, "split": split_name}
            for name in metrics:
                iv = ev[name]
                usable = fit.probabilities or name == "auc"
                row[name] = iv["value"] if usable else None
                row[f"{name}_lo"] = iv["lo"] if usable else None
                row[f"{name}_hi"] = iv["hi"] if usable else None
            row.update(
                n=int(len(yk)),
                positives=int(np.sum(yk == 1)),
                chosen=fit.chosen,
                probabilities=fit.probabilities,
                block=ev["auc"]["block"],
            )
            rows.append(row)
    return rows


def baselines_document(
    data: Any, horizon_label: str, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The `baselines_<horizon>.json` document: rows plus the split they were measured on."""
    summary = data.split.summary()
    return {
        "horizon": horizon_label,
        "rows": baseline_rows(data, n_resamples, seed),
        "interval_noise": INTERVAL_NOISE,
        "split": {k: v for k, v in summary.items() if isinstance(v, str | int | float) or v is None},
        "data_start": str(data.dates[0]),
        "data_end": str(data.dates[-1]),
        "features": list(data.feature_names),
        "inputs": stationary_names(list(data.feature_names)),
        "inputs_rule": "stationary inputs: ratios to the close, log returns, atr_14/close, bounded oscillators "
        f"as they are, trailing {ZSCORE_DAYS}-day z-scores of the rest; never raw price levels",
    }
