"""One report section (headline sentences, tables, notes, plots) and how it is written to disk:
`<name>.json`, `<name>.md`, one CSV per table and one PNG per plot, so the CLI and the assets write the same files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.outputs import atomic_write, write_bytes


def as_folder(folder: Any) -> Any:
    """A folder as given: `str` becomes a local Path; a Path or an object-store UPath stays as it is."""
    return Path(folder) if isinstance(folder, str) else folder


@dataclass
class Section:
    name: str
    title: str
    headline: list[str] = field(default_factory=list)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)  # plot name -> PNG bytes


def cell(value: Any, digits: int = 4) -> str:
    """A table cell for Markdown/HTML: floats to `digits` significant digits, null as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:.3e}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pl.DataFrame, limit: int | None = 50) -> str:
    if df.is_empty():
        return "_(no rows)_"
    head = df if limit is None else df.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if limit is not None and df.height > limit:
        lines.append(f"\n_{df.height - limit} more rows in the CSV_")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def to_markdown(section: Section, plot_files: dict[str, str] | None = None) -> str:
    parts = [f"# {section.title}", ""]
    parts += [f"- {s}" for s in section.headline] + [""]
    for name, df in section.tables.items():
        parts += [f"## {name.replace('_', ' ')}", "", markdown_table(df), ""]
    for name, file in (plot_files or {}).items():
        parts += [f"![{name}]({file})", ""]
    if section.notes:
        parts += ["## notes", ""] + [f"- {n}" for n in section.notes] + [""]
    return "\n".join(parts)


def write_section(section: Section, out_dir: Path) -> dict[str, Path]:
    """Write the section's JSON, Markdown, CSVs and PNGs into out_dir (each file replaced atomically)."""
    out_dir = as_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plot_files = {}
    for name, png in section.plots.items():
        path = out_dir / f"{section.name}_{name}.png"
        write_bytes(path, png)
        written[f"{name}.png"] = path
        plot_files[name] = path.name
    for name, df in section.tables.items():
        path = out_dir / f"{section.name}_{name}.csv"
        flat = df.select([c for c, t in df.schema.items() if not isinstance(t, pl.List | pl.Struct)])
        atomic_write(path, flat.write_csv)
        written[f"{name}.csv"] = path
    doc = {
        "name": section.name,
        "title": section.title,
        "headline": section.headline,
        "notes": section.notes,
        "data": section.data,
        "tables": {name: df.to_dicts() for name, df in section.tables.items()},
        "plots": plot_files,
    }
    json_path = out_dir / f"{section.name}.json"
    write_bytes(json_path, json.dumps(_jsonable(doc), indent=1, default=str).encode())
    written["json"] = json_path
    md_path = out_dir / f"{section.name}.md"
    write_bytes(md_path, to_markdown(section, plot_files).encode())
    written["md"] = md_path
    return written


def read_section(out_dir: Path, name: str) -> dict[str, Any] | None:
    """A section's JSON written earlier (e.g. one importance partition), None when absent or unreadable."""
    path = as_folder(out_dir) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_section(out_dir: Path, name: str) -> Section | None:
    """A section rebuilt from its written JSON and PNGs (how the report asset reads the other assets' output)."""
    doc = read_section(out_dir, name)
    if not isinstance(doc, dict):
        return None
    plots = {}
    for plot, file in (doc.get("plots") or {}).items():
        path = as_folder(out_dir) / file
        if path.is_file():
            plots[plot] = path.read_bytes()
    tables = {}
    for tname, rows in (doc.get("tables") or {}).items():
        try:
            tables[tname] = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        except (TypeError, ValueError, pl.exceptions.PolarsError):
            tables[tname] = pl.DataFrame()
    return Section(
        name=doc.get("name", name),
        title=doc.get("title", name),
        headline=list(doc.get("headline") or []),
        tables=tables,
        data=doc.get("data") or {},
        notes=list(doc.get("notes") or []),
        plots=plots,
    )
