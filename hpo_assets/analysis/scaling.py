"""Does a bigger budget predict better? Best result per budget with an interval from the best evidence there
is, x = exact parameter count, and a verdict that is never read from the order of maxima.

Evidence, best first: (1) test AUC of the retrained winner (model card of `calibrated_model`); (2) the
winner's stored validation logits, moving-block bootstrap over days ("validation: selection-biased": the
winner was chosen on this very set); (3) Hanley-McNeil from validation size and positives; else no interval.

Verdict per horizon (and tier): compare the smallest and the largest budget (by parameter count).
"improves"/"worsens" only when both have intervals, the intervals do not overlap, and (with >= 3 budgets)
the slope of error vs log10 N has an interval on the same side of 0; otherwise "inconclusive", with the
smallest difference the data could have detected (alpha 0.05, power 0.8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from hpo_assets.analysis.columns import TRAIN_SIZE, VAL_POSITIVES, VAL_SIZE, first_column, horizon_days
from hpo_assets.analysis.inputs import (
    LogitsReader,
    read_baselines,
    read_model_card,
    stored_study_attrs,
    stored_val_outputs,
)
from hpo_assets.analysis.intervals import (
    Z95,
    Estimate,
    block_bootstrap_auc,
    difference,
    fit_log_slope,
    hanley_mcneil,
)
from hpo_assets.analysis.rendering import draw
from hpo_assets.analysis.section import Section
from hpo_assets.model.budgets import parse_budget


def winners(df: pl.DataFrame) -> pl.DataFrame:
    """The best COMPLETE trial per (horizon, tier, budget) over all studies of that cell."""
    ok = df.filter(
        (pl.col("state") == "COMPLETE")
        & pl.col("objective").is_not_null()
        & pl.col("budget").is_not_null()
        & ~pl.col("study_in_progress").fill_null(False)  # a study still running gives no verdict yet
    )
    if ok.is_empty():
        return ok
    key = pl.when(pl.col("direction") == "maximize").then(-pl.col("objective")).otherwise(pl.col("objective"))
    return (
        ok.with_columns(_key=key)
        .sort("_key", "study", "trial_num")
        .group_by("horizon", "tier", "budget", maintain_order=True)
        .first()
        .drop("_key")
    )


def _estimate(
    row: dict, outputs_root: Path | None, read_logits: LogitsReader, cols: dict, n_boot: int
) -> tuple[Estimate, int | None]:
    """(estimate, param_count) for one winner, from the best evidence available."""
    card = read_model_card(outputs_root, row["budget"], row["horizon"]) if outputs_root else None
    if card is not None:
        t = card["test"]
        lo, hi = t.get("auc_lo"), t.get("auc_hi")
        se = (hi - lo) / (2 * Z95) if lo is not None and hi is not None else None
        seeds = t.get("seed_aucs") or []
        noise = card.get("interval_noise") or "test set of the retrained winner"
        return Estimate(
            float(t["auc"]), lo, hi, se, "test",
            f"test: retrained winner ({len(seeds)} seeds); {noise}", t.get("n"), t.get("positives"),
        ), card.get("param_count") or row["param_count"]  # fmt: skip
    auc = (
        row["val_auc"]
        if row["val_auc"] is not None
        else (row["objective"] if row["objective_name"] == "val_auc" else None)
    )
    stored = read_logits(row["source"], row["source_path"], row["study"], row["trial_num"])
    if stored is not None:
        est = block_bootstrap_auc(
            np.asarray(stored[0]),
            np.asarray(stored[1]),
            horizon_days=horizon_days(row["horizon"]),
            n_boot=n_boot,
        )
        if est.value is not None:
            return est, row["param_count"]
    n = row.get(cols["val_size"]) if cols["val_size"] else None
    pos = row.get(cols["val_pos"]) if cols["val_pos"] else None
    if auc is not None:
        return hanley_mcneil(auc, n, pos), row["param_count"]
    return Estimate(None, noise="no AUC recorded for this trial"), row["param_count"]


def _verdict(pts: pl.DataFrame) -> dict:
    known = pts.filter(pl.col("param_count").is_not_null() & pl.col("value").is_not_null()).sort(
        "param_count"
    )
    out = {"verdict": "inconclusive", "reason": "", "diff": None, "diff_lo": None, "diff_hi": None, "mdd": None,
           "slope": None, "slope_lo": None, "slope_hi": None, "fit": None, "budgets": known.height}  # fmt: skip
    if known.height < 2:
        unknown = pts.filter(pl.col("param_count").is_null())["budget"].to_list()
        out["reason"] = "fewer than two budgets with a known parameter count and result" + (
            f" (parameter count not recorded for {', '.join(unknown)})" if unknown else ""
        )
        return out
    est = [Estimate(r["value"], r["lo"], r["hi"], r["se"]) for r in known.iter_rows(named=True)]
    small, large = known.row(0, named=True), known.row(-1, named=True)
    d = difference(est[0], est[-1])
    out.update(diff=d.diff, diff_lo=d.lo, diff_hi=d.hi, mdd=d.mdd)
    fit = fit_log_slope(known["param_count"].to_list(), [1.0 - v for v in known["value"].to_list()],
                        [e.se if e.has_interval else None for e in est]) if known.height >= 3 else None  # fmt: skip
    if fit is not None:
        out.update(slope=fit.slope, slope_lo=fit.slope_lo, slope_hi=fit.slope_hi, fit=fit.method)
    pair = f"{large['budget']} vs {small['budget']}"
    if d.intervals_overlap is None:
        out["reason"] = f"{pair}: no interval for at least one of them"
    elif d.intervals_overlap:
        out["reason"] = f"{pair}: the 95% intervals overlap"
    else:
        direction = "improves" if d.diff > 0 else "worsens"
        if fit is not None and fit.slope_lo is not None:
            slope_says = "improves" if fit.slope_hi < 0 else "worsens" if fit.slope_lo > 0 else None
            if slope_says != direction:
                out["reason"] = (
                    f"{pair} differ beyond their intervals but the slope of error vs log N has interval [{fit.slope_lo:.3g}, {fit.slope_hi:.3g}]"
                )
                return out
        out["verdict"] = direction
        out["reason"] = f"{pair}: intervals do not overlap" + (
            " and the slope interval excludes 0" if fit is not None and fit.slope_lo is not None else ""
        )
    return out


def _lobo(pts: pl.DataFrame) -> list[dict]:
    """Leave one budget out (>= 4 budgets): refit on the rest, predict the held-out budget's error."""
    known = pts.filter(pl.col("param_count").is_not_null() & pl.col("value").is_not_null()).sort(
        "param_count"
    )
    if known.height < 4:
        return []
    rows = []
    for i, held in enumerate(known.iter_rows(named=True)):
        rest = known.filter(pl.arange(0, known.height) != i)
        fit = fit_log_slope(
            rest["param_count"].to_list(), [1 - v for v in rest["value"].to_list()], [None] * rest.height
        )
        if fit is None:
            continue
        pred = 1 - (fit.intercept + fit.slope * float(np.log10(held["param_count"])))
        inside = held["lo"] <= pred <= held["hi"] if held["lo"] is not None else None
        rows.append({"horizon": held["horizon"], "tier": held["tier"], "left_out": held["budget"], "slope_without": fit.slope,
                     "predicted": pred, "observed": held["value"], "within_interval": inside})  # fmt: skip
    return rows


def label_notes(points: pl.DataFrame, band: float = 0.25) -> list[str]:
    """Where a budget label does not measure size: a winner far outside its label's band, or two labels
    whose winners have the same parameter count (one model size counted as two points)."""
    notes = []

    def where(horizon: str, tier: str | None) -> str:
        return f"{horizon} {tier}" if tier else str(horizon)

    for r in points.filter(pl.col("param_count").is_not_null()).iter_rows(named=True):
        try:
            ratio = r["param_count"] / parse_budget(r["budget"])
        except (TypeError, ValueError):
            continue  # a label that names no size ("a50-large"): nothing to compare
        if abs(ratio - 1) > band:
            notes.append(
                f"{where(r['horizon'], r['tier'])}: budget {r['budget']}'s best trial has {r['param_count']:,} "
                f"parameters ({ratio:.2g}x its label); the x axis and the verdict use the count."
            )
    for (horizon, tier, n), same in points.group_by("horizon", "tier", "param_count", maintain_order=True):
        if n is not None and same.height > 1:
            notes.append(
                f"{where(horizon, tier)}: budgets {', '.join(same['budget'].to_list())} share a best trial of "
                f"{n:,} parameters: one model size under {same.height} labels, not {same.height} sizes."
            )
    return notes


def scaling(
    df: pl.DataFrame,
    outputs_root: Path | None = None,
    read_logits: LogitsReader = stored_val_outputs,
    n_boot: int = 1000,
    plot: bool = True,
) -> Section:
    """The scaling_report section over the whole trial table."""
    section = Section("scaling_report", "Scaling: best result per budget, with intervals")
    win = winners(df)
    cols = {
        "val_size": first_column(df, VAL_SIZE),
        "val_pos": first_column(df, VAL_POSITIVES),
        "train": first_column(df, TRAIN_SIZE),
    }
    rows = []
    for r in win.iter_rows(named=True):
        est, n_params = _estimate(r, outputs_root, read_logits, cols, n_boot)
        n_train = r.get(cols["train"]) if cols["train"] else None
        if n_train is None:  # live studies record their training-set size as a study attribute
            n_train = stored_study_attrs(r["source"], r["source_path"], r["study"]).get("n_train")
        rows.append({
            "horizon": r["horizon"], "tier": r["tier"], "budget": r["budget"], "study": r["study"], "trial_num": r["trial_num"],
            "param_count": n_params, "value": est.value, "lo": est.lo, "hi": est.hi, "se": est.se,
            "evidence": est.evidence, "noise": est.noise, "n_eval": est.n, "positives": est.positives,
            "n_train": n_train, "samples_per_param": (n_train / n_params) if n_train and n_params else None,
        })  # fmt: skip
    schema = {"horizon": pl.String, "tier": pl.String, "budget": pl.String, "study": pl.String, "trial_num": pl.Int64,
              "param_count": pl.Int64, "value": pl.Float64, "lo": pl.Float64, "hi": pl.Float64, "se": pl.Float64,
              "evidence": pl.String, "noise": pl.String, "n_eval": pl.Int64, "positives": pl.Int64, "n_train": pl.Int64,
              "samples_per_param": pl.Float64}  # fmt: skip
    points = pl.DataFrame(rows, schema=schema, strict=False)
    verdicts, lobo = [], []
    for (horizon, tier), pts in points.group_by("horizon", "tier", maintain_order=True):
        v = _verdict(pts)
        verdicts.append(
            {
                "horizon": horizon,
                "tier": tier,
                **v,
                "evidence": ", ".join(sorted(set(pts["evidence"].to_list()))),
            }
        )
        lobo += _lobo(pts)
    horizons = sorted({h for h in points["horizon"].to_list() if h})
    baselines, notes = read_baselines(outputs_root, horizons)
    section.tables = {
        "points": points.sort("horizon", "tier", "param_count", nulls_last=True),
        "verdicts": pl.DataFrame(verdicts)
        if verdicts
        else pl.DataFrame(schema={"horizon": pl.String, "verdict": pl.String}),
        "leave_one_budget_out": pl.DataFrame(lobo)
        if lobo
        else pl.DataFrame(schema={"horizon": pl.String, "left_out": pl.String}),
        "baselines": baselines,
    }
    for v in verdicts:
        diff = "" if v["diff"] is None else f"; largest minus smallest budget {v['diff']:+.4f} AUC"
        ci = "" if v["diff_lo"] is None else f" (95% CI {v['diff_lo']:+.4f} to {v['diff_hi']:+.4f})"
        mdd = "" if v["mdd"] is None else f"; smallest detectable difference {v['mdd']:.3f} AUC"
        section.headline.append(
            f"{v['horizon']} {v['tier'] or ''}: {v['verdict'].upper()} ({v['reason']}){diff}{ci}{mdd}. Evidence: {v['evidence']}."
        )
    if not verdicts:
        section.headline.append("No COMPLETE trial with a budget: nothing to compare.")
    for e in sorted(set(points["noise"].to_list())):
        notes.append(f"interval noise: {e}")
    if points["param_count"].null_count():
        notes.append(
            "Some winners have no recorded parameter count: they are listed but left out of the fit and the verdict (x is never the label)."
        )
    notes += label_notes(points)
    if baselines.is_empty():
        notes.append(
            "No baselines file under the outputs root (baselines/baselines_<horizon>.json): no reference lines."
        )
    section.notes = notes
    section.data = {"verdicts": verdicts}
    if plot:
        section.plots = {"plot": draw("scaling_plot", points, baselines)}
    return section
