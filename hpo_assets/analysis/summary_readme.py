"""README.md written next to the summary files: computed headline facts, lineage, every column, example queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from hpo_assets.trials.schema import COLUMN_DOCS, TRIAL_SCHEMA, type_name

_QUERIES = """\
### polars

```python
import polars as pl
df = pl.read_parquet("hpo_summary.parquet")
# best trial of every study
df.filter(pl.col("is_best_in_study")).select("study", "trial_num", "objective", "d_model", "n_layers", "lr")
# trials per architecture category that diverged
df.group_by("arch_category").agg(pl.len(), pl.col("diverged").sum())
# one row per epoch
df.select("study", "trial_num", "learning_curve").explode("learning_curve").unnest("learning_curve")
```

### pandas

```python
import pandas as pd
df = pd.read_csv("hpo_summary.csv")
df[df.rank_in_study == 1][["study", "trial_num", "objective"]]
df.groupby("budget").objective.describe()
df[df.duplicate_of.notna()].groupby("study").size()   # wasted (duplicate) trials per study
```

### jq

```sh
jq '.metadata' hpo_full.json
jq '[.trials[] | select(.is_best_in_study)] | map({study, trial_num, objective})' hpo_full.json
jq '.trials[] | select(.diverged) | {study, trial_num, diverged_reason, curve: [.learning_curve[].val_loss]}' hpo_full.json
```
"""


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_readme(
    table: pl.DataFrame,
    overview: pl.DataFrame,
    *,
    generated: str,
    sources: Sequence[str] = (),
    problems: Sequence[Any] = (),
    notes: Sequence[Any] = (),
    n_skipped: int = 0,
) -> str:
    """The README text; every figure in it is computed from `table`."""
    n = table.height
    n_div = int(table["diverged"].sum()) if n else 0
    n_dup = int(table["duplicate_of"].is_not_null().sum()) if n else 0
    states = table.group_by("state").len().sort("state").iter_rows() if n else []
    state_text = ", ".join(f"{s}: {c}" for s, c in states) or "none"
    parts = [
        "# HPO trial summary",
        "",
        f"Generated {generated} by `hpo-assets extract` / the `hpo_summary` asset. Every row is one trial of one "
        "study, normalized to one schema whatever the source (Optuna storage, export folder, per-trial JSON).",
        "",
        "## Headline facts",
        "",
        f"- studies: {table['study'].n_unique() if n else 0}",
        f"- trials: {n} ({state_text}); trials skipped while reading: {n_skipped}",
        f"- diverged trials: {n_div}",
        f"- duplicate trials (same parameters as an earlier COMPLETE trial of the same study): {n_dup}",
        f"- problems found while reading: {len(problems)}",
        "",
        _md_table(
            [
                "study",
                "source",
                "budget",
                "horizon",
                "tier",
                "trials",
                "complete",
                "best value",
                "best trial",
                "duplicates",
                "diverged",
            ],
            [list(r) for r in overview.iter_rows()],
        ),
        "",
        "## Files",
        "",
        "- `hpo_summary.csv`: one row per trial, every column below except `learning_curve`.",
        "- `hpo_summary.parquet`: the same rows with `learning_curve` (list of per-epoch structs).",
        '- `hpo_full.json`: `{"metadata": {...}, "trials": [...]}`, trials with their learning curves.',
        "- `diverged_analysis.csv` / `.json`: diverged trials with the diagnosis columns and full curves "
        "(the CSV holds the curves as JSON lists `val_loss_curve`, `train_loss_curve`).",
        "",
        "## Lineage",
        "",
        "Sources given: " + (", ".join(f"`{s}`" for s in sources) or "none") + ".",
        "",
    ]
    if n:
        lineage = table.group_by("study", "source", "source_path", maintain_order=True).len().sort("study")
        parts.append(
            _md_table(["study", "reader", "read from", "trials"], [list(r) for r in lineage.iter_rows()])
        )
        parts.append("")
    if problems:
        parts += ["Problems (each reported, the rest imported):", ""] + [f"- {p}" for p in problems] + [""]
    if notes:
        parts += ["Notes:", ""] + [f"- {x}" for x in notes] + [""]
    parts += [
        "Budget, horizon and tier come from the study or folder name when a file's own metadata disagrees. "
        "In export folders `value` is the validation ROC-AUC (maximised); in per-trial JSON folders it is the "
        "validation loss (minimised); Optuna storages keep the study's own direction. Unknown values are empty, "
        "never invented.",
        "",
        "## Columns",
        "",
        _md_table(
            ["column", "type", "meaning"],
            [[c, type_name(t), COLUMN_DOCS[c]] for c, t in TRIAL_SCHEMA.items()],
        ),
        "",
        "Extra columns of `diverged_analysis.csv`: `val_loss_curve`, `train_loss_curve` (JSON lists, one value per epoch).",
        "",
        "## Example queries",
        "",
        _QUERIES,
    ]
    return "\n".join(parts)
