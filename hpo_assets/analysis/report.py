"""hpo_report: one self-contained page (HTML with the plots embedded, and Markdown) that a researcher can send
to a colleague - the headline sentences with their intervals, each section with its tables and plots, the
diverged trials with their nearest successful neighbour, the baselines, and where every file is."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from pathlib import Path

import polars as pl

from hpo_assets.analysis.section import Section, as_folder, cell, markdown_table
from hpo_assets.outputs import write_bytes

DIVERGED_COLUMNS = ["study", "trial_num", "diverged_reason", "diverge_epoch", "d_model", "n_layers", "n_heads", "lr",
                    "similar_successful_study", "similar_successful_trial", "neighbour_objective"]  # fmt: skip

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#f3f3f3}h2{border-bottom:2px solid #ddd;margin-top:2em}.headline li{margin:.3em 0}
img{max-width:100%}.note{color:#555;font-size:13px}code{background:#f6f6f6}"""


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
    more = f"<p class=note>{df.height - limit} more rows in the CSV</p>" if df.height > limit else ""
    return f"<table><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr>{rows}</table>{more}"


def render(
    sections: list[Section], diverged: pl.DataFrame, files: dict[str, str], generated: str | None = None
) -> tuple[str, str]:
    """(html, markdown) of the whole report."""
    generated = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = headline(sections)
    h = [f"<!doctype html><html><head><meta charset=utf-8><title>HPO report</title><style>{_CSS}</style></head><body>",
         f"<h1>HPO report</h1><p class=note>generated {generated}</p>",
         "<ul class=headline>" + "".join(f"<li>{html.escape(s)}</li>" for s in lines) + "</ul>"]  # fmt: skip
    md = ["# HPO report", "", f"generated {generated}", ""] + [f"- {s}" for s in lines] + [""]
    for s in sections:
        h.append(
            f"<h2>{html.escape(s.title)}</h2><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in s.headline)
            + "</ul>"
        )
        md += [f"## {s.title}", ""] + [f"- {x}" for x in s.headline] + [""]
        for name, png in s.plots.items():
            h.append(
                f"<img alt='{html.escape(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
            )
            md += [f"![{s.name} {name}]({s.name}_{name}.png)", ""]
        for name, df in s.tables.items():
            h.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3>{_html_table(df)}")
            md += [f"### {name.replace('_', ' ')}", "", markdown_table(df, 40), ""]
        if s.notes:
            h.append("<ul class=note>" + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>")
            md += [f"- _{n}_" for n in s.notes] + [""]
    h.append(f"<h2>Diverged trials and their nearest successful neighbour</h2>{_html_table(diverged)}")
    md += ["## Diverged trials and their nearest successful neighbour", "", markdown_table(diverged, 40), ""]
    h.append(
        "<h2>Where every file is</h2><table>"
        + "".join(
            f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>"
            for k, v in files.items()
        )
        + "</table>"
    )
    md += (
        ["## Where every file is", "", "| what | path |", "|---|---|"]
        + [f"| {k} | `{v}` |" for k, v in files.items()]
        + [""]
    )
    h.append("</body></html>")
    return "\n".join(h), "\n".join(md)


def write_report(
    sections: list[Section], table: pl.DataFrame, out_dir: Path, files: dict[str, str]
) -> dict[str, Path]:
    """hpo_report.html, hpo_report.md and hpo_report.json (headline + file index) into out_dir."""
    out_dir = as_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    diverged = diverged_with_neighbours(table)
    paths = {"html": out_dir / "hpo_report.html", "md": out_dir / "hpo_report.md"}
    files = {**files, "report (HTML)": str(paths["html"]), "report (Markdown)": str(paths["md"])}
    page, md = render(sections, diverged, files)
    write_bytes(paths["html"], page.encode())
    write_bytes(paths["md"], md.encode())
    paths["json"] = out_dir / "hpo_report.json"
    doc = {"headline": headline(sections), "files": files, "diverged": diverged.to_dicts()}
    write_bytes(paths["json"], json.dumps(doc, indent=1, default=str).encode())
    return paths
