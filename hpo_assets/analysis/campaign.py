"""Every report of a trial table written into one folder: what `hpo-assets analyze` does (the Dagster assets
call the same functions one report at a time)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hpo_assets.analysis import importance as imp
from hpo_assets.analysis.consistency import consistency
from hpo_assets.analysis.coverage import coverage
from hpo_assets.analysis.inputs import LogitsReader, stored_val_outputs
from hpo_assets.analysis.report import write_report
from hpo_assets.analysis.scaling import scaling
from hpo_assets.analysis.section import Section, as_folder, write_section
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
    """Write coverage, importance (per partition + summary), scaling, consistency and the HTML/Markdown report."""
    out_dir = as_folder(out_dir)
    files: dict[str, Path] = {}
    sections: list[Section] = []

    def emit(section: Section) -> None:
        for key, path in write_section(section, out_dir).items():
            files[f"{section.name} {key}"] = path

    cov = coverage(table)
    emit(cov)
    parts = []
    keys = partitions(table)
    if workers > 1 and len(keys) > 1:  # partitions are independent: one process each, up to `workers`
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: forking a process whose polars/BLAS thread pools are running can deadlock
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = [
                pool.submit(
                    imp.importance,
                    table.filter((pl.col("budget") == b) & (pl.col("horizon") == h)),
                    b,
                    h,
                    settings,
                )
                for b, h in keys
            ]
            done = [f.result() for f in futures]
    else:
        done = [imp.importance(table, b, h, settings) for b, h in keys]
    for part in done:
        emit(part)
        parts.append(part.tables["importances"])
    summ = imp.summary(parts)
    emit(summ)
    scal = scaling(table, outputs_root=outputs_root, read_logits=read_logits)
    emit(scal)
    cons = consistency(table, read_logits=read_logits)
    emit(cons)
    warm = warm_starts(table)
    emit(warm)
    sections = [scal, cov, summ, cons, warm]
    index = {k: str(v) for k, v in files.items() if k.endswith((" md", " json")) or k.endswith(".png")}
    report = write_report(sections, table, out_dir, {**(extra_files or {}), **index})
    files.update({f"hpo_report {k}": v for k, v in report.items()})
    return files
