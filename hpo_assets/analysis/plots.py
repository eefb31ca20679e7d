"""The report's figures as PNG bytes (matplotlib `Figure` objects rendered by Agg: no display, no pyplot
figure registry to leak into when a run draws hundreds of them)."""

from __future__ import annotations

import io

import matplotlib
import matplotlib.ticker
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from hpo_assets.analysis.columns import budget_size


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def importance_bars(table: pl.DataFrame, title: str) -> bytes:
    """Per study and evaluator: importance with bootstrap interval, the noise floor as a dashed line."""
    groups = list(table.group_by("study", "evaluator", maintain_order=True))
    panels = max(len(groups), 1)
    # Margins from the label lengths instead of constrained layout: a partition with many studies draws
    # many panels, and the layout solver was most of this figure's cost.
    label = 0.3 + 0.075 * max((len(p) for p in table["parameter"].to_list()), default=4)  # inches
    width, height = 4.2 * panels, 3.6
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, panels, squeeze=False)
    fig.subplots_adjust(
        left=label / width,
        right=1 - 0.15 / width,
        bottom=0.4 / height,
        top=1 - 0.75 / height,
        wspace=(label + 0.15) / (4.2 - label - 0.15),
    )
    for ax, ((study, kind), t) in zip(axes[0], groups, strict=False):
        t = t.sort("importance")
        y = np.arange(t.height)
        imp = t["importance"].to_numpy()
        err = np.vstack(
            [np.clip(imp - t["boot_lo"].to_numpy(), 0, None), np.clip(t["boot_hi"].to_numpy() - imp, 0, None)]
        )
        colors = ["tab:blue" if d else "lightgray" for d in t["distinguishable"].to_list()]
        ax.barh(y, imp, xerr=err, color=colors, capsize=3)
        floors = np.array([np.nan if f is None else f for f in t["noise_floor"].to_list()], dtype=float)
        if np.isfinite(floors).any():  # each parameter's own null 95th percentile (nulls grow with levels)
            ax.scatter(floors, y, marker="|", s=160, color="tab:red", label="own null, 95th pct", zorder=3)
            ax.legend(fontsize=7, loc="lower right")
        ax.set_yticks(y, t["parameter"].to_list(), fontsize=8)
        ax.set_title(f"{study}\n{kind}", fontsize=8)
    fig.suptitle(f"importance {title} (gray: not distinguishable from noise)", fontsize=9)
    return _png(fig)


def importance_heatmap(side: pl.DataFrame, evaluator: str) -> bytes:
    """Parameter x (budget, horizon) heat map of one evaluator; cells that clear the floor are starred."""
    t = side.filter(pl.col("evaluator") == evaluator)
    params = sorted(t["parameter"].unique().to_list())
    cols = sorted(t.select("budget", "horizon").unique().rows(), key=lambda bh: (bh[1], budget_size(bh[0])))
    grid = np.full((len(params), len(cols)), np.nan)
    star = np.zeros_like(grid, dtype=bool)
    for r in t.iter_rows(named=True):
        i, j = params.index(r["parameter"]), cols.index((r["budget"], r["horizon"]))
        grid[i, j] = r["importance"]
        star[i, j] = bool(r["distinguishable_in_any_study"])
    width, height = 1.1 * len(cols) + 2.5, 0.45 * len(params) + 1.5
    fig = Figure(
        figsize=(width, height)
    )  # margins from label lengths: no layout solver (see importance_bars)
    ax = fig.subplots()
    label = 0.25 + 0.075 * max((len(p) for p in params), default=4)
    fig.subplots_adjust(
        left=label / width, right=1 - 0.2 / width, bottom=0.55 / height, top=1 - 0.35 / height
    )
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(params)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.2g}{'*' if star[i, j] else ''}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w",
                )
    ax.set_xticks(range(len(cols)), [f"{b}\n{h}" for b, h in cols], fontsize=8)
    ax.set_yticks(range(len(params)), params, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8, fraction=0.6 / width, pad=0.15 / width)
    ax.set_title(f"{evaluator} importance (* distinguishable: adjusted p < 0.05)", fontsize=9)
    return _png(fig)


def scaling_plot(points: pl.DataFrame, baselines: pl.DataFrame) -> bytes:
    """One panel per horizon: the best result per budget against its exact parameter count (log x) with
    95% error bars, marker by evidence kind, and the test baselines as one labelled band (lowest to
    highest pooled test AUC) with the best one named."""
    pts = points.filter(pl.col("param_count").is_not_null() & pl.col("value").is_not_null())
    horizons = sorted(set(pts["horizon"].drop_nulls().to_list())) or ["-"]
    fig = Figure(figsize=(min(4.2 * len(horizons), 12.6), 3.8), layout="constrained")
    axes = fig.subplots(1, len(horizons), squeeze=False)[0]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, horizon in zip(axes, horizons, strict=True):
        sub = pts.filter(pl.col("horizon") == horizon)
        for k, ((tier,), g) in enumerate(sub.group_by("tier", maintain_order=True)):
            g = g.sort("param_count")
            x, v = g["param_count"].to_numpy().astype(float), g["value"].to_numpy().astype(float)
            lo = np.array([a if a is not None else np.nan for a in g["lo"].to_list()], dtype=float)
            hi = np.array([a if a is not None else np.nan for a in g["hi"].to_list()], dtype=float)
            err = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)])
            kinds = sorted(set(g["evidence"].to_list()))
            ax.errorbar(
                x,
                v,
                yerr=err,
                marker="o" if kinds == ["test"] else "s",
                capsize=4,
                color=colors[k % len(colors)],
                label=f"{tier or 'all'} ({', '.join(kinds)})",
            )
            for xi, vi, b in zip(x, v, g["budget"].to_list(), strict=True):
                ax.annotate(b, (xi, vi), textcoords="offset points", xytext=(5, 3), fontsize=8)
        base = baselines.filter(
            (pl.col("horizon") == horizon)
            & (pl.col("split") == "test")
            & pl.col("auc").is_not_null()
            & (pl.col("model") != "majority")
        )
        if base.height:
            lo_b, hi_b = float(base["auc"].to_numpy().min()), float(base["auc"].to_numpy().max())
            best = base.sort("auc", descending=True).row(0, named=True)
            ax.axhspan(lo_b, max(hi_b, lo_b + 1e-3), color="0.85", zorder=0, label="baselines (test) range")
            ax.axhline(hi_b, color="0.4", lw=1, ls="--", zorder=1)
            ax.annotate(
                f"best baseline: {best['model']} {hi_b:.3f}",
                (0.02, hi_b),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
        ax.axhline(0.5, color="0.7", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_label))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("exact parameter count")
        ax.set_title(f"{horizon}", fontsize=10)
        if sub.is_empty():
            ax.text(0.5, 0.5, "no budget with a known parameter count", ha="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("AUC of the best trial per budget")
    fig.suptitle(
        "Scaling: best result per budget with 95% intervals (circles: test folds, squares: "
        "validation maxima, selection-biased); grey band: baselines",
        fontsize=9,
    )
    return _png(fig)


def _count_label(x: float, _pos: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if x >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


def studies_side_by_side(df: pl.DataFrame, horizon: str) -> bytes:
    """Best-so-far against trial number and against compute-hours, one line per study of one horizon."""
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    by_trial, by_hours = fig.subplots(1, 2)
    sub = df.filter((pl.col("horizon") == horizon) & pl.col("objective").is_not_null())
    for (study,), g in sub.sort("trial_num").group_by("study", maintain_order=True):
        g = g.sort("trial_num")
        sign = 1.0 if g["direction"][0] == "maximize" else -1.0
        obj = sign * g["objective"].to_numpy().astype(float)
        best = sign * np.maximum.accumulate(obj)
        label = f"{g['budget'][0]} ({study})"
        by_trial.step(g["trial_num"].to_numpy(), best, where="post", label=label)
        secs = g["duration_sec"].fill_null(0.0).to_numpy().astype(float)
        by_hours.step(np.cumsum(secs) / 3600.0, best, where="post", label=label)
    by_trial.set_xlabel("trial number")
    by_hours.set_xlabel("compute-hours (cumulative, trials with an objective)")
    objective = sub["objective_name"][0] if sub.height else "objective"
    for ax in (by_trial, by_hours):
        ax.set_ylabel(f"best {objective} so far")
        ax.grid(alpha=0.3)
    if sub.height:
        by_trial.legend(fontsize=7)
    fig.suptitle(f"{horizon}: studies side by side (validation, the search's own view)", fontsize=10)
    return _png(fig)


def learning_curves(df: pl.DataFrame, horizon: str, top: int = 3) -> bytes:
    """Validation AUC per epoch of each study's top trials at one horizon (from the stored curves)."""
    sub = df.filter((pl.col("horizon") == horizon) & (pl.col("n_curve_epochs") > 0))
    studies = sub["study"].unique(maintain_order=True).to_list()
    fig = Figure(figsize=(min(3.6 * max(len(studies), 1), 12.6), 3.3), layout="constrained")
    axes = fig.subplots(1, max(len(studies), 1), squeeze=False)[0]
    for ax, study in zip(axes, studies, strict=False):
        g = sub.filter(pl.col("study") == study).sort("rank_in_study", nulls_last=True).head(top)
        for r in g.iter_rows(named=True):
            curve = [c for c in r["learning_curve"] or [] if c.get("val_auc") is not None]
            if curve:
                ax.plot(
                    [c["epoch"] for c in curve],
                    [c["val_auc"] for c in curve],
                    marker=".",
                    label=f"#{r['trial_num']} (rank {r['rank_in_study']})",
                )
        ax.set_title(f"{g['budget'][0] if g.height else ''} {study}", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("val AUC")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if not studies:
        axes[0].text(0.5, 0.5, "no stored learning curves", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"{horizon}: learning curves of each study's top {top} trials", fontsize=10)
    return _png(fig)


def waste_bars(waste: pl.DataFrame) -> bytes:
    """Wasted compute-hours per study, stacked by kind."""
    studies = waste["study"].unique(maintain_order=True).to_list()
    kinds = waste["kind"].unique(maintain_order=True).to_list()
    label = 0.25 + 0.1 * max((len(str(s)) for s in studies), default=4)  # tick labels at 10 pt
    legend = 0.55 + 0.06 * max((len(str(k)) for k in kinds), default=4)  # legend at 7 pt
    width, height = label + 4.2 + legend + 0.1, 0.4 * len(studies) + 1.6
    fig = Figure(
        figsize=(width, height)
    )  # margins from label lengths: no layout solver (see importance_bars)
    ax = fig.subplots()
    fig.subplots_adjust(
        left=label / width, right=1 - (legend + 0.1) / width, bottom=0.55 / height, top=1 - 0.35 / height
    )
    left = np.zeros(len(studies))
    for kind in kinds:
        t = waste.filter(pl.col("kind") == kind)
        vals = np.array([(t.filter(pl.col("study") == s)["trials"].sum()) for s in studies], dtype=float)
        ax.barh(studies, vals, left=left, label=kind)
        left += vals
    ax.set_xlabel("trials")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Trials that bought no new information, by kind", fontsize=9)
    return _png(fig)
