"""The report's front page: the campaign as a budget x horizon grid, one headline per horizon that
compares like with like, and the winners' parameters side by side.

A cell says how far its study got (trials done / target), its best objective with the seed spread of
its retrained winner where one exists, the compute it used and what finishing would take at its own
pace so far, and its state. A headline takes the scaling verdict of that horizon (paired over test
folds when both budgets were retrained, else why not) and the best retrained model against the best
baseline on the same test days.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hpo_assets.analysis.evidence import matching_card
from hpo_assets.analysis.inputs import read_baselines, stored_study_attrs
from hpo_assets.analysis.scaling import verdict_sentence, winners
from hpo_assets.model.budgets import parse_budget

AttrsReader = Callable[[str | None, str | None, str], dict]
COUNTED = ("COMPLETE", "PRUNED", "FAIL")  # a trial that ran to an end (a skipped repeat is FAIL too, cheap)

GLOSSARY = [
    "Budget: the parameter budget a study searched under (its winner's exact parameter count is on the "
    "scaling table; the label is only a name). Horizon hN: the label is whether the price rises at least 1% "
    "within N trading days.",
    "Evidence kind: test = the study's own winner retrained with k seeds on walk-forward test folds the "
    "study never saw, scored as the mean over seeds; validation = the study's best validation score, which "
    "is inflated by the search itself (it is the maximum of many noisy trials), so it gives no verdict.",
    "Intervals are 95%; a difference is paired (both models scored on the same resampled test days, each "
    "model's seed noise carried along); 'inconclusive' means the interval includes 0.",
    "Tier: the feature set a study's inputs came from (imported campaigns name it a20, a50, a200).",
]


def _state(study_rows: pl.DataFrame, done: int, target: int | None) -> str:
    if study_rows.is_empty():
        return "not started"
    if (study_rows["source"] != "optuna_storage").all():
        return "imported"
    if study_rows["state"].cast(pl.String).is_in(["RUNNING", "WAITING"]).any():
        return "running"
    if target is not None and done >= target:
        return "done"
    return "stopped short" if target is not None else "done"


def campaign_grid(
    df: pl.DataFrame,
    outputs_root: Path | None,
    budgets: list[str] | None = None,
    horizons: list[str] | None = None,
    read_attrs: AttrsReader = stored_study_attrs,
) -> pl.DataFrame:
    """One row per budget x horizon: state, studies, trials done / target, best objective and its seed
    spread (retrained winner), compute-hours used and predicted to finish (median trial so far)."""
    have = df.select("budget", "horizon").drop_nulls().unique()
    budgets = list(dict.fromkeys([*(budgets or []), *sorted(have["budget"].to_list(), key=_size)]))
    horizons = list(dict.fromkeys([*(horizons or []), *sorted(have["horizon"].to_list())]))
    tiers = {b: sorted(set(df.filter(pl.col("budget") == b)["tier"].drop_nulls().to_list())) for b in budgets}
    best = (
        {(r["budget"], r["tier"], r["horizon"]): r for r in winners(df).iter_rows(named=True)}
        if df.height
        else {}
    )
    rows = []
    for h in horizons:
        for b, tier in [(x, t) for x in budgets for t in (tiers[x] if len(tiers[x]) > 1 else [None])]:
            # one row per budget, split by tier (feature set) when studies of one budget used several
            cell = df.filter((pl.col("budget") == b) & (pl.col("horizon") == h))
            if tier is not None:
                cell = cell.filter(pl.col("tier") == tier)
            studies = cell["study"].unique(maintain_order=True).to_list()
            done = cell.filter(pl.col("state").cast(pl.String).is_in(COUNTED)).height
            target = None
            for name in studies:
                first = cell.filter(pl.col("study") == name).row(0, named=True)
                t = read_attrs(first["source"], first["source_path"], name).get("n_trials_target")
                if isinstance(t, int):
                    target = (target or 0) + t
            secs = cell["duration_sec"].drop_nulls()
            used = float(secs.sum()) / 3600.0 if secs.len() else None
            left = None
            if target is not None and secs.len():
                left = max(target - done, 0) * float(np.median(secs.to_numpy())) / 3600.0
            w = best.get((b, tier, h)) or next(
                (v for (bb, _t, hh), v in best.items() if (bb, hh) == (b, h)), None
            )
            spread, evidence = None, None
            if w is not None and outputs_root is not None:
                card, _ = matching_card(
                    outputs_root, w, read_attrs(w["source"], w["source_path"], w["study"])
                )
                if card is not None:
                    spread = (card.get("seed_spread") or {}).get("auc_sd")
                    evidence = "test"
            rows.append(
                {
                    "row": b if tier is None else f"{b} {tier}",
                    "tier": tier,
                    "budget": b,
                    "horizon": h,
                    "state": _state(cell, done, target),
                    "studies": ", ".join(studies),
                    "trials_done": done,
                    "trials_target": target,
                    "best_objective": w["objective"] if w else None,
                    "objective": w["objective_name"] if w else None,
                    "best_trial": w["trial_num"] if w else None,
                    "retrained_seed_sd": spread,
                    "retrained": evidence == "test",
                    "compute_hours": used,
                    "hours_to_finish": left,
                }
            )
    return pl.DataFrame(rows, schema=GRID_SCHEMA, strict=False)


GRID_SCHEMA = {
    "row": pl.String,
    "tier": pl.String,
    "budget": pl.String,
    "horizon": pl.String,
    "state": pl.String,
    "studies": pl.String,
    "trials_done": pl.Int64,
    "trials_target": pl.Int64,
    "best_objective": pl.Float64,
    "objective": pl.String,
    "best_trial": pl.Int64,
    "retrained_seed_sd": pl.Float64,
    "retrained": pl.Boolean,
    "compute_hours": pl.Float64,
    "hours_to_finish": pl.Float64,
}


def _size(label: str) -> float:
    try:
        return float(parse_budget(label))
    except (TypeError, ValueError):
        return float("inf")


def _hours(h: float) -> str:
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.2f} h"


def grid_cell(r: dict[str, Any]) -> str:
    """A grid cell as text: '12/12 trials · best 0.7302 (±0.011 over seeds) · 0.05 h (+0.00) · done'."""
    if r["state"] == "not started":
        return "not started"
    trials = (
        f"{r['trials_done']}/{r['trials_target']}"
        if r["trials_target"] is not None
        else f"{r['trials_done']}"
    )
    best = "" if r["best_objective"] is None else f" · best {r['objective'] or ''} {r['best_objective']:.4f}"
    sd = "" if r["retrained_seed_sd"] is None else f" (±{r['retrained_seed_sd']:.3f} over retrained seeds)"
    hours = "" if r["compute_hours"] is None else f" · {_hours(r['compute_hours'])}"
    left = (
        ""
        if r["hours_to_finish"] is None or r["state"] in ("done", "imported")
        else f" (+{_hours(r['hours_to_finish'])} to finish)"
    )
    return f"{trials} trials{best}{sd}{hours}{left} · {r['state']}"


def horizon_headlines(
    scaling_verdicts: list[dict], points: pl.DataFrame, outputs_root: Path | None
) -> list[str]:
    """One sentence per horizon: the budget comparison (like with like) and the best model vs the best
    baseline on the same test days."""
    out = []
    horizons = sorted(
        {v["horizon"] for v in scaling_verdicts} | set(points["horizon"].drop_nulls().to_list())
    )
    baselines, _ = read_baselines(outputs_root, horizons)
    for h in horizons:
        parts = [verdict_sentence(v) for v in scaling_verdicts if v["horizon"] == h]
        tested = points.filter((pl.col("horizon") == h) & (pl.col("evidence") == "test")).sort(
            "value", descending=True
        )
        if tested.is_empty():
            parts.append(
                f"{h}: no retrained model yet (materialize calibrated_model) so no comparison with the baselines."
            )
        else:
            top = tested.row(0, named=True)
            parts.append(_versus_baseline(h, top, baselines, outputs_root))
        out.append(" ".join(parts))
    return out


def _versus_baseline(h: str, top: dict, baselines: pl.DataFrame, outputs_root: Path | None) -> str:
    from hpo_assets.analysis.inputs import read_model_card

    card = read_model_card(outputs_root, top["budget"], h) or {}
    rows = [r for r in card.get("vs_baselines") or [] if r.get("baseline") != "majority"]
    test = baselines.filter(
        (pl.col("horizon") == h) & (pl.col("split") == "test") & (pl.col("model") != "majority")
    )
    if not rows:
        return f"{h}: {top['budget']}'s card holds no paired comparison with the baselines."
    order = {
        m: a for m, a in zip(test["model"].to_list(), test["auc"].to_list(), strict=True) if a is not None
    }
    row = max(rows, key=lambda r: order.get(r["baseline"], float("-inf")))
    d, lo, hi = row.get("auc_diff"), row.get("auc_diff_lo"), row.get("auc_diff_hi")
    if d is None:
        return f"{h}: best model {top['budget']} vs {row['baseline']}: no paired difference recorded."
    ci = "" if lo is None else f" [{lo:+.3f}, {hi:+.3f}]"
    return (
        f"Best model ({top['budget']}, test AUC {top['value']:.3f}) − {row['baseline']} = {d:+.3f}{ci} "
        f"({row.get('verdict', 'inconclusive')})."
    )


def winners_side_by_side(df: pl.DataFrame) -> pl.DataFrame:
    """The winners' parameters transposed: one row per parameter, one column per budget|horizon."""
    from hpo_assets.analysis.columns import param_columns

    win = winners(df)
    if win.is_empty():
        return pl.DataFrame({"parameter": []}, schema={"parameter": pl.String})
    win = win.sort("horizon", pl.col("budget").map_elements(_size, return_dtype=pl.Float64))
    params = [  # a parameter no winner recorded gets no row
        c
        for c in ["param_count", *param_columns(win), "objective", "trial_num", "study"]
        if c in win.columns and win[c].null_count() < win.height
    ]
    cols = {f"{r['budget']}|{r['horizon']}": r for r in win.iter_rows(named=True)}
    data: dict[str, list] = {"parameter": params}
    for name, r in cols.items():
        data[name] = [
            None if r[p] is None else (f"{r[p]:.4g}" if isinstance(r[p], float) else str(r[p]))
            for p in params
        ]
    return pl.DataFrame(data)
