"""Do budgets agree on their hyper-parameters? The best trial's parameters per budget side by side, and -
because one argmax is noise - how each parameter is distributed among the trials within one standard error of
the best, with a flag where the best value sits on an edge of what the study tried.

The standard error of the best: Hanley-McNeil from validation size and positives when the table has them,
else the spread of deliberate seed replicates (`replicate_of`), else unknown: then the top decile of the
study's COMPLETE trials stands in (said in the table's `near_best_rule`).
"""

from __future__ import annotations

import polars as pl

from hpo_assets.analysis.columns import (
    DISPLAY,
    REPLICATE_OF,
    VAL_POSITIVES,
    VAL_SIZE,
    first_column,
    param_columns,
    with_architecture,
)
from hpo_assets.analysis.inputs import LogitsReader, stored_val_outputs
from hpo_assets.analysis.intervals import hanley_mcneil_se
from hpo_assets.analysis.section import Section


def _best_se(study: pl.DataFrame, best: dict, read_logits: LogitsReader) -> tuple[float | None, str]:
    n_col, p_col = first_column(study, VAL_SIZE), first_column(study, VAL_POSITIVES)
    auc = (
        best["val_auc"]
        if best["val_auc"] is not None
        else (best["objective"] if best["objective_name"] == "val_auc" else None)
    )
    n, pos = (best[n_col], best[p_col]) if n_col and p_col else (None, None)
    if (n is None or pos is None) and auc is not None:
        stored = read_logits(best["source"], best["source_path"], best["study"], best["trial_num"])
        if stored is not None:  # the live study kept the validation labels: their size and positives
            n, pos = len(stored[1]), int(sum(stored[1]))
    if auc is not None and n and pos and 0 < pos < n:
        se = hanley_mcneil_se(auc, pos, n - pos)
        if se is not None:
            return se, f"within 1 SE ({se:.4f}, Hanley-McNeil, {n} samples / {pos} positives)"
    rep = first_column(study, REPLICATE_OF)
    if rep:
        reps = study.filter(pl.col(rep).is_not_null() & pl.col("objective").is_not_null())
        if reps.height >= 2:
            se = float(reps["objective"].std())
            return se, f"within 1 SD of {reps.height} seed replicates ({se:.4f})"
    return None, "top decile (standard error unknown)"


def consistency(df: pl.DataFrame, read_logits: LogitsReader = stored_val_outputs) -> Section:
    section = Section("hp_consistency", "Hyper-parameter consistency across budgets")
    table = with_architecture(df)
    params = param_columns(table)
    ok = table.filter(
        (pl.col("state") == "COMPLETE")
        & pl.col("objective").is_not_null()
        & pl.col("budget").is_not_null()
        & ~pl.col("study_in_progress").fill_null(False)  # a study still running gives no verdict yet
    )
    best_rows, dist_rows, edges = [], [], []
    for (study_name,), study in ok.group_by(["study"], maintain_order=True):
        maximize = study["direction"][0] != "minimize"
        ranked = study.sort("objective", descending=maximize)
        best = ranked.row(0, named=True)
        se, rule = _best_se(study, best, read_logits)
        if se is not None:
            near = (
                study.filter(pl.col("objective") >= best["objective"] - se)
                if maximize
                else study.filter(pl.col("objective") <= best["objective"] + se)
            )
        else:
            near = ranked.head(max(1, -(-study.height // 10)))
        base = {
            "horizon": best["horizon"],
            "tier": best["tier"],
            "budget": best["budget"],
            "study": study_name,
        }
        best_rows.append(
            {
                **base,
                "trial_num": best["trial_num"],
                "objective": best["objective"],
                "near_best_trials": near.height,
                "near_best_rule": rule,
                **{DISPLAY.get(p, p): best[p] for p in params},
            }
        )
        for p in params:
            tried = sorted(v for v in study[p].unique().to_list() if v is not None)
            name = DISPLAY.get(p, p)
            for value, count in near.group_by(p).len().sort(p, nulls_last=True).iter_rows():
                dist_rows.append(
                    {
                        **base,
                        "parameter": name,
                        "value": None if value is None else str(value),
                        "trials": count,
                        "share": count / near.height,
                    }
                )
            if len(tried) >= 2 and best[p] in (tried[0], tried[-1]):
                edges.append(
                    {
                        **base,
                        "parameter": name,
                        "best_value": str(best[p]),
                        "edge": "lowest tried" if best[p] == tried[0] else "highest tried",
                        "n_values_tried": len(tried),
                    }
                )
    best_df = pl.DataFrame(best_rows) if best_rows else pl.DataFrame(schema={"study": pl.String})
    side = pl.DataFrame()
    if best_rows:
        names = [DISPLAY.get(p, p) for p in params] + ["objective"]
        as_text = best_df.with_columns([pl.col(c).cast(pl.String) for c in names])
        long = as_text.unpivot(
            index=["horizon", "tier", "budget"], on=names, variable_name="parameter", value_name="value"
        ).with_columns(pl.col("value").cast(pl.String))
        side = long.with_columns(
            column=pl.format("{} {} {}", pl.col("budget"), pl.col("horizon"), pl.col("tier").fill_null(""))
        ).pivot(on="column", index="parameter", values="value", aggregate_function="first")
    section.tables = {
        "best_side_by_side": side,
        "best_trials": best_df,
        "near_best_distribution": pl.DataFrame(dist_rows)
        if dist_rows
        else pl.DataFrame(schema={"study": pl.String}),
        "edge_flags": pl.DataFrame(edges)
        if edges
        else pl.DataFrame(schema={"study": pl.String, "parameter": pl.String}),
    }
    if not best_rows:
        section.headline = ["No COMPLETE trial with a budget."]
        return section
    for r in best_rows:
        e = [f"{x['parameter']} ({x['edge']})" for x in edges if x["study"] == r["study"]]
        section.headline.append(
            f"{r['study']}: best trial #{r['trial_num']}; {r['near_best_trials']} trials {r['near_best_rule']}"
            + (f"; best value at an edge of the tried range: {', '.join(e)}" if e else "")
            + "."
        )
    section.notes = [
        "A single best trial is one draw from noise: read the near-best distribution, not the argmax.",
        "Edge flags compare with the values the study tried; a best value on an edge suggests widening the range.",
    ]
    return section
