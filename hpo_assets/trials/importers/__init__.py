"""Readers for the four trial sources, and `read_sources`, which finds and reads them all.

A source is an Optuna storage URL, a journal/SQLite file, an export folder, a per-trial JSON study
folder, or any folder holding those (walked). What cannot be read is reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo_assets.locations import is_url
from hpo_assets.trials.identity import distinct_name, same_study
from hpo_assets.trials.importers.optuna_storage import is_journal_file, is_sqlite_file, read_optuna_storage
from hpo_assets.trials.importers.records import ImportProblem, SourceError, StudyRead
from hpo_assets.trials.importers.template_export import ALL_TRIALS, BEST_PARAMS, is_export_folder, read_export
from hpo_assets.trials.importers.trial_json import is_trial_json_folder, read_trial_json_folder

__all__ = ["ImportProblem", "ImportResult", "Source", "SourceError", "StudyRead", "discover", "read_sources"]


@dataclass(frozen=True)
class Source:
    """One readable thing: `kind` is optuna_storage, export or trial_json; `location` a URL or path."""

    kind: str
    location: str


@dataclass
class ImportResult:
    """Everything read from a list of sources, with every problem found on the way."""

    studies: list[StudyRead] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    notes: list[ImportProblem] = field(default_factory=list)
    skipped: int = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for s in self.studies for row in s.rows]

    @property
    def n_read(self) -> int:
        return sum(len(s.rows) for s in self.studies)

    @property
    def all_problems(self) -> list[ImportProblem]:
        return self.problems + [p for s in self.studies for p in s.problems]

    @property
    def n_skipped(self) -> int:
        return self.skipped + sum(s.skipped for s in self.studies)

    @property
    def all_notes(self) -> list[ImportProblem]:
        return self.notes + [n for s in self.studies for n in s.notes]


def discover(spec: str) -> tuple[list[Source], list[ImportProblem]]:
    """The sources a command-line argument names: a URL, a storage file, a study folder, or a folder of them."""
    if is_url(spec):
        return [Source("optuna_storage", spec)], []
    path = Path(spec).expanduser()
    if not path.exists():
        return [], [ImportProblem(spec, "does not exist")]
    if path.is_file():
        if is_journal_file(path):
            return [Source("optuna_storage", str(path))], []
        if is_sqlite_file(path):
            return [Source("optuna_storage", f"sqlite:///{path.resolve()}")], []
        if path.name == ALL_TRIALS:
            return [Source("export", str(path.parent))], []
        return [], [
            ImportProblem(
                spec, "not a study source (expected a folder, a .journal/.db file or a storage URL)"
            )
        ]
    found: list[Source] = []
    problems: list[ImportProblem] = []
    empty: list[str] = []
    _walk(path, found, problems, empty)
    if not found and not problems:
        problems.append(
            ImportProblem(
                spec, f"no studies found (no {ALL_TRIALS}, trials/trial_*.json, *.journal or *.db inside)"
            )
        )
    elif empty:  # ordinary folders of a results tree: one counted line, not one line each
        shown = ", ".join(str(Path(e).relative_to(path)) if Path(e) != path else "." for e in empty[:3])
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        problems.append(
            ImportProblem(spec, f"no studies found in {len(empty)} folder(s) inside ({shown}{more})")
        )
    return found, problems


def _walk(folder: Path, found: list[Source], problems: list[ImportProblem], empty: list[str]) -> None:
    if is_export_folder(folder):
        found.append(Source("export", str(folder)))
        return
    if is_trial_json_folder(folder):
        found.append(Source("trial_json", str(folder)))
        return
    if (folder / BEST_PARAMS).is_file():
        problems.append(
            ImportProblem(str(folder), f"has {BEST_PARAMS} but no {ALL_TRIALS}: no trials to read")
        )
        return
    if (folder / "trials").is_dir():
        problems.append(ImportProblem(str(folder / "trials"), "no trial_*.json files: no trials to read"))
        return
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        problems.append(ImportProblem(str(folder), f"cannot be listed ({exc.strerror or exc})"))
        return
    before = len(found)
    has_subfolders = False
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            has_subfolders = True
            _walk(child, found, problems, empty)
        elif is_journal_file(child):
            found.append(Source("optuna_storage", str(child)))
        elif is_sqlite_file(child):
            found.append(Source("optuna_storage", f"sqlite:///{child.resolve()}"))
    if len(found) == before and not has_subfolders:
        empty.append(str(folder))


def read_source(source: Source, study_names: list[str] | None = None) -> list[StudyRead]:
    """Read one discovered source; raises SourceError when it cannot be read at all."""
    if source.kind == "optuna_storage":
        return read_optuna_storage(source.location, study_names)
    if source.kind == "export":
        return [read_export(Path(source.location))]
    if source.kind == "trial_json":
        return [read_trial_json_folder(Path(source.location))]
    raise SourceError(f"{source.location}: unknown source kind {source.kind!r}")


def read_sources(specs: Iterable[str], study_names: list[str] | None = None) -> ImportResult:
    """Discover and read every source. A study read twice (same `study_uid`, or the same trials) is kept
    once; another study with a name already taken is kept too, renamed `name@<where it came from>`.

    `study_names` restricts Optuna storages to those studies (export folders are always read).
    """
    result = ImportResult()
    seen: dict[str, StudyRead] = {}
    for spec in specs:
        sources, problems = discover(str(spec))
        result.problems.extend(problems)
        for source in sources:
            try:
                reads = read_source(source, study_names if source.kind == "optuna_storage" else None)
            except SourceError as exc:
                result.problems.append(
                    ImportProblem(source.location, str(exc).removeprefix(f"{source.location}: "))
                )
                continue
            for read in reads:
                first = seen.get(read.study)
                if first is not None and same_study(first.uid, first.rows, read.uid, read.rows):
                    result.notes.append(
                        ImportProblem(
                            read.source_path,
                            f"study {read.study!r} is the one already read from {first.source_path}: "
                            f"its {len(read.rows)} trials are not read twice",
                        )
                    )
                    result.skipped += len(read.rows)
                    continue
                if first is not None:
                    name = distinct_name(read.study, read.source_path, set(seen))
                    result.notes.append(
                        ImportProblem(
                            read.source_path,
                            f"another study named {read.study!r} was read from {first.source_path}: "
                            f"this one is kept beside it as {name!r}",
                        )
                    )
                    read.rename(name)
                seen[read.study] = read
                result.studies.append(read)
    return result
