"""Every report of a trial table written into one folder: what `hpo-assets analyze` does (the Dagster assets
call the same functions one report at a time)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hpo_assets.analysis import importance as imp
from hpo_assets.analysis.consistency import consistency
from hpo_assets.analysis.coverage import coverage
from hpo_assets.analysis.inputs import LogitsReader, stored_val_outputs
from hpo_assets.analysis.rendering import renderers, resolved
from hpo_assets.analysis.report import write_report
from hpo_assets.analysis.scaling import scaling
from hpo_assets.analysis.section import as_folder, write_section
from hpo_assets.analysis.warm_start import warm_starts


def partitions(df: pl.DataFrame) -> list[tuple[str, str]]:
    """(budget, horizon) pairs that have trials, in table order."""
    if df.is_empty():
        return []
    keys = df.select("budget", "horizon").drop_nulls().unique(maintain_order=True)
    return [(b, h) for b, h in keys.iter_rows()]


def analyze(
    table: pl.DataFrame,
    out_dir: Path,
    *,
    outputs_root: Path | None = None,
    settings: imp.ImportanceSettings | None = None,
    read_logits: LogitsReader = stored_val_outputs,
    extra_files: dict[str, str] | None = None,
    workers: int = 1,
) -> dict[str, Path]:
    """Write coverage, importance (per partition + summary), scaling, consistency and the HTML/Markdown report.

    `workers` > 1: the figures are drawn by `workers - 1` helper processes while this one computes the
    statistics (rendering.py); every number is computed here either way, so the files are the same."""
    out_dir = as_folder(out_dir)
    with renderers(workers - 1):
        cov = coverage(table)
        parts = [imp.importance(table, b, h, settings) for b, h in partitions(table)]
        summ = imp.summary([p.tables["importances"] for p in parts])
        scal = scaling(table, outputs_root=outputs_root, read_logits=read_logits)
        cons = consistency(table, read_logits=read_logits)
        warm = warm_starts(table)
        written = [cov, *parts, summ, scal, cons, warm]
        for section in written:
            section.plots = resolved(section.plots)
    files: dict[str, Path] = {}
    for section in written:
        for key, path in write_section(section, out_dir).items():
            files[f"{section.name} {key}"] = path
    sections = [scal, cov, summ, cons, warm]
    index = {k: str(v) for k, v in files.items() if k.endswith((" md", " json")) or k.endswith(".png")}
    report = write_report(
        sections, table, out_dir, {**(extra_files or {}), **index}, outputs_root=outputs_root
    )
    files.update({f"hpo_report {k}": v for k, v in report.items()})
    return files
