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
        floor = t["noise_floor"][0]
        if floor is not None:
            ax.axvline(floor, color="tab:red", ls="--", lw=1, label="noise floor")
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
    ax.set_title(f"{evaluator} importance (* clears the noise floor)", fontsize=9)
    return _png(fig)


def scaling_plot(points: pl.DataFrame, baselines: pl.DataFrame) -> bytes:
    """Objective vs exact parameter count (log x), one line per horizon/tier, 95% error bars, baselines dashed."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    pts = points.filter(pl.col("param_count").is_not_null() & pl.col("value").is_not_null())
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ((horizon, tier), g) in enumerate(pts.group_by("horizon", "tier", maintain_order=True)):
        g = g.sort("param_count")
        x, v = g["param_count"].to_numpy().astype(float), g["value"].to_numpy().astype(float)
        lo = np.array([a if a is not None else np.nan for a in g["lo"].to_list()], dtype=float)
        hi = np.array([a if a is not None else np.nan for a in g["hi"].to_list()], dtype=float)
        err = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)])
        c = colors[k % len(colors)]
        ax.errorbar(
            x,
            v,
            yerr=err,
            marker="o",
            capsize=4,
            color=c,
            label=f"{horizon} {tier or ''} ({g['evidence'][0]})",
        )
        for xi, vi, b in zip(x, v, g["budget"].to_list(), strict=True):
            ax.annotate(b, (xi, vi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for r in baselines.filter(pl.col("horizon") == horizon).iter_rows(named=True):
            if r["auc"] is not None:
                ax.axhline(r["auc"], color=c, ls=":", lw=1)
                ax.annotate(f"{r['model']} ({r['split']})", (ax.get_xlim()[0], r["auc"]), fontsize=6, color=c)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # a narrow range crowds minor labels
    ax.set_xlabel("exact parameter count")
    ax.set_ylabel("AUC (best per budget)")
    if pts.is_empty():
        ax.text(0.5, 0.5, "no budget with a known parameter count", ha="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.set_title("Scaling: best result per budget with 95% intervals; dotted = baselines", fontsize=9)
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
