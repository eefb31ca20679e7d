"""Which studies started warm, and from what: lineage the report shows per budget.

A warm-started study (search/transfer.py) labels each transferred trial with its source trial
("hpo-2M-h1#17") in the trial table's `transferred_from` column; a study without such trials was
searched from scratch. Whether the study's best trial is one of the transferred ones says how far
the search moved from where the smaller budgets left off.
"""

from __future__ import annotations

import polars as pl

from hpo_assets.analysis.section import Section

COLUMNS = {
    "study": pl.String,
    "budget": pl.String,
    "horizon": pl.String,
    "warm_started": pl.Boolean,
    "transferred_from": pl.String,
    "transferred_trials": pl.Int64,
    "best_is_transferred": pl.Boolean,
}


def warm_starts(df: pl.DataFrame) -> Section:
    """One row per study: warm-started or not, its source trials, and whether its best trial is transferred."""
    section = Section("warm_starts", "Warm-started studies (hyper-parameter transfer)")
    if df.is_empty():
        section.tables["studies"] = pl.DataFrame(schema=COLUMNS)
        section.headline.append("No trials, so no study to report on.")
        return section
    if "transferred_from" not in df.columns:
        df = df.with_columns(transferred_from=pl.lit(None, dtype=pl.String))
    rows = []
    for (study,), g in df.sort("trial_num").group_by(["study"], maintain_order=True):
        sources = g["transferred_from"].drop_nulls().unique(maintain_order=True).to_list()
        best = (
            g.filter(pl.col("is_best_in_study").fill_null(False))
            if "is_best_in_study" in g.columns
            else g.head(0)
        )
        rows.append(
            {
                "study": study,
                "budget": g["budget"][0],
                "horizon": g["horizon"][0],
                "warm_started": bool(sources),
                "transferred_from": ", ".join(sources) if sources else None,
                "transferred_trials": int(g["transferred_from"].is_not_null().sum()),
                "best_is_transferred": bool(best["transferred_from"].is_not_null().any())
                if best.height
                else None,
            }
        )
    table = pl.DataFrame(rows, schema=COLUMNS).sort("budget", "horizon", "study")
    section.tables["studies"] = table
    warm = table.filter(pl.col("warm_started"))
    if warm.is_empty():
        section.headline.append(f"All {table.height} studies were searched from scratch (no transfer_from).")
    else:
        section.headline.append(f"{warm.height} of {table.height} studies were warm-started:")
        for r in warm.iter_rows(named=True):
            best = {
                True: "its best trial is a transferred one",
                False: "its best trial was found after the transfer",
                None: "no COMPLETE trial yet",
            }[r["best_is_transferred"]]
            section.headline.append(
                f"{r['study']} ({r['budget']}, {r['horizon']}) from {r['transferred_from']} "
                f"({r['transferred_trials']} transferred trials; {best})."
            )
    return section
