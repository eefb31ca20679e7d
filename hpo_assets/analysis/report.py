"""hpo_report: one self-contained page (HTML with the plots embedded, and Markdown) that a researcher can send
to a colleague. Its first screen answers the campaign's questions: the budget x horizon grid and one
headline per horizon (analysis/grid.py); then the studies side by side, the winners' parameters, and each
section's detail (wide tables folded away), the diverged trials and where every file is."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.analysis import grid as campaign
from hpo_assets.analysis.rendering import draw, resolved
from hpo_assets.analysis.section import Section, as_folder, cell, markdown_table
from hpo_assets.outputs import write_bytes

DIVERGED_COLUMNS = [
    "study",
    "trial_num",
    "diverged_reason",
    "diverge_epoch",
    "d_model",
    "n_layers",
    "n_heads",
    "lr",
    "similar_successful_study",
    "similar_successful_trial",
    "neighbour_objective",
]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}h2{border-bottom:2px solid #ddd;margin-top:2em}.headline li{margin:.3em 0}
img{max-width:100%}.note{color:#555;font-size:13px}code{background:#f6f6f6}
.wide{overflow-x:auto;max-width:100%}details{margin:.4em 0}summary{cursor:pointer;color:#135}
table.grid td{vertical-align:top;min-width:12em;font-size:12px}table.grid th{font-size:13px}
.state-done{background:#eef8ee}.state-running{background:#fff7e0}.state-imported{background:#eef2fb}
.state-not{color:#999}.headlines li{margin:.5em 0;font-size:14px}"""


@dataclass
class FrontPage:
    """What the report opens with: the campaign grid, one headline per horizon, the terms, the studies
    side by side (figures per horizon) and the winners' parameters."""

    grid: pl.DataFrame
    headlines: list[str]
    winners: pl.DataFrame
    plots: dict[str, Any] = field(default_factory=dict)
    glossary: list[str] = field(default_factory=lambda: list(campaign.GLOSSARY))


def front_page(
    sections: list[Section], table: pl.DataFrame, outputs_root: Path | None, budgets: list[str] | None = None
) -> FrontPage:
    """The front page from the trial table and the scaling section (its verdicts and points)."""
    from hpo_assets.analysis.inputs import stored_study_attrs

    scal = next((s for s in sections if s.name == "scaling_report"), None)
    verdicts = list((scal.data or {}).get("verdicts", [])) if scal else []
    points = scal.tables.get("points") if scal else None
    if points is None or not isinstance(points, pl.DataFrame) or "evidence" not in points.columns:
        points = pl.DataFrame(
            schema={"horizon": pl.String, "budget": pl.String, "evidence": pl.String, "value": pl.Float64}
        )
    grid = campaign.campaign_grid(table, outputs_root, budgets, read_attrs=stored_study_attrs)
    heads = campaign.horizon_headlines(verdicts, points, outputs_root)
    horizons = sorted(set(table["horizon"].drop_nulls().to_list())) if table.height else []
    plots: dict[str, Any] = {}
    for h in horizons:
        plots[f"studies_{h}"] = draw("studies_side_by_side", table, h)
        has_curves = table.filter((pl.col("horizon") == h) & (pl.col("n_curve_epochs") > 0)).height > 0
        if has_curves:  # imports without curves: no empty panel
            plots[f"curves_{h}"] = draw("learning_curves", table, h)
    return FrontPage(
        grid, heads, campaign.winners_side_by_side(table) if table.height else pl.DataFrame(), plots
    )


def _grid_html(grid: pl.DataFrame) -> str:
    if grid.is_empty():
        return "<p class=note>(no study yet)</p>"
    horizons = grid["horizon"].unique(maintain_order=True).to_list()
    budgets = grid["row"].unique(maintain_order=True).to_list()
    cells = {(r["row"], r["horizon"]): r for r in grid.iter_rows(named=True)}
    head = "<tr><th>budget</th>" + "".join(f"<th>{html.escape(h)}</th>" for h in horizons) + "</tr>"
    body = ""
    for b in budgets:
        body += f"<tr><th>{html.escape(b)}</th>"
        for h in horizons:
            r = cells.get((b, h))
            state = (r or {}).get("state", "not started")
            body += f"<td class='state-{state.split()[0]}'>{html.escape(campaign.grid_cell(r) if r else 'not started')}</td>"
        body += "</tr>"
    return f"<div class=wide><table class=grid>{head}{body}</table></div>"


def _grid_md(grid: pl.DataFrame) -> list[str]:
    if grid.is_empty():
        return ["_(no study yet)_"]
    horizons = grid["horizon"].unique(maintain_order=True).to_list()
    cells = {(r["row"], r["horizon"]): r for r in grid.iter_rows(named=True)}
    out = ["| budget | " + " | ".join(horizons) + " |", "|---|" + "---|" * len(horizons)]
    for b in grid["row"].unique(maintain_order=True).to_list():
        out.append(
            f"| {b} | "
            + " | ".join(
                campaign.grid_cell(cells[(b, h)]) if (b, h) in cells else "not started" for h in horizons
            )
            + " |"
        )
    return out


def diverged_with_neighbours(df: pl.DataFrame) -> pl.DataFrame:
    """Diverged trials beside the objective of their nearest successful neighbour (same budget)."""
    div = df.filter(pl.col("diverged"))
    if div.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in DIVERGED_COLUMNS})
    nb = df.select(
        pl.col("study").alias("similar_successful_study"),
        pl.col("trial_num").alias("similar_successful_trial"),
        pl.col("objective").alias("neighbour_objective"),
    )
    return (
        div.join(nb, on=["similar_successful_study", "similar_successful_trial"], how="left")
        .select(DIVERGED_COLUMNS)
        .sort("study", "trial_num")
    )


def headline(sections: list[Section]) -> list[str]:
    """The sentences that open the report: scaling verdicts, waste, importance, consistency (in that order)."""
    order = ["scaling_report", "coverage_report", "importance_summary", "hp_consistency"]
    by_name = {s.name: s for s in sections}
    out = []
    for name in order:
        if name in by_name:
            out += by_name[name].headline[:4]
    return out


def _html_table(df: pl.DataFrame, limit: int = 40) -> str:
    if df.is_empty():
        return "<p class=note>(no rows)</p>"
    head = df.head(limit)
    cols = [c for c, t in head.schema.items() if not isinstance(t, pl.List | pl.Struct)]
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>"
        for r in head.select(cols).iter_rows()
    )
    end = "</div>"
    more = f"<p class=note>{df.height - limit} more rows in the CSV</p>" if df.height > limit else ""
    return f"<div class=wide><table><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr>{rows}</table>{end}{more}"


def _img(name: str, png: bytes) -> str:
    return f"<img alt='{html.escape(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def render(
    sections: list[Section],
    diverged: pl.DataFrame,
    files: dict[str, str],
    generated: str | None = None,
    front: FrontPage | None = None,
) -> tuple[str, str]:
    """(html, markdown) of the whole report: the front page, then each section's detail."""
    generated = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = headline(sections)
    h = [
        f"<!doctype html><html><head><meta charset=utf-8><title>HPO report</title><style>{_CSS}</style></head><body>",
        f"<h1>HPO report</h1><p class=note>generated {generated}</p>",
    ]
    md = ["# HPO report", "", f"generated {generated}", ""]
    if front is not None:
        h += [
            "<h2>Campaign</h2>",
            _grid_html(front.grid),
            "<h2>Headlines, one per horizon</h2><ul class=headlines>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in front.headlines)
            + "</ul>",
            "<details><summary>What the terms mean</summary><ul class=note>"
            + "".join(f"<li>{html.escape(g)}</li>" for g in front.glossary)
            + "</ul></details>",
        ]
        md += ["## Campaign", "", *_grid_md(front.grid), "", "## Headlines, one per horizon", ""]
        md += (
            [f"- {s}" for s in front.headlines]
            + ["", "_Terms:_", ""]
            + [f"- {g}" for g in front.glossary]
            + [""]
        )
        if front.plots or not front.winners.is_empty():
            h.append("<h2>Studies side by side</h2>")
            md += ["## Studies side by side", ""]
            for name, png in front.plots.items():
                h.append(_img(name, png))
                md += [f"![{name}](hpo_report_{name}.png)", ""]
            h.append(f"<h3>Winners' parameters across budgets</h3>{_html_table(front.winners)}")
            md += ["### Winners' parameters across budgets", "", markdown_table(front.winners, 40), ""]
        h.append(
            "<h2>Details</h2><ul class=headline>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in lines)
            + "</ul>"
        )
        md += ["## Details", ""] + [f"- {s}" for s in lines] + [""]
    else:
        h.append("<ul class=headline>" + "".join(f"<li>{html.escape(s)}</li>" for s in lines) + "</ul>")
        md += [f"- {s}" for s in lines] + [""]
    for s in sections:
        h.append(
            f"<h2>{html.escape(s.title)}</h2><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in s.headline)
            + "</ul>"
        )
        md += [f"## {s.title}", ""] + [f"- {x}" for x in s.headline] + [""]
        for name, png in s.plots.items():
            h.append(_img(name, png))
            md += [f"![{s.name} {name}]({s.name}_{name}.png)", ""]
        for name, df in s.tables.items():
            title = html.escape(name.replace("_", " "))
            h.append(
                f"<details><summary>{title} ({df.height} rows, {df.width} columns)</summary>{_html_table(df)}</details>"
            )
            md += [f"### {name.replace('_', ' ')}", "", markdown_table(df, 40), ""]
        if s.notes:
            h.append("<ul class=note>" + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>")
            md += [f"- _{n}_" for n in s.notes] + [""]
    h.append(f"<h2>Diverged trials and their nearest successful neighbour</h2>{_html_table(diverged)}")
    md += ["## Diverged trials and their nearest successful neighbour", "", markdown_table(diverged, 40), ""]
    h.append(
        "<h2>Where every file is</h2><div class=wide><table>"
        + "".join(
            f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>"
            for k, v in files.items()
        )
        + "</table></div>"
    )
    md += (
        ["## Where every file is", "", "| what | path |", "|---|---|"]
        + [f"| {k} | `{v}` |" for k, v in files.items()]
        + [""]
    )
    h.append("</body></html>")
    return "\n".join(h), "\n".join(md)


def write_report(
    sections: list[Section],
    table: pl.DataFrame,
    out_dir: Path,
    files: dict[str, str],
    outputs_root: Path | None = None,
    budgets: list[str] | None = None,
) -> dict[str, Path]:
    """hpo_report.html, hpo_report.md and hpo_report.json (grid, headlines, file index) into out_dir, and
    the front page's figures as hpo_report_<name>.png. `outputs_root` holds the models' cards."""
    out_dir = as_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    diverged = diverged_with_neighbours(table)
    front = front_page(sections, table, outputs_root, budgets)
    front.plots = resolved(front.plots)
    paths = {"html": out_dir / "hpo_report.html", "md": out_dir / "hpo_report.md"}
    for name, png in front.plots.items():
        paths[f"png_{name}"] = out_dir / f"hpo_report_{name}.png"
        write_bytes(paths[f"png_{name}"], png)
    files = {**files, "report (HTML)": str(paths["html"]), "report (Markdown)": str(paths["md"])}
    page, md = render(sections, diverged, files, front=front)
    write_bytes(paths["html"], page.encode())
    write_bytes(paths["md"], md.encode())
    paths["json"] = out_dir / "hpo_report.json"
    doc = {
        "headline": headline(sections),
        "horizon_headlines": front.headlines,
        "grid": front.grid.to_dicts(),
        "files": files,
        "diverged": diverged.to_dicts(),
    }
    write_bytes(paths["json"], json.dumps(doc, indent=1, default=str).encode())
    return paths
