"""Which parameters matter, per study: Optuna's fANOVA and PED-ANOVA side by side on COMPLETE trials, each
with a bootstrap interval and a permutation test per parameter.

Parameters enter as their ordinal position among the values the study tried (the spaces are grids, so
log-spaced choices such as lr are evenly spaced), architecture split into width, depth, heads and ff width.
Exact repeats are dropped (a deterministic re-run adds no information but would weigh its region twice).

Why a test per parameter: the importance a parameter gets on pure noise grows with its number of levels
(fANOVA about 0.12 at 2 levels, 0.30 at 7), so one pooled floor flags many-level parameters and misses
two-level ones. The null is the evaluator itself on the objective shuffled against the trials (the same
forest seed as the point, so observed and shuffled values are exchangeable under "no parameter matters"),
and each parameter is compared with its own null. The family-wise error over a study's parameters is
controlled by the Westfall-Young step-down maxT (Holm's step-down, with the permutation joint null in
place of Bonferroni bounds) on importances standardized by their own null: plain Holm on per-parameter
permutation p-values cannot fire with 100 shuffles and 9 parameters (smallest Holm p is 9/101 > 0.05).
A parameter is "distinguishable from noise" only when its adjusted p < alpha (0.05).
`hpo_assets/simulation/importance.py` measures the false "distinguishable" rate on null studies and the
detection rate of a planted lr effect at this project's sizes.

The interval is the 2.5-97.5 percentile over bootstrap resamples of trials: it describes how stable the
number is, not whether it is noise (resampled rows repeat, which inflates a noise parameter's importance,
so the point can fall outside its own interval; the section counts how often).
fANOVA grows faster than linearly in trials, so it sees a random subsample of large studies (said in the
table); PED-ANOVA sees every trial. Both are Optuna's evaluators' numbers computed on arrays (fanova.py,
ped_anova.py; tests pin them to Optuna's to 1e-9), which is what makes hundreds of resamples affordable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import polars as pl

from hpo_assets.analysis.columns import DISPLAY, param_columns, with_architecture
from hpo_assets.analysis.fanova import fanova_importances
from hpo_assets.analysis.ped_anova import TARGET_QUANTILE, ped_anova_importances
from hpo_assets.analysis.rendering import draw
from hpo_assets.analysis.section import Section

EVALUATORS = ["fanova", "ped_anova"]
TEST = (
    "Westfall-Young step-down maxT over the study's parameters (importances standardized by their own null)"
)


@dataclass(frozen=True)
class ImportanceSettings:
    fanova_max_trials: int = 100  # subsample above this (fANOVA is super-linear in trials)
    fanova_trees: int = 16  # Optuna's default is 64 trees of depth 64: about 8x slower here
    fanova_depth: int = 8
    fanova_bootstrap: int = 200  # resamples of trials for the percentile interval
    fanova_shuffles: int = 100  # shuffled objectives: each parameter's permutation null
    ped_bootstrap: int = 200
    ped_shuffles: int = 100
    ped_max_trials: int = 2000
    min_trials: int = 10
    alpha: float = 0.05  # family-wise error rate over one study's parameters
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            v, counts = getattr(self, f.name), f.name.endswith(("bootstrap", "shuffles"))
            if f.name != "seed" and (v < 0 if counts else v <= 0):
                raise ValueError(
                    f"ImportanceSettings.{f.name} must be {'>= 0' if counts else '> 0'}, got {v}"
                )
        if not 0 < self.alpha < 1:
            raise ValueError(f"ImportanceSettings.alpha must be in (0, 1), got {self.alpha}")

    def to_dict(self) -> dict:
        return asdict(self)

    def counts(self, kind: str) -> tuple[int, int]:
        """(bootstrap resamples, shuffles) of one evaluator."""
        if kind == "fanova":
            return self.fanova_bootstrap, self.fanova_shuffles
        return self.ped_bootstrap, self.ped_shuffles

    def reduced(self) -> bool:
        """Fewer resamples or shuffles than the defaults: a first look, said in the section's output."""
        d = ImportanceSettings()
        return any(self.counts(k)[i] < d.counts(k)[i] for k in EVALUATORS for i in (0, 1))


def method_label(kind: str, s: ImportanceSettings) -> str:
    """What the numbers are: evaluator, encoding, forest/quantile, as the tables and headline print them
    (Optuna's defaults on the parameters as sampled rank them differently)."""
    if kind == "fanova":
        return (
            f"fANOVA, ordinal positions, {s.fanova_trees} trees, depth {s.fanova_depth}, "
            f"at most {s.fanova_max_trials} trials"
        )
    return f"PED-ANOVA, ordinal positions, top {TARGET_QUANTILE:.0%} vs all trials, unnormalized"


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


def evaluate(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    direction: str,
    names: list[str],
    n_levels: list[int],
    s: ImportanceSettings,
    seed: int,
) -> np.ndarray:
    """One evaluator's importances (in `names` order) on the rows of `x` (repeats allowed) with objectives
    `y`: Optuna's fANOVA and PED-ANOVA numbers on arrays (fanova.py, ped_anova.py)."""
    if kind == "fanova":
        order = sorted(range(len(names)), key=lambda j: names[j])  # Optuna orders columns by name
        out = np.zeros(len(names))
        try:
            out[order] = fanova_importances(
                x[:, order],
                y,
                [n_levels[j] for j in order],
                n_trees=s.fanova_trees,
                max_depth=s.fanova_depth,
                seed=seed,
            )
        except RuntimeError:  # a resample whose objectives are all equal: nothing to attribute
            pass
        return out
    sign = -1.0 if direction == "maximize" else 1.0  # PED-ANOVA ranks low targets as good
    return ped_anova_importances(x, sign * y, n_levels)


def maxt_stepdown(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw, family-wise adjusted) permutation p-values of each column of `observed` (m) against `null`
    (K shuffles x m). Raw: against the column's own null. Adjusted: Westfall-Young step-down maxT on the
    values standardized by the mean and SD of their own null (observed included, so the statistic is a
    symmetric function of the K + 1 exchangeable values and the test is exact under the complete null)."""
    k = null.shape[0]
    raw = (1 + (null >= observed[None, :] - 1e-12).sum(axis=0)) / (k + 1)
    both = np.vstack([observed[None, :], null])
    mu, sd = both.mean(axis=0), both.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z_obs, z_null = (observed - mu) / sd, (null - mu) / sd
    order = np.argsort(-z_obs, kind="stable")
    # successive maxima over the parameters not yet rejected: column i = max over order[i:]
    tail_max = np.maximum.accumulate(z_null[:, order[::-1]], axis=1)[:, ::-1]
    p = (1 + (tail_max >= z_obs[order][None, :] - 1e-12).sum(axis=0)) / (k + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(p)
    return raw, np.maximum(adjusted, raw)


def array_importance(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    direction: str,
    names: list[str],
    n_levels: list[int],
    s: ImportanceSettings,
    rng: np.random.Generator,
) -> dict[str, np.ndarray | int]:
    """Point, bootstrap interval, own-null 95th percentile, raw and adjusted p of each parameter for one
    evaluator on one study's arrays (what the report and the simulations share)."""
    n = len(y)
    cap = s.fanova_max_trials if kind == "fanova" else s.ped_max_trials
    m = min(n, cap)
    n_boot, n_shuf = s.counts(kind)
    base = rng.choice(n, size=m, replace=False) if m < n else np.arange(n)
    ctx = (direction, names, n_levels, s)
    xb, yb = x[base], y[base]
    point = evaluate(kind, xb, yb, *ctx, s.seed)
    null = np.array([evaluate(kind, xb, rng.permutation(yb), *ctx, s.seed) for _ in range(n_shuf)])
    null = null.reshape(n_shuf, len(names))
    boot = np.array(
        [
            evaluate(kind, x[idx], y[idx], *ctx, s.seed + 1 + b)
            for b, idx in enumerate(rng.integers(0, n, size=(n_boot, m)))
        ]
    ).reshape(n_boot, len(names))
    if n_shuf:
        raw, adjusted = maxt_stepdown(point, null)
        floor = np.percentile(null, 95, axis=0)
    else:
        raw = adjusted = floor = np.full(len(names), np.nan)
    if n_boot:
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        mean = boot.mean(axis=0)
    else:
        lo = hi = mean = np.full(len(names), np.nan)
    return {
        "point": point,
        "boot_lo": lo,
        "boot_hi": hi,
        "boot_mean": mean,
        "noise_floor": floor,
        "p_value": raw,
        "p_adjusted": adjusted,
        "n_used": m,
    }


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


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
    n_levels = [len(levels[n]) for n in names]
    rows = []
    for kind in EVALUATORS:
        n_boot, n_shuf = s.counts(kind)
        r = array_importance(kind, x, y, direction, names, n_levels, s, rng)
        m = int(r["n_used"])
        if m < n_trials:
            notes.append(
                f"{label}: {kind} on a random subsample of {m} of {n_trials} trials (bootstrap resamples {m} of all {n_trials})"
            )
        if n_shuf and 1 / (n_shuf + 1) >= s.alpha:
            notes.append(
                f"{label}: {kind} with {n_shuf} shuffles: the smallest p-value is 1/{n_shuf + 1} >= {s.alpha}, "
                "so no parameter can be distinguishable from noise"
            )
        for j, n in enumerate(names):
            p_adj = _num(r["p_adjusted"][j])
            lo, hi, pt = _num(r["boot_lo"][j]), _num(r["boot_hi"][j]), float(r["point"][j])
            clears = p_adj is not None and p_adj < s.alpha
            rows.append(
                {
                    "study": label,
                    "budget": first["budget"],
                    "horizon": first["horizon"],
                    "tier": first["tier"],
                    "evaluator": kind,
                    "method": method_label(kind, s),
                    "parameter": n,
                    "levels": n_levels[j],
                    "importance": pt,
                    "boot_mean": _num(r["boot_mean"][j]),
                    "boot_lo": lo,
                    "boot_hi": hi,
                    "point_in_interval": None if lo is None or hi is None else bool(lo <= pt <= hi),
                    "noise_floor": _num(r["noise_floor"][j]),
                    "p_value": _num(r["p_value"][j]),
                    "p_adjusted": p_adj,
                    "distinguishable": clears,
                    "verdict": "distinguishable from noise" if clears else "not distinguishable from noise",
                    "n_trials": n_trials,
                    "n_used": m,
                    "n_bootstrap": n_boot,
                    "n_shuffles": n_shuf,
                }
            )
    ranks = {}
    for kind in EVALUATORS:
        order = sorted((r for r in rows if r["evaluator"] == kind), key=lambda r: -r["importance"])
        for i, r in enumerate(order, 1):
            ranks[(kind, r["parameter"])] = i
    for r in rows:
        r["rank"] = ranks[(r["evaluator"], r["parameter"])]
    return rows, notes


ROW_SCHEMA = {
    "study": pl.String,
    "budget": pl.String,
    "horizon": pl.String,
    "tier": pl.String,
    "evaluator": pl.String,
    "method": pl.String,
    "parameter": pl.String,
    "levels": pl.Int64,
    "importance": pl.Float64,
    "boot_mean": pl.Float64,
    "boot_lo": pl.Float64,
    "boot_hi": pl.Float64,
    "point_in_interval": pl.Boolean,
    "noise_floor": pl.Float64,
    "p_value": pl.Float64,
    "p_adjusted": pl.Float64,
    "distinguishable": pl.Boolean,
    "verdict": pl.String,
    "n_trials": pl.Int64,
    "n_used": pl.Int64,
    "n_bootstrap": pl.Int64,
    "n_shuffles": pl.Int64,
    "rank": pl.Int64,
}


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


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
    first_look = (
        f"First look: fewer resamples than the defaults (fANOVA {s.fanova_bootstrap} resamples / "
        f"{s.fanova_shuffles} shuffles, PED-ANOVA {s.ped_bootstrap} / {s.ped_shuffles}; defaults "
        f"{ImportanceSettings.fanova_bootstrap} / {ImportanceSettings.fanova_shuffles}): intervals and p-values are coarse."
    )
    section.notes = notes + [
        f"{method_label('fanova', s)} (Optuna FanovaImportanceEvaluator, normalized variance share) and "
        f"{method_label('ped_anova', s)} (PedAnovaImportanceEvaluator, Pearson divergence of the top trials) "
        "are on different scales; each parameter is tested against its own null.",
        "Interval: 2.5-97.5 percentiles over bootstrap resamples of trials (stability of the number; it is not "
        "the test). noise_floor: 95th percentile of the parameter's importance on shuffled objectives.",
        f"p_value: share of shuffled objectives giving the parameter at least its importance; p_adjusted: {TEST}, "
        f"family-wise over the study's parameters; distinguishable from noise = p_adjusted < {s.alpha}. "
        f"Both are Monte Carlo estimates over {s.fanova_shuffles} (fANOVA) / {s.ped_shuffles} (PED-ANOVA) "
        "shuffles, so an adjusted p within a few 1/(shuffles + 1) of alpha is borderline.",
        f"PED-ANOVA compares the top {TARGET_QUANTILE:.0%} of trials (5 of 50) with all: its test has much less "
        "power than fANOVA's at these sizes, so its 'not distinguishable' is weak evidence (measured by "
        "hpo_assets/simulation/importance.py).",
    ]
    if s.reduced():
        section.notes.insert(0, first_look)
    outside = table.filter(pl.col("point_in_interval").not_())
    if table["point_in_interval"].is_not_null().any():
        section.notes.append(
            f"The point lies outside its own bootstrap interval in {outside.height} of "
            f"{table['point_in_interval'].is_not_null().sum()} rows (where it does, resampling biases that "
            "importance and the interval describes the resampled number, not the point)."
        )
    section.data = {
        "budget": budget,
        "horizon": horizon,
        "settings": s.to_dict(),
        "n_studies": part["study"].n_unique(),
        "methods": {k: method_label(k, s) for k in EVALUATORS},
        "test": TEST,
        "point_outside_interval": outside.height,
    }
    if table.is_empty():
        section.headline = [
            f"No study of budget {budget} and horizon {horizon} has enough COMPLETE trials for importance."
        ]
        return section
    if s.reduced():
        section.headline.append(first_look)
    for (study,), t in table.group_by(["study"], maintain_order=True):
        for kind in EVALUATORS:
            top = t.filter(pl.col("evaluator") == kind).sort("rank")
            clear = top.filter(pl.col("distinguishable"))["parameter"].to_list()
            lead = top.row(0, named=True)
            section.headline.append(
                f"{study} ({lead['method']}): {lead['parameter']} ranks first ({lead['importance']:.3g}, "
                f"bootstrap interval {_fmt(lead['boot_lo'])}-{_fmt(lead['boot_hi'])}, adjusted p "
                f"{_fmt(lead['p_adjusted'])}); "
                + (
                    f"distinguishable from noise (adjusted p < {s.alpha}): {', '.join(clear)}."
                    if clear
                    else f"no parameter is distinguishable from noise (adjusted p < {s.alpha})."
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
    table = table.with_columns(  # sections written before the permutation test lack these
        [
            pl.lit(None, dtype=ROW_SCHEMA[c]).alias(c)
            for c in ("p_adjusted", "method")
            if c not in table.columns
        ]
    )
    side = (
        table.group_by("parameter", "budget", "horizon", "evaluator")
        .agg(
            pl.col("importance").mean().alias("importance"),
            pl.col("boot_lo").mean().alias("boot_lo"),
            pl.col("boot_hi").mean().alias("boot_hi"),
            pl.col("noise_floor").mean().alias("noise_floor"),
            pl.col("p_adjusted").min().alias("min_p_adjusted"),
            pl.col("method").first().alias("method"),
            pl.col("distinguishable").any().alias("distinguishable_in_any_study"),
            pl.col("study").n_unique().alias("n_studies"),
        )
        .sort("evaluator", "parameter", "budget", "horizon")
    )
    section.tables = {"importances": side, "per_study": table}
    for kind in EVALUATORS:
        clear = side.filter((pl.col("evaluator") == kind) & pl.col("distinguishable_in_any_study"))
        cells = clear.sort("importance", descending=True).head(5)
        methods = side.filter(pl.col("evaluator") == kind)["method"].drop_nulls().unique().to_list()
        section.headline.append(
            f"{'; '.join(methods) or kind}: "
            + (
                "; ".join(
                    f"{r['parameter']} at {r['budget']} {r['horizon']} ({r['importance']:.3g})"
                    for r in cells.iter_rows(named=True)
                )
                + " distinguishable from noise in a study (family-wise adjusted permutation p)"
                if cells.height
                else "no parameter is distinguishable from noise in any partition"
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
