"""Coverage and cost of each study: how much of its space was tried, where it did not look, and which
trials bought no information (exact and effective repeats, diverged, failed) with their compute-hours, and
what the pruner saved.

Waste kinds are exclusive, in this order: exact repeat (identical parameters to an earlier COMPLETE trial),
effective repeat (different parameters, identical training run: same architecture and bit-identical
objective and val_loss as an earlier COMPLETE trial, or a `duplicate_of` whose parameters differ),
diverged, failed. A repeat skipped before training (FAIL "duplicate of #k") cost nothing and is
counted as skipped, not waste; a deliberate seed replicate (`replicate_of`) measures noise and is not waste.
A pruned trial is an early stop the pruner chose: not waste but compute saved, estimated as the median
duration of the study's COMPLETE trials minus what the pruned trial ran (never below 0).
"""

from __future__ import annotations

from itertools import combinations

import polars as pl

from hpo_assets.analysis.columns import REPLICATE_OF, first_column, param_columns, with_architecture
from hpo_assets.analysis.rendering import draw
from hpo_assets.analysis.section import Section

WASTE_KINDS = ["exact_repeat", "effective_repeat", "diverged", "failed"]
ARCH = ["d_model", "n_layers", "n_heads", "d_ff"]
NEIGHBOURHOOD_STEPS = 1  # "near the best": within this many grid steps of it in every parameter


def classify(df: pl.DataFrame) -> pl.DataFrame:
    """Add `kind`: one of WASTE_KINDS, `skipped` (never trained), `replicate`, `running` or `useful`."""
    df = with_architecture(df).with_row_index("_row")
    params = param_columns(df)
    rep = first_column(df, REPLICATE_OF)
    first = df.select("study", "trial_num", *params).rename({p: f"_f_{p}" for p in params})
    joined = df.join(
        first.rename({"trial_num": "duplicate_of"}),
        on=["study", "duplicate_of"],
        how="left",
        maintain_order="left",
    )
    same_params = pl.all_horizontal(
        [(pl.col(p).eq_missing(pl.col(f"_f_{p}"))) for p in params] or [pl.lit(True)]
    )
    complete = (pl.col("state") == "COMPLETE") & pl.col("objective").is_not_null()
    # identical run: same architecture and bit-identical results as an earlier COMPLETE trial
    run_key = ["study", *ARCH, "objective", "val_loss"]
    earlier = (
        joined.filter(complete & pl.col("duplicate_of").is_null())
        .group_by(run_key, maintain_order=True)
        .agg(pl.col("trial_num").min().alias("_same_run"))
    )
    joined = joined.join(earlier, on=run_key, how="left", nulls_equal=True, maintain_order="left")
    skipped = (pl.col("state") == "FAIL") & pl.col("state_reason").fill_null("").str.contains(
        r"duplicate of #\d+: .*already tested"
    )
    kind = (
        pl.when(pl.col(rep).is_not_null() if rep else pl.lit(False))
        .then(pl.lit("replicate"))
        .when(skipped)
        .then(pl.lit("skipped"))
        .when(pl.col("duplicate_of").is_not_null() & same_params)
        .then(pl.lit("exact_repeat"))
        .when(pl.col("duplicate_of").is_not_null())
        .then(pl.lit("effective_repeat"))
        .when(complete & (pl.col("_same_run") < pl.col("trial_num")))
        .then(pl.lit("effective_repeat"))
        .when(pl.col("diverged"))
        .then(pl.lit("diverged"))
        .when(pl.col("state") == "FAIL")
        .then(pl.lit("failed"))
        .when(pl.col("state") == "PRUNED")
        .then(pl.lit("pruned"))
        .when(pl.col("state").is_in(["RUNNING", "WAITING"]))
        .then(pl.lit("running"))
        .otherwise(pl.lit("useful"))
    )
    out = joined.with_columns(
        kind=kind,
        effective_repeat_of=pl.when(kind == "effective_repeat").then(
            pl.coalesce(pl.col("duplicate_of"), pl.col("_same_run"))
        ),
    )
    return out.sort("_row").drop("_row", "_same_run", *[f"_f_{p}" for p in params])


def _hours(expr: pl.Expr) -> pl.Expr:
    return (expr.sum() / 3600.0).cast(pl.Float64)


def _rank_positions(study: pl.DataFrame, dims: list[str]) -> dict[str, dict]:
    """Each dimension's tried values in order, mapped to their grid index."""
    out = {}
    for d in dims:
        vals = sorted(v for v in study[d].unique().to_list() if v is not None)
        out[d] = {v: i for i, v in enumerate(vals)}
    return out


def _arch_label(df: pl.DataFrame) -> pl.Expr:
    return pl.format("d{}-L{}-H{}-F{}", *[pl.col(c) for c in ARCH])


def _second_half_near_best(study: pl.DataFrame, params: list[str]) -> tuple[float | None, int]:
    ran = study.filter(pl.col("kind") != "skipped").sort("trial_num")
    best = ran.filter(pl.col("rank_in_study") == 1).sort("trial_num").head(1)
    if best.is_empty() or ran.height < 4:
        return None, 0
    dims = [p for p in params if ran[p].n_unique() > 1]
    pos = _rank_positions(ran, dims)
    second = ran.tail(ran.height - ran.height // 2)
    b = best.row(0, named=True)
    near = 0
    for row in second.iter_rows(named=True):
        if all(
            (row[d] is None and b[d] is None)
            or (
                row[d] is not None
                and b[d] is not None
                and abs(pos[d][row[d]] - pos[d][b[d]]) <= NEIGHBOURHOOD_STEPS
            )
            for d in dims
        ):
            near += 1
    return near / second.height, second.height


def _untested_regions(study: pl.DataFrame, dims: list[str], space: int, top: int = 5) -> list[dict]:
    """Pairs of values (architecture or a training parameter) never tried together, largest slab first;
    a slab's size is the number of grid configurations sharing that pair."""
    tried = study.filter(~pl.col("kind").is_in(["skipped", "running"]))
    domains = {d: sorted({v for v in tried[d].to_list() if v is not None}, key=str) for d in dims}
    regions = []
    for a, b in combinations([d for d in dims if len(domains[d]) > 1], 2):
        seen = set(zip(tried[a].to_list(), tried[b].to_list(), strict=True))
        size = space // (len(domains[a]) * len(domains[b]))
        for va in domains[a]:
            for vb in domains[b]:
                if (va, vb) not in seen:
                    regions.append({"region": f"{a}={va}, {b}={vb}", "configs_in_region": size})
    regions.sort(key=lambda r: -r["configs_in_region"])
    return regions[:top]


def coverage(df: pl.DataFrame, space_sizes: dict[str, int] | None = None) -> Section:
    """The coverage_report section for a whole trial table (one row per study, roll-ups per budget)."""
    space_sizes = space_sizes or {}
    section = Section("coverage_report", "Coverage, waste and compute")
    if df.is_empty():
        section.headline.append("No trials in the table.")
        return section
    table = classify(df).with_columns(architecture=_arch_label(df), _h=pl.col("duration_sec"))
    params = param_columns(table)
    train_params = [p for p in params if p not in ARCH]
    rows, waste_rows, counts_rows, region_rows = [], [], [], []
    for (name,), study in table.group_by(["study"], maintain_order=True):
        first = study.row(0, named=True)
        n = study.height
        varying = [p for p in train_params if study[p].n_unique() > 1]
        tried = study.filter(~pl.col("kind").is_in(["skipped", "running"]))
        n_arch = max(tried.filter(pl.col("d_model").is_not_null())["architecture"].n_unique(), 1)
        grid = n_arch
        for p in varying:
            grid *= max(tried[p].drop_nulls().n_unique(), 1)
        space = space_sizes.get(name)
        configs = tried.select("architecture", *train_params).unique().height
        half_share, half_n = _second_half_near_best(study, params)
        row = {
            "study": name,
            "budget": first["budget"],
            "horizon": first["horizon"],
            "tier": first["tier"],
            "trials": n,
            "space_size": space if space is not None else grid,
            "space_from": "study distributions" if space is not None else "observed grid (lower bound)",
            "configs_tested": configs,
            "pct_space_tested": 100.0 * configs / (space if space is not None else grid),
        }
        total_h = study["_h"].sum() / 3600.0 if study["_h"].null_count() < n else None
        for kind in WASTE_KINDS:
            sub = study.filter(pl.col("kind") == kind)
            hours = (
                sub["_h"].sum() / 3600.0
                if sub.height and sub["_h"].null_count() < sub.height
                else (0.0 if not sub.height else None)
            )
            row[f"{kind}"] = sub.height
            row[f"{kind}_pct"] = 100.0 * sub.height / n
            row[f"{kind}_hours"] = hours
            waste_rows.append(
                {
                    "study": name,
                    "budget": first["budget"],
                    "kind": kind,
                    "trials": sub.height,
                    "pct": 100.0 * sub.height / n,
                    "compute_hours": hours,
                }
            )
        wasted = study.filter(pl.col("kind").is_in(WASTE_KINDS))
        row["wasted"] = wasted.height
        row["wasted_pct"] = 100.0 * wasted.height / n
        row["wasted_hours"] = (
            wasted["_h"].sum() / 3600.0
            if wasted.height and wasted["_h"].null_count() < wasted.height
            else (0.0 if not wasted.height else None)
        )
        pruned = study.filter(pl.col("kind") == "pruned")
        full = study.filter(pl.col("state") == "COMPLETE")["_h"].drop_nulls()
        row["pruned"] = pruned.height
        row["pruned_pct"] = 100.0 * pruned.height / n
        row["pruned_hours"] = pruned["_h"].sum() / 3600.0 if pruned.height else 0.0
        row["pruned_saved_hours"] = (
            float((float(full.median()) - pruned["_h"].fill_null(0.0)).clip(lower_bound=0.0).sum()) / 3600.0
            if pruned.height and full.len()
            else (0.0 if not pruned.height else None)
        )
        row["skipped"] = study.filter(pl.col("kind") == "skipped").height
        row["replicates"] = study.filter(pl.col("kind") == "replicate").height
        row["compute_hours"] = total_h
        row["trials_without_duration"] = study["_h"].null_count()
        row["second_half_near_best_pct"] = None if half_share is None else 100.0 * half_share
        rows.append(row)
        for p in ["architecture", *train_params]:
            for value, count in study.group_by(p).len().sort(p, nulls_last=True).iter_rows():
                counts_rows.append(
                    {
                        "study": name,
                        "parameter": p,
                        "value": None if value is None else str(value),
                        "trials": count,
                    }
                )
        for r in _untested_regions(study, ["architecture", *varying], row["space_size"]):
            region_rows.append(
                {"study": name, **r, "share_of_space_pct": 100.0 * r["configs_in_region"] / row["space_size"]}
            )
    per_study = pl.DataFrame(rows)
    by_state = (
        table.group_by("study", "budget", "state")
        .agg(pl.len().alias("trials"), _hours(pl.col("_h")).alias("compute_hours"))
        .with_columns(pl.col("state").cast(pl.String))
        .sort("study", "state")
    )
    by_budget = (
        table.group_by("budget", "state")
        .agg(pl.len().alias("trials"), _hours(pl.col("_h")).alias("compute_hours"))
        .with_columns(pl.col("state").cast(pl.String))
        .sort("budget", "state")
    )
    section.tables = {
        "studies": per_study,
        "waste": pl.DataFrame(waste_rows),
        "compute_by_state": by_state,
        "compute_by_budget": by_budget,
        "value_counts": pl.DataFrame(
            counts_rows,
            schema={"study": pl.String, "parameter": pl.String, "value": pl.String, "trials": pl.Int64},
        ),
        "untested_regions": pl.DataFrame(
            region_rows,
            schema={
                "study": pl.String,
                "region": pl.String,
                "configs_in_region": pl.Int64,
                "share_of_space_pct": pl.Float64,
            },
        ),
    }
    total_w = int(per_study["wasted"].sum())
    hours = per_study["wasted_hours"].sum()
    all_hours = per_study["compute_hours"].sum()
    section.headline = [
        f"{total_w} of {table.height} trials ({100.0 * total_w / table.height:.0f}%) bought no new information "
        "(" + ", ".join(f"{int(per_study[k].sum())} {k.replace('_', ' ')}" for k in WASTE_KINDS) + "); "
        f"{hours:.2f} of {all_hours:.2f} compute-hours. The pruner stopped {int(per_study['pruned'].sum())} trials "
        f"early, saving about {float(per_study['pruned_saved_hours'].fill_null(0.0).sum()):.2f} compute-hours "
        "(median COMPLETE trial minus what each ran): saved, not wasted.",
        "Exact repeats per study: " + ", ".join(f"{r['study']} {r['exact_repeat']}" for r in rows) + ".",
    ]
    section.data = {
        "waste_kinds": WASTE_KINDS,
        "neighbourhood": f"within {NEIGHBOURHOOD_STEPS} grid step of the best trial in every searched parameter",
        "repeats": table.filter(pl.col("kind").is_in(["exact_repeat", "effective_repeat"]))
        .select(
            "study", "trial_num", "kind", "duplicate_of", "effective_repeat_of", "objective", "duration_sec"
        )
        .to_dicts(),
    }
    section.plots = {"waste": draw("waste_bars", section.tables["waste"])}
    section.notes = [
        "Effective repeat: different parameters but the same training run (identical architecture and "
        "bit-identical objective and val_loss as an earlier COMPLETE trial), e.g. a warm-up longer than the run.",
        "Space size: the study's own distributions when known, else the grid of values the study tried "
        "(architectures tried x values of each training parameter): a lower bound.",
        "Second-half share near the best: trials of the study's second half within "
        f"{NEIGHBOURHOOD_STEPS} grid step of the best trial in every parameter; high = the sampler stopped exploring.",
        "Compute-hours from duration_sec; trials without a duration are counted in trials, not in hours.",
    ]
    return section
