"""What a study looks like at a glance: the optimisation-history plot and the top-trials table."""

from __future__ import annotations

import io
import math

import optuna
import polars as pl
from optuna.trial import TrialState


def history_png(study: optuna.Study, objective: str) -> bytes:
    """Objective of each COMPLETE trial by number, the best-so-far line, pruned and failed trials marked."""
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in any thread

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    fig = Figure(figsize=(7, 3.6), dpi=100)
    ax = fig.subplots()
    if done:
        xs = [t.number for t in done]
        ys = [float(t.value) for t in done]  # type: ignore[arg-type]
        forced = [bool(t.user_attrs.get("forced_extreme")) for t in done]
        if not all(forced):
            ax.scatter(
                [x for x, f in zip(xs, forced, strict=True) if not f],
                [y for y, f in zip(ys, forced, strict=True) if not f],
                s=18,
                color="tab:blue",
                label="sampled (TPE)",
            )
        if any(forced):
            ax.scatter(
                [x for x, f in zip(xs, forced, strict=True) if f],
                [y for y, f in zip(ys, forced, strict=True) if f],
                s=24,
                marker="s",
                color="tab:orange",
                label="forced extreme",
            )
        best, running = [], -math.inf if maximize else math.inf
        for y in ys:
            running = max(running, y) if maximize else min(running, y)
            best.append(running)
        last_number = max(t.number for t in trials)  # carry the best to the last trial, whatever its state
        ax.step([*xs, last_number], [*best, best[-1]], where="post", color="tab:red", label="best so far")
    # Pruned trials at the last value they reported (where the pruner stopped them).
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter(
            [t.number for t in pruned],
            last,
            marker="x",
            s=22,
            color="tab:gray",
            label="pruned (last epoch)",
        )
    # Failed trials have no value: a vertical line each (dashed red when diverged).
    for i, t in enumerate(t for t in trials if t.state == TrialState.FAIL):
        diverged = bool(t.user_attrs.get("diverged"))
        ax.axvline(
            t.number,
            color="tab:red" if diverged else "tab:purple",
            alpha=0.35,
            linestyle="--" if diverged else ":",
            label=None if i else "failed / diverged",
        )
    ax.set_xlabel("trial number")
    ax.set_ylabel(objective)
    ax.set_title(f"{study.study_name}: optimisation history")
    if not done:
        ax.text(0.5, 0.5, "no completed trial yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _arch_label(t: optuna.trial.FrozenTrial) -> str | None:
    """d64-L4-H8-F256 from the trial's recorded dimensions (flat-label studies: their `arch` param)."""
    ua = t.user_attrs
    if ua.get("d_model") is None:
        return t.params.get("arch")
    return f"d{ua['d_model']}-L{ua['n_layers']}-H{ua['n_heads']}-F{ua['d_ff']}"


def top_trials(study: optuna.Study, k: int = 5) -> pl.DataFrame:
    """The k best COMPLETE trials, best first: rank, number, value, architecture and training parameters."""
    done = [
        t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.value is not None
    ]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    done.sort(key=lambda t: (-(t.value or 0.0) if maximize else (t.value or 0.0), t.number))
    rows = [
        {
            "rank": rank,
            "trial": t.number,
            "value": t.value,
            "arch": _arch_label(t),
            "param_count": t.user_attrs.get("param_count"),
            "lr": t.params.get("lr"),
            "dropout": t.params.get("dropout"),
            "weight_decay": t.params.get("weight_decay"),
            "warmup_frac": t.params.get("warmup_frac"),
            "batch_size": t.params.get("batch_size"),
            "normalization": t.params.get("normalization"),
            "metrics_epoch": t.user_attrs.get("metrics_epoch", t.user_attrs.get("best_epoch")),
            "forced": t.user_attrs.get("extreme_type") or "",
        }
        for rank, t in enumerate(done[:k], start=1)
    ]
    schema = {
        "rank": pl.Int64,
        "trial": pl.Int64,
        "value": pl.Float64,
        "arch": pl.String,
        "param_count": pl.Int64,
        "lr": pl.Float64,
        "dropout": pl.Float64,
        "weight_decay": pl.Float64,
        "warmup_frac": pl.Float64,
        "batch_size": pl.Int64,
        "normalization": pl.String,
        "metrics_epoch": pl.Int64,
        "forced": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)
