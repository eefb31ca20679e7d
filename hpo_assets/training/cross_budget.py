"""Cross-budget validation: does budget A's best training recipe work for budget B's best architecture?

Cell (A, B) trains B's best architecture (B's protocol: epochs, patience, parametrization) with A's
best training parameters (lr, dropout, weight decay, warm-up, batch size), k seeds, and scores the
test split. The diagonal (B, B) is B's own best trial retrained under the same protocol. The transfer
gap of a cell is its mean test AUC minus the diagonal's in the same column; its interval comes from a
paired block bootstrap (the same resampled test days for both cells, each cell's seed effect carried with
them: `stats.bootstrap` via `baselines.comparison`), so shared day-to-day noise cancels and seed luck
counts. A gap whose interval holds 0 is "inconclusive". The matrix is scored on the studies' whole test
split (one window), not on walk-forward folds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo_assets.baselines.comparison import auc_block, difference, fold_aucs
from hpo_assets.calibration.metrics import auc
from hpo_assets.stats.bootstrap import Fold
from hpo_assets.training.metrics import sigmoid
from hpo_assets.training.retrain import TrialRecipe, retrain, seeds_for

if TYPE_CHECKING:
    from hpo_assets.data.dataset import PreparedData

CELL_NOISE = (
    "mean test AUC over the cell's seeds (uncalibrated); 95% interval: block bootstrap of the test days with "
    "the cell's seed effect carried alongside them; gaps use the same resampled days for both cells (paired), "
    "each cell's seed effect carried: the noise of the evaluated days and of the training seed"
)


@dataclass
class Cell:
    params_from: str
    arch_from: str
    seeds: list[int]
    param_counts: list[int]
    test_logits: list[np.ndarray]  # one array per usable seed
    seed_aucs: list[float | None]
    failures: list[str]


def cross_budget_matrix(
    data: PreparedData,
    recipes: dict[str, TrialRecipe],
    k: int = 3,
    device: str | None = None,
    num_threads: int | None = None,
    n_resamples: int = 1000,
    log: Any = None,
) -> dict[str, Any]:
    """Every (A, B) cell for the budgets in `recipes` (budget label -> its best trial's recipe)."""
    if len(recipes) < 1:
        raise ValueError("cross-budget validation needs at least one budget with a finished study")
    if data.split.test.size == 0:
        raise ValueError("the split has no test samples (test_start is unset or after the data's end)")
    y = data.y[data.split.test].astype(np.float64)
    budgets = list(recipes)
    cells: dict[tuple[str, str], Cell] = {}
    for b in budgets:
        for a in budgets:
            recipe = recipes[b].with_train(recipes[a].train)
            runs = retrain(
                data, recipe, seeds_for(recipes[b], k), device=device, num_threads=num_threads, log=log
            )
            usable = [r for r in runs if r.usable]
            cells[(a, b)] = Cell(
                params_from=a,
                arch_from=b,
                seeds=[r.seed for r in runs],
                param_counts=[r.param_count for r in runs],
                test_logits=[r.test_logits for r in usable],
                seed_aucs=[auc(y, sigmoid(r.test_logits)) if r.usable else None for r in runs],
                failures=[f"seed {r.seed}: {r.reason or 'no usable epoch'}" for r in runs if not r.usable],
            )
    n = y.size
    name = {key: f"{key[0]} params, {key[1]} arch" for key in cells}
    scores = {name[key]: np.stack(c.test_logits) for key, c in cells.items() if c.test_logits}
    aucs = fold_aucs([Fold(y, scores)], data.horizon, n_resamples) if scores else None
    rows = []
    for (a, b), cell in cells.items():
        mine, diag = name[(a, b)], name[(b, b)]
        iv = (
            auc_block(*aucs.pooled[mine], blocks=aucs.blocks()) if aucs is not None and mine in scores else {}
        )
        g = (
            difference(aucs.pooled[mine], aucs.pooled[diag])
            if aucs is not None and a != b and mine in scores and diag in scores
            else None
        )
        verdict = None
        if g is not None and g["auc_diff_lo"] is not None:
            lo, hi = g["auc_diff_lo"], g["auc_diff_hi"]
            verdict = "inconclusive" if lo <= 0 <= hi else ("better" if lo > 0 else "worse")
        rows.append(
            {
                "params_from": a,
                "arch_from": b,
                "arch": recipes[b].arch.label,
                "param_count": recipes[b].param_count,
                "model_param_counts": cell.param_counts,
                "train": dict(recipes[a].train),
                "seeds": cell.seeds,
                "seed_aucs": cell.seed_aucs,
                "auc_mean": iv.get("auc"),
                "auc_lo": iv.get("auc_lo"),
                "auc_hi": iv.get("auc_hi"),
                "gap": None if g is None else g["auc_diff"],
                "gap_lo": None if g is None else g["auc_diff_lo"],
                "gap_hi": None if g is None else g["auc_diff_hi"],
                "gap_se": None if g is None else g["auc_diff_se"],
                "gap_verdict": verdict,
                "failures": cell.failures,
            }
        )
    return {
        "budgets": budgets,
        "k_seeds": k,
        "cells": rows,
        "interval_noise": CELL_NOISE + ("" if aucs is None else f" ({aucs.noise()})"),
        "n_test": int(n),
        "test_positives": int(np.sum(y == 1)),
        "trials": {b: r.to_dict() for b, r in recipes.items()},
    }


def _cell(matrix: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    return next(c for c in matrix["cells"] if c["params_from"] == a and c["arch_from"] == b)


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def matrix_markdown(matrix: dict[str, Any], horizon: str) -> str:
    """Rows: whose training parameters; columns: whose architecture. Then the gaps per column."""
    budgets = matrix["budgets"]
    lines = [
        f"# Cross-budget validation, {horizon}",
        "",
        f"Mean test AUC over {matrix['k_seeds']} seed(s) [95% interval]; row = budget whose best training "
        "parameters are used, column = budget whose best architecture is trained. "
        f"{matrix['n_test']} test samples ({matrix['test_positives']} positive).",
        "",
        "| params \\ arch | " + " | ".join(budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for a in budgets:
        cells = [_cell(matrix, a, b) for b in budgets]
        lines.append(
            f"| {a} | "
            + " | ".join(f"{_fmt(c['auc_mean'])} [{_fmt(c['auc_lo'])}, {_fmt(c['auc_hi'])}]" for c in cells)
            + " |"
        )
    lines += [
        "",
        "Transfer gap (cell minus the column's diagonal), paired bootstrap:",
        "",
        "| arch | params from | gap [95%] | verdict |",
        "|---|---|---|---|",
    ]
    for b in budgets:
        for a in budgets:
            if a != b:
                c = _cell(matrix, a, b)
                lines.append(
                    f"| {b} | {a} | {_fmt(c['gap'])} [{_fmt(c['gap_lo'])}, {_fmt(c['gap_hi'])}] | "
                    f"{c['gap_verdict'] or '–'} |"
                )
    lines += ["", f"Intervals: {matrix['interval_noise']}"]
    return "\n".join(lines) + "\n"


def matrix_png(matrix: dict[str, Any], horizon: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = matrix["budgets"]
    grid = np.array(
        [[(_cell(matrix, a, b)["auc_mean"] or np.nan) for b in budgets] for a in budgets], dtype=float
    )
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(budgets), 1.2 + 1.1 * len(budgets)))
    im = ax.imshow(grid, cmap="viridis")
    for i, a in enumerate(budgets):
        for j, b in enumerate(budgets):
            c = _cell(matrix, a, b)
            ax.text(
                j,
                i,
                f"{_fmt(c['auc_mean'])}\n[{_fmt(c['auc_lo'])}, {_fmt(c['auc_hi'])}]",
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
    ax.set_xticks(range(len(budgets)), budgets)
    ax.set_yticks(range(len(budgets)), budgets)
    ax.set_xlabel("architecture of budget")
    ax.set_ylabel("training parameters of budget")
    ax.set_title(f"cross-budget test AUC, {horizon}")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
