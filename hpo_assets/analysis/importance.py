"""Which parameters matter, per study: Optuna's fANOVA and PED-ANOVA side by side on COMPLETE trials, with
bootstrap stability and a noise floor from the same evaluator on shuffled objectives.

Parameters enter as their ordinal position among the values the study tried (the spaces are grids, so
log-spaced choices such as lr are evenly spaced), architecture split into width, depth, heads and ff width.
Exact repeats are dropped (a deterministic re-run adds no information but would weigh its region twice).
A parameter is "distinguishable from noise" when the lower end of its bootstrap interval clears the noise
floor (95th percentile of the importances the evaluator gives on shuffled objectives, pooled over parameters).
fANOVA grows faster than linearly in trials, so it sees a random subsample of large studies (said in the
table); PED-ANOVA sees every trial. Both are Optuna's evaluators' numbers computed on arrays (fanova.py,
ped_anova.py; tests pin them to Optuna's to 1e-9): one resample costs about 25 ms and 1 ms instead of
0.1 s and 6 ms, which is what lets every study carry its bootstrap interval and noise floor at scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from hpo_assets.analysis.columns import DISPLAY, param_columns, with_architecture
from hpo_assets.analysis.fanova import fanova_importances
from hpo_assets.analysis.ped_anova import ped_anova_importances
from hpo_assets.analysis.rendering import draw
from hpo_assets.analysis.section import Section

EVALUATORS = ["fanova", "ped_anova"]


@dataclass(frozen=True)
class ImportanceSettings:
    fanova_max_trials: int = 100  # subsample above this (fANOVA is super-linear in trials)
    fanova_trees: int = 16  # Optuna's default is 64 trees of depth 64: about 8x slower here
    fanova_depth: int = 8
    fanova_bootstrap: int = 4
    fanova_shuffles: int = 2
    ped_bootstrap: int = 30
    ped_shuffles: int = 10
    ped_max_trials: int = 2000
    min_trials: int = 10
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _ordinal(values: list) -> tuple[list[int | None], list]:
    levels = sorted({v for v in values if v is not None}, key=lambda v: (isinstance(v, str), v))
    pos = {v: i for i, v in enumerate(levels)}
    return [pos.get(v) if v is not None else None for v in values], levels


def prepare(study: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, list]]:
    """COMPLETE trials (exact repeats dropped) as a trials x parameters matrix of ordinal positions over the
    varying parameters, their objectives, the parameter names and each parameter's levels."""
    df = with_architecture(study).filter((pl.col("state") == "COMPLETE") & pl.col("objective").is_not_null())
    params = param_columns(df)
    df = df.unique(subset=params, keep="first", maintain_order=True)
    names, columns, levels = [], [], {}
    for p in params:
        pos, lev = _ordinal(df[p].to_list())
        if len(lev) > 1 and all(v is not None for v in pos):
            name = DISPLAY.get(p, p)
            names.append(name)
            columns.append(pos)
            levels[name] = lev
    y = df["objective"].to_numpy().astype(float)
    x = np.array(columns, dtype=np.int64).T.reshape(len(y), len(names))
    return x, y, names, levels


def _evaluate(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    direction: str,
    names: list[str],
    levels: dict[str, list],
    s: ImportanceSettings,
    seed: int,
) -> dict[str, float]:
    """One evaluator on the rows of `x` (repeats allowed) with objectives `y`: Optuna's fANOVA and PED-ANOVA
    numbers, computed on arrays (fanova.py, ped_anova.py; tests pin them to Optuna's evaluators)."""
    if kind == "fanova":
        order = sorted(range(len(names)), key=lambda j: names[j])  # Optuna orders columns by name
        try:
            values = fanova_importances(
                x[:, order],
                y,
                [len(levels[names[j]]) for j in order],
                n_trees=s.fanova_trees,
                max_depth=s.fanova_depth,
                seed=seed,
            )
        except RuntimeError:  # a resample whose objectives are all equal: nothing to attribute
            values = np.zeros(len(names))
        return {names[j]: float(v) for j, v in zip(order, values, strict=True)}
    sign = -1.0 if direction == "maximize" else 1.0  # PED-ANOVA ranks low targets as good
    values = ped_anova_importances(x, sign * y, [len(levels[n]) for n in names])
    return {n: float(v) for n, v in zip(names, values, strict=True)}


def study_importance(
    study: pl.DataFrame, settings: ImportanceSettings | None = None
) -> tuple[list[dict], list[str]]:
    """Rows (one per evaluator x parameter) for one study, and notes on what was done to it."""
    s = settings or ImportanceSettings()
    first = study.row(0, named=True)
    direction = first["direction"] or "maximize"
    x, y, names, levels = prepare(study)
    n_trials = len(y)
    notes: list[str] = []
    label = first["study"]
    if n_trials < s.min_trials or not names:
        notes.append(
            f"{label}: {n_trials} distinct COMPLETE trials and {len(names)} varying parameters: too few for importance (needs {s.min_trials})"
        )
        return [], notes
    if len(np.unique(y[np.isfinite(y)])) < 2:  # fANOVA has no variance to split (Optuna raises)
        notes.append(
            f"{label}: every COMPLETE trial has the same objective: no parameter importance to measure"
        )
        return [], notes
    rng = np.random.default_rng(s.seed)
    rows = []
    for kind in EVALUATORS:
        cap = s.fanova_max_trials if kind == "fanova" else s.ped_max_trials
        m = min(n_trials, cap)
        n_boot = s.fanova_bootstrap if kind == "fanova" else s.ped_bootstrap
        n_shuf = s.fanova_shuffles if kind == "fanova" else s.ped_shuffles
        base = rng.choice(n_trials, size=m, replace=False) if m < n_trials else np.arange(n_trials)
        if m < n_trials:
            notes.append(
                f"{label}: {kind} on a random subsample of {m} of {n_trials} trials (bootstrap resamples {m} of all {n_trials})"
            )
        ctx = (direction, names, levels, s)
        point = _evaluate(kind, x[base], y[base], *ctx, s.seed)
        boot = {n: [] for n in names}
        for b in range(n_boot):
            idx = rng.integers(0, n_trials, size=m)
            for n, v in _evaluate(kind, x[idx], y[idx], *ctx, s.seed + 1 + b).items():
                boot[n].append(v)
        floor_vals = []
        for k in range(n_shuf):
            y_shuf = y.copy()
            y_shuf[base] = rng.permutation(y[base])
            floor_vals += list(_evaluate(kind, x[base], y_shuf[base], *ctx, s.seed + 1000 + k).values())
        floor = float(np.percentile(floor_vals, 95)) if floor_vals else None
        for n in names:
            vals = np.asarray(boot[n]) if boot[n] else np.asarray([point.get(n, 0.0)])
            lo, hi = np.percentile(vals, [2.5, 97.5])
            clears = floor is not None and float(lo) > floor
            rows.append(
                {
                    "study": label, "budget": first["budget"], "horizon": first["horizon"], "tier": first["tier"],
                    "evaluator": kind, "parameter": n, "importance": point.get(n, 0.0),
                    "boot_mean": float(vals.mean()), "boot_lo": float(lo), "boot_hi": float(hi),
                    "noise_floor": floor, "distinguishable": clears,
                    "verdict": "distinguishable from noise" if clears else "not distinguishable from noise",
                    "n_trials": n_trials, "n_used": m, "n_bootstrap": n_boot, "n_shuffles": n_shuf,
                }
            )  # fmt: skip
    ranks = {}
    for kind in EVALUATORS:
        order = sorted((r for r in rows if r["evaluator"] == kind), key=lambda r: -r["importance"])
        for i, r in enumerate(order, 1):
            ranks[(kind, r["parameter"])] = i
    for r in rows:
        r["rank"] = ranks[(r["evaluator"], r["parameter"])]
    return rows, notes


ROW_SCHEMA = {
    "study": pl.String, "budget": pl.String, "horizon": pl.String, "tier": pl.String, "evaluator": pl.String,
    "parameter": pl.String, "importance": pl.Float64, "boot_mean": pl.Float64, "boot_lo": pl.Float64,
    "boot_hi": pl.Float64, "noise_floor": pl.Float64, "distinguishable": pl.Boolean, "verdict": pl.String,
    "n_trials": pl.Int64, "n_used": pl.Int64, "n_bootstrap": pl.Int64, "n_shuffles": pl.Int64, "rank": pl.Int64,
}  # fmt: skip


def importance(
    df: pl.DataFrame, budget: str, horizon: str, settings: ImportanceSettings | None = None, plot: bool = True
) -> Section:
    """The importance_report section of one budget x horizon partition: every study of that budget and horizon."""
    s = settings or ImportanceSettings()
    name = f"importance_{budget}_{horizon}"
    section = Section(name, f"Parameter importance, {budget} {horizon}")
    part = df.filter((pl.col("budget") == budget) & (pl.col("horizon") == horizon))
    rows, notes = [], []
    for _, study in part.group_by(["study"], maintain_order=True):
        r, n = study_importance(study, s)
        rows += r
        notes += n
    table = pl.DataFrame(rows, schema=ROW_SCHEMA)
    section.tables = {"importances": table}
    section.notes = notes + [
        "fANOVA (Optuna FanovaImportanceEvaluator, normalized variance share) and PED-ANOVA "
        "(PedAnovaImportanceEvaluator, unnormalized Pearson divergence of the top 10%) are on different scales; "
        "compare each with its own noise floor.",
        "Interval: 2.5-97.5 percentiles over bootstrap resamples of trials; noise floor: 95th percentile of "
        "importances on shuffled objectives.",
    ]
    section.data = {
        "budget": budget,
        "horizon": horizon,
        "settings": s.to_dict(),
        "n_studies": part["study"].n_unique(),
    }
    if table.is_empty():
        section.headline = [
            f"No study of budget {budget} and horizon {horizon} has enough COMPLETE trials for importance."
        ]
        return section
    for (study,), t in table.group_by(["study"], maintain_order=True):
        for kind in EVALUATORS:
            top = t.filter(pl.col("evaluator") == kind).sort("rank")
            clear = top.filter(pl.col("distinguishable"))["parameter"].to_list()
            lead = top.row(0, named=True)
            section.headline.append(
                f"{study} ({kind}): {lead['parameter']} ranks first ({lead['importance']:.3g}, interval "
                f"{lead['boot_lo']:.3g}-{lead['boot_hi']:.3g}, noise floor {lead['noise_floor']:.3g}); "
                + (
                    f"distinguishable from noise: {', '.join(clear)}."
                    if clear
                    else "no parameter is distinguishable from noise."
                )
            )
    if plot:
        section.plots = {"bars": draw("importance_bars", table, f"{budget} {horizon}")}
    return section


def summary(partitions: list[pl.DataFrame]) -> Section:
    """importance_summary: every partition's importances side by side (parameter x budget x horizon)."""
    section = Section("importance_summary", "Parameter importance across budgets and horizons")
    frames = [p for p in partitions if p.height]
    table = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=ROW_SCHEMA)
    if table.is_empty():
        section.headline = ["No partition has importances yet."]
        section.tables = {"importances": table}
        return section
    side = (
        table.group_by("parameter", "budget", "horizon", "evaluator")
        .agg(
            pl.col("importance").mean().alias("importance"),
            pl.col("boot_lo").mean().alias("boot_lo"),
            pl.col("boot_hi").mean().alias("boot_hi"),
            pl.col("noise_floor").mean().alias("noise_floor"),
            pl.col("distinguishable").any().alias("distinguishable_in_any_study"),
            pl.col("study").n_unique().alias("n_studies"),
        )
        .sort("evaluator", "parameter", "budget", "horizon")
    )
    section.tables = {"importances": side, "per_study": table}
    for kind in EVALUATORS:
        clear = side.filter((pl.col("evaluator") == kind) & pl.col("distinguishable_in_any_study"))
        cells = clear.sort("importance", descending=True).head(5)
        section.headline.append(
            f"{kind}: "
            + (
                "; ".join(
                    f"{r['parameter']} at {r['budget']} {r['horizon']} ({r['importance']:.3g})"
                    for r in cells.iter_rows(named=True)
                )
                + " clear the noise floor"
                if cells.height
                else "no parameter clears the noise floor in any partition"
            )
            + "."
        )
    section.plots = {
        f"heatmap_{k}": draw("importance_heatmap", side, k)
        for k in EVALUATORS
        if side.filter(pl.col("evaluator") == k).height
    }
    section.notes = [
        "Where several studies share a partition, their importances are averaged in the heat map; per_study has each."
    ]
    return section
