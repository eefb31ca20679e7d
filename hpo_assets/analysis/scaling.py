"""Does a bigger budget predict better? Best result per budget with an interval from the study's own
evidence, x = exact parameter count, and a verdict that is never read from the order of maxima.

Evidence, best first: (1) test: the study's own retrained winner (its model card, matched on study, trial
and data identity), scored on the walk-forward test folds, the mean over its k seeds of the uncalibrated
AUC; (2) validation: the winner's stored validation logits (block bootstrap over days) or Hanley-McNeil
from the validation size, both selection-biased (the winner was chosen on this very set); else none.

Verdict per horizon (and tier), the rule applied: compare the smallest and the largest budget by
parameter count. With test evidence for both, the paired difference of their mean-over-seeds AUCs on
the same resampled test days (seed effect carried with the days); "improves"/"worsens" only when its 95%
interval excludes 0, else "inconclusive", with the smallest difference that rule detects at 80% power.
Validation maxima get "no verdict" (selection-biased, their expected inflation printed); points whose
evidence kinds differ are never compared. The slope of error vs log10 N (>= 3 budgets) is descriptive:
its interval is widened by the lack of fit and it does not change the verdict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from hpo_assets.analysis.columns import TRAIN_SIZE, VAL_POSITIVES, VAL_SIZE, first_column, horizon_days
from hpo_assets.analysis.evidence import kind_of, matching_card, test_predictions
from hpo_assets.analysis.inputs import LogitsReader, read_baselines, stored_study_attrs, stored_val_outputs
from hpo_assets.analysis.intervals import (
    Z95,
    Difference,
    Estimate,
    block_bootstrap_auc,
    difference,
    fit_log_slope,
    hanley_mcneil,
)
from hpo_assets.analysis.rendering import draw
from hpo_assets.analysis.section import Section
from hpo_assets.model.budgets import parse_budget
from hpo_assets.stats.paired import Paired, paired_difference, single_model
from hpo_assets.stats.selection import expected_inflation


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


def _validation_estimate(row: dict, read_logits: LogitsReader, cols: dict, n_boot: int) -> Estimate:
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
            return est
    n = row.get(cols["val_size"]) if cols["val_size"] else None
    pos = row.get(cols["val_pos"]) if cols["val_pos"] else None
    if auc is not None:
        return hanley_mcneil(auc, n, pos)
    return Estimate(None, noise="no AUC recorded for this trial")


def _test_estimate(card: dict, preds: pl.DataFrame | None, horizon: int, n_boot: int) -> Estimate:
    """The card's pooled test AUC; recomputed from its stored predictions when present (same resampler
    as the paired comparisons), else as the card states it."""
    t = card.get("test") or {}
    if preds is not None:
        p = single_model(preds, horizon, n_boot)
        if p.diff is not None:
            positives = int(preds.unique(["fold", "date"])["label"].sum())
            return Estimate(p.diff, p.lo, p.hi, p.se, "test", p.noise, p.days, positives)
    lo, hi = t.get("auc_lo"), t.get("auc_hi")
    se = t.get("auc_se") or ((hi - lo) / (2 * Z95) if lo is not None and hi is not None else None)
    noise = t.get("noise") or card.get("interval_noise") or "test set of the retrained winner"
    return Estimate(float(t["auc"]), lo, hi, se, "test", f"test: {noise}", t.get("n"), t.get("positives"))


def _difference_fields(d: Paired | Difference, how: str) -> dict:
    """The verdict row's difference columns, from a paired comparison or two independent intervals."""
    paired = isinstance(d, Paired)
    if paired:
        noise = d.noise
    elif d.lo is None:
        noise = "no interval"
    else:
        noise = "two independent intervals (conservative: ignores that they share days)"
    return {
        "diff": d.diff,
        "diff_lo": d.lo,
        "diff_hi": d.hi,
        "mdd": d.mdd,
        "comparison": how,
        "comparison_noise": noise,
        "test_folds": d.folds if paired else None,
        "test_days": d.days if paired else None,
    }


def _verdict(pts: pl.DataFrame, preds: dict, n_boot: int) -> dict:
    known = pts.filter(pl.col("param_count").is_not_null() & pl.col("value").is_not_null()).sort(
        "param_count"
    )
    out = {
        "verdict": "inconclusive",
        "reason": "",
        "diff": None,
        "diff_lo": None,
        "diff_hi": None,
        "mdd": None,
        "comparison": None,
        "comparison_noise": None,
        "test_folds": None,
        "test_days": None,
        "slope": None,
        "slope_lo": None,
        "slope_hi": None,
        "fit": None,
        "budgets": known.height,
        "pair": None,
    }
    if known.height < 2:
        unknown = pts.filter(pl.col("param_count").is_null())["budget"].to_list()
        out["reason"] = "fewer than two budgets with a known parameter count and result" + (
            f" (parameter count not recorded for {', '.join(unknown)})" if unknown else ""
        )
        return out
    small, large = known.row(0, named=True), known.row(-1, named=True)
    pair = f"{large['budget']} - {small['budget']}"
    out["pair"] = pair
    kinds = (kind_of(small["evidence"]), kind_of(large["evidence"]))
    est = [Estimate(r["value"], r["lo"], r["hi"], r["se"]) for r in (small, large)]
    same_kind = known.filter(pl.col("evidence").map_elements(kind_of, return_dtype=pl.String) == kinds[1])
    if same_kind.height >= 3 and kinds[0] == kinds[1]:
        fit = fit_log_slope(
            same_kind["param_count"].to_list(),
            [1.0 - v for v in same_kind["value"].to_list()],
            [s if s is not None and s > 0 else None for s in same_kind["se"].to_list()],
        )
        if fit is not None:
            out.update(slope=fit.slope, slope_lo=fit.slope_lo, slope_hi=fit.slope_hi, fit=fit.method)
    if kinds[0] != kinds[1]:
        out.update(
            verdict="no verdict",
            reason=f"{pair}: evidence kinds differ ({small['budget']}: {kinds[0]}, "
            f"{large['budget']}: {kinds[1]}); only like is compared with like",
        )
        return out
    if "none" in kinds:
        out["reason"] = f"{pair}: no interval for at least one of them"
        return out
    if kinds[0] == "validation":
        out.update(_difference_fields(difference(est[0], est[1]), "unpaired, validation maxima"))
        infl = [r.get("expected_inflation") for r in (small, large)]
        text = ", ".join(
            f"{r['budget']} +{v:.3f}" for r, v in zip((small, large), infl, strict=True) if v is not None
        )
        out.update(
            verdict="no verdict",
            reason=f"{pair}: selection-biased evidence (validation maxima of the "
            f"studies that chose them; expected inflation of each maximum: {text or 'unknown'})",
        )
        return out
    a, b = preds.get(small["budget"]), preds.get(large["budget"])
    if a is not None and b is not None:
        d: Paired | Difference = paired_difference(
            {small["budget"]: a, large["budget"]: b},
            small["budget"],
            large["budget"],
            horizon_days(small["horizon"]) or 1,
            n_boot,
        )
        how = "paired over test folds"
        if d.diff is None:
            out["reason"] = f"{pair}: {d.noise}"
            return out
    else:
        d = difference(est[0], est[1])
        how = "unpaired (a card without stored test predictions)"
    out.update(_difference_fields(d, how))
    if out["diff_lo"] is None:
        out["reason"] = f"{pair}: no interval for the difference"
    elif out["diff_lo"] > 0 or out["diff_hi"] < 0:
        out["verdict"] = "improves" if out["diff"] > 0 else "worsens"
        out["reason"] = f"{pair}: the 95% interval of the {how.split(' (')[0]} difference excludes 0"
    else:
        out["reason"] = f"{pair}: the 95% interval of the {how.split(' (')[0]} difference includes 0"
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
        rows.append(
            {
                "horizon": held["horizon"],
                "tier": held["tier"],
                "left_out": held["budget"],
                "slope_without": fit.slope,
                "predicted": pred,
                "observed": held["value"],
                "within_interval": inside,
            }
        )
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


def verdict_sentence(v: dict) -> str:
    """One sentence: the pair's difference with its interval, how it was compared, and the verdict."""
    where = f"{v['horizon']}{' ' + v['tier'] if v.get('tier') else ''}"
    if v["diff"] is None:
        return f"{where}: {v['verdict'].upper()} ({v['reason']})."
    ci = "" if v["diff_lo"] is None else f" [{v['diff_lo']:+.3f}, {v['diff_hi']:+.3f}]"
    on = f" on {v['test_folds']} test fold(s), {v['test_days']} days" if v.get("test_folds") else ""
    mdd = (
        ""
        if v["mdd"] is None or v["verdict"] == "no verdict"
        else f"; smallest difference this rule detects: {v['mdd']:.3f}"
    )
    return (
        f"{where}: {v['pair']} = {v['diff']:+.3f}{ci} AUC, {v['comparison']}{on}: "
        f"{v['verdict'].upper()} ({v['reason'].split(': ', 1)[-1]}){mdd}."
    )


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
    rows, notes, preds = [], [], {}
    for r in win.iter_rows(named=True):
        attrs = stored_study_attrs(r["source"], r["source_path"], r["study"])
        card, why = matching_card(outputs_root, r, attrs) if outputs_root else (None, None)
        if why:
            notes.append(why)
        n_params = r["param_count"]
        if card is not None:
            pred = test_predictions(outputs_root, r["budget"], r["horizon"]) if outputs_root else None
            if pred is not None:
                preds[(r["horizon"], r["tier"], r["budget"])] = pred
            est = _test_estimate(card, pred, horizon_days(r["horizon"]) or 1, n_boot)
            n_params = card.get("param_count") or n_params
            inflation = None
        else:
            est = _validation_estimate(r, read_logits, cols, n_boot)
            same = df.filter((pl.col("study") == r["study"]) & (pl.col("state") == "COMPLETE"))
            inflation = (
                expected_inflation(same["objective"].to_list(), maximize=r["direction"] == "maximize")
                if est.value is not None
                else None
            )
        n_train = r.get(cols["train"]) if cols["train"] else None
        if n_train is None:  # live studies record their training-set size as a study attribute
            n_train = attrs.get("n_train")
        rows.append(
            {
                "horizon": r["horizon"],
                "tier": r["tier"],
                "budget": r["budget"],
                "study": r["study"],
                "trial_num": r["trial_num"],
                "param_count": n_params,
                "value": est.value,
                "lo": est.lo,
                "hi": est.hi,
                "se": est.se,
                "evidence": est.evidence,
                "noise": est.noise,
                "n_eval": est.n,
                "positives": est.positives,
                "expected_inflation": inflation,
                "n_train": n_train,
                "samples_per_param": (n_train / n_params) if n_train and n_params else None,
            }
        )
    schema = {
        "horizon": pl.String,
        "tier": pl.String,
        "budget": pl.String,
        "study": pl.String,
        "trial_num": pl.Int64,
        "param_count": pl.Int64,
        "value": pl.Float64,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "se": pl.Float64,
        "evidence": pl.String,
        "noise": pl.String,
        "n_eval": pl.Int64,
        "positives": pl.Int64,
        "expected_inflation": pl.Float64,
        "n_train": pl.Int64,
        "samples_per_param": pl.Float64,
    }
    points = pl.DataFrame(rows, schema=schema, strict=False)
    verdicts, lobo = [], []
    for (horizon, tier), pts in points.group_by("horizon", "tier", maintain_order=True):
        v = _verdict(pts, {b: p for (h, t, b), p in preds.items() if (h, t) == (horizon, tier)}, n_boot)
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
    baselines, baseline_notes = read_baselines(outputs_root, horizons)
    notes += baseline_notes
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
        section.headline.append(verdict_sentence(v))
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
