"""Live studies (written by the `hpo_study` asset) and imported trials kept between asset runs.

The storage is a folder of `*.journal` files (one per study) or an Optuna RDB URL; a folder that does
not exist yet simply holds no studies (reading never creates anything).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from hpo_assets.locations import is_url
from hpo_assets.outputs import atomic_write, read_parquet
from hpo_assets.trials.importers import ImportProblem, ImportResult, read_sources
from hpo_assets.trials.schema import conform, empty_table, to_table

IMPORTED_PARQUET = "imported_trials.parquet"
IMPORT_REPORT = "import_report.json"


def live_sources(storage_spec: str) -> list[str]:
    """What to read for the live studies: the URL itself, or every journal file in the folder."""
    if is_url(storage_spec):
        return [storage_spec]
    folder = Path(storage_spec).expanduser()
    if folder.is_file() and folder.suffix == ".journal":
        return [str(folder)]
    return [str(p) for p in sorted(folder.glob("*.journal"))] if folder.is_dir() else []


def read_live(storage_spec: str) -> ImportResult:
    """Every live study in the storage (empty result when there is none yet)."""
    return read_sources(live_sources(storage_spec))


def count_source_trials(storage_spec: str) -> dict[str, int]:
    """Trials per study counted through Optuna's own API (an independent count for asset checks)."""
    import optuna

    from hpo_assets.trials.importers.optuna_storage import open_source

    counts: dict[str, int] = {}
    for spec in live_sources(storage_spec):
        storage = open_source(spec)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            counts[summary.study_name] = summary.n_trials
    return counts


def save_import(result: ImportResult, folder: Any, sources: list[str]) -> dict[str, Any]:
    """Store imported rows (parquet) and the import report (JSON), each replaced atomically."""
    table = to_table(result.rows)
    report = {
        "sources": sources,
        "n_read": result.n_read,
        "n_skipped": result.n_skipped,
        "studies": {
            s.study: {"source": s.source, "path": s.source_path, "trials": len(s.rows)}
            for s in result.studies
        },
        "problems": [{"path": p.path, "problem": p.problem} for p in result.all_problems],
        "notes": [{"path": p.path, "problem": p.problem} for p in result.all_notes],
    }
    paths = {"table": folder / IMPORTED_PARQUET, "report": folder / IMPORT_REPORT}
    atomic_write(paths["table"], table.write_parquet)
    atomic_write(paths["report"], lambda p: p.write_text(json.dumps(report, indent=1)))
    return paths


def load_import(folder: Any) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Imported rows and report as saved by save_import; empty when nothing was imported yet."""
    table_path, report_path = folder / IMPORTED_PARQUET, folder / IMPORT_REPORT
    table = conform(read_parquet(table_path)) if table_path.is_file() else empty_table()
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return table, report


def problems_from(report: dict[str, Any], key: str = "problems") -> list[ImportProblem]:
    return [ImportProblem(p["path"], p["problem"]) for p in report.get(key, [])]


def assemble(live: ImportResult, imported: pl.DataFrame) -> tuple[pl.DataFrame, list[ImportProblem], int]:
    """Live and imported trials in one derived table, the notes, and how many imported trials were used.

    An imported study named like a live one is the live study when its finished trials are all in the live
    one (an earlier copy, or the live storage imported again): then it is left out, and said so. Otherwise
    it is another study of the same name (another machine or storage): kept as `name@<source>`."""
    from hpo_assets.trials.extract import build_table
    from hpo_assets.trials.identity import distinct_name, fingerprint

    live_table = to_table(live.rows)
    names = set(live_table["study"].to_list())
    live_trials = {name: set(fingerprint([r for r in live.rows if r["study"] == name])) for name in names}
    taken = names | set(imported["study"].to_list())
    notes: list[ImportProblem] = []
    parts = [imported.filter(~pl.col("study").is_in(names))]
    clash = imported.filter(pl.col("study").is_in(names))
    for (study, path), rows in sorted(
        clash.group_by("study", "source_path"), key=lambda g: (g[0][0], str(g[0][1]))
    ):
        finished = [r for r in rows.iter_rows(named=True) if r["state"] in ("COMPLETE", "PRUNED", "FAIL")]
        if set(fingerprint(finished)) <= live_trials[study]:
            notes.append(
                ImportProblem(
                    str(path),
                    f"imported study {study!r} is the live study {study!r} "
                    f"(its trials are the live one's): its {rows.height} trials are not used twice",
                )
            )
            continue
        name = distinct_name(str(study), str(path), taken)
        taken.add(name)
        notes.append(
            ImportProblem(
                str(path),
                f"imported study {study!r} is another study than the live one of "
                f"that name: its {rows.height} trials are kept as {name!r}",
            )
        )
        parts.append(rows.with_columns(pl.lit(name).alias("study")))
    used = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    return build_table([live_table, used]), notes, used.height
