"""Where studies live: one journal file per study in a folder (embedded default), or any Optuna RDB URL."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalStorage

from hpo_assets.locations import expand_env, is_url, mask_password, unmask
from hpo_assets.search import storage_locks
from hpo_assets.search.journal_file import JournalDamaged, JournalFile, repair_torn_tail, scan
from hpo_assets.settings import env

JOURNAL_SUFFIX = ".journal"
# SQLAlchemy dialects Optuna's RDBStorage is known to work with.
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


_log = logging.getLogger("hpo_assets.storage")


class StorageError(ValueError):
    """A storage spec that cannot be used (bad URL, unreachable database, unreadable folder)."""


class StorageMissing(StorageError):
    """A reader's storage that does not exist (no folder, journal or SQLite file; no Optuna tables)."""


def _check_url(spec: str) -> None:
    scheme = spec.split("://", 1)[0]
    dialect = scheme.split("+", 1)[0]
    if dialect not in RDB_SCHEMES:
        raise StorageError(
            f"storage URL {mask_password(spec)!r}: unsupported scheme {scheme!r}; use sqlite:///file.db, "
            "postgresql://user@host/db, or a folder path for journal files"
        )


def journal_path(spec: str, study_name: str) -> Path:
    """The journal file of `study_name` when `spec` is a folder (or already a `.journal` file)."""
    path = Path(spec).expanduser()
    if path.suffix == JOURNAL_SUFFIX:
        return path
    return path / f"{study_name}{JOURNAL_SUFFIX}"


def open_storage(
    spec: str, study_name: str = "", *, create: bool = True, log: Callable[[str], Any] | None = None
) -> BaseStorage:
    """The Optuna storage holding `study_name`: an RDB for a URL, else the study's journal file.

    `create=False` is for readers: a journal or SQLite file that does not exist is an error instead of
    being created, and `spec` may name a journal file directly. `log` hears about a repaired journal.
    """
    if not spec or not spec.strip():
        raise StorageError("storage is empty; give a folder for journal files or an Optuna storage URL")
    if is_url(spec):
        _check_url(spec)
        spec = unmask(spec, [env("HPO_ASSETS_STORAGE")])  # a trial table's masked source_path
        if not create and spec.startswith("sqlite:///"):
            db = Path(spec.removeprefix("sqlite:///"))
            if not db.is_file():
                raise StorageMissing(f"{mask_password(spec)}: no SQLite file at {db}")
        return _rdb(spec) if create else _rdb_reader(spec)
    given = Path(spec).expanduser()
    path = given if not create and given.is_file() else journal_path(spec, study_name)
    if not create:
        if not path.is_file():
            raise StorageMissing(f"{spec}: no journal file there")
        return _journal(path, repair=False)  # a reader changes nothing: Optuna skips a torn last line
    if path.parent.exists() and not path.parent.is_dir():
        raise StorageError(f"storage folder {str(path.parent)!r} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"storage folder {str(path.parent)!r} cannot be used: {exc.strerror}") from exc
    return _journal(path, log=log)


def _rdb(spec: str) -> RDBStorage:
    """Optuna's RDBStorage; its tables are created under a lock all workers share (see storage_locks.py)."""
    try:
        with storage_locks.locked(spec, storage_locks.SCHEMA_KEY):
            return RDBStorage(expand_env(spec))
    except (
        Exception
    ) as exc:  # SQLAlchemy / driver errors: name the URL, what failed and the cause in one line
        raise _open_error(spec, exc) from exc


def _open_error(spec: str, exc: Exception) -> StorageError:
    import sqlalchemy.exc as sa_exc

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.ProgrammingError):
        what = "creating or checking Optuna's tables failed"
    elif isinstance(exc, sa_exc.OperationalError):
        what = "the database cannot be reached or opened"
    else:
        what = type(exc).__name__
    return StorageError(
        f"storage URL {mask_password(spec)!r} cannot be opened ({what}): {mask_password(reason)}"
    )


# Tables that Optuna's RDBStorage fills when it sets a database up: a reader needs all three, with rows.
_OPTUNA_MARKERS = (
    "SELECT count(*) FROM studies",
    "SELECT count(*) FROM version_info",
    "SELECT count(*) FROM alembic_version",
)


def _rdb_reader(spec: str) -> RDBStorage:
    """An existing Optuna RDB opened without creating, stamping or migrating anything (and no lock file).

    RDBStorage writes its version rows into any database it opens; so first check that they are there.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    url = expand_env(spec)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            counts = []
            for sql in _OPTUNA_MARKERS:
                try:
                    counts.append(conn.execute(sa.text(sql)).scalar())
                except (sa.exc.ProgrammingError, sa.exc.OperationalError) as exc:
                    if "no such table" not in str(exc) and "does not exist" not in str(exc):
                        raise
                    conn.rollback()
                    counts.append(None)
    except Exception as exc:
        raise _open_error(spec, exc) from exc
    finally:
        engine.dispose()
    if None in counts or not counts[1] or not counts[2]:
        raise StorageMissing(
            f"storage URL {mask_password(spec)!r} is not an Optuna storage (no Optuna tables in it); "
            "nothing was written to it"
        )
    try:
        return RDBStorage(url, skip_table_creation=True)
    except Exception as exc:  # e.g. a schema written by another Optuna version (never migrated here)
        raise _open_error(spec, exc) from exc


def claim_lock(spec: str, study_name: str) -> Any:
    """The lock under which a worker counts a study's trials and asks for the next (no overshoot)."""
    file = None if is_url(spec) else journal_path(spec, study_name)
    return storage_locks.locked(
        expand_env(spec) if is_url(spec) else spec, f"hpo-assets:claim:{study_name}", file
    )


def _check_journal(path: Path, *, repair: bool, log: Callable[[str], Any] | None = None) -> None:
    """Refuse a journal with a damaged line (named by line number); a writer first moves a torn tail aside.

    Optuna skips an unparsable last line silently and would append right after it (see journal_file.py).
    """
    try:
        if repair:
            torn = repair_torn_tail(path)
            if torn is not None:
                (log or _log.warning)(torn.describe())
        elif path.is_file():
            scan(path)
    except JournalDamaged as exc:
        raise StorageError(str(exc)) from None
    except OSError as exc:
        raise StorageError(f"journal file {str(path)!r} cannot be read: {exc.strerror}") from exc


def _journal(path: Path, *, repair: bool = True, log: Callable[[str], Any] | None = None) -> JournalStorage:
    _check_journal(path, repair=repair, log=log)
    try:
        return JournalStorage(JournalFile(path, log=log))
    except OSError as exc:
        raise StorageError(f"journal file {str(path)!r} cannot be opened: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:  # replaying a file that is not an Optuna journal
        raise _replay_error(path, exc) from exc


def _replay_error(path: Path, exc: Exception) -> StorageError:
    """Optuna's error counts lines inside the bad line ("line 1 column 52"): find the line in the file."""
    try:
        scan(path, full=True)
    except JournalDamaged as damaged:
        return StorageError(str(damaged))
    except OSError:
        pass
    return StorageError(f"journal file {str(path)!r} is not a readable Optuna journal: {exc}")


def find_studies(spec: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(study name, spec that opens it) for every readable study, and one message per unreadable file.

    A damaged journal does not hide the other files of the folder; nothing is created or changed, and a
    storage that does not exist is a StorageError naming it.
    """
    if is_url(spec):
        storage = open_storage(spec, "", create=False)
        return [(name, spec) for name in sorted(optuna.get_all_study_names(storage))], []
    folder = Path(spec).expanduser()
    if folder.suffix == JOURNAL_SUFFIX and folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(folder.glob(f"*{JOURNAL_SUFFIX}"))
    elif folder.exists():
        raise StorageError(f"storage {spec!r} is neither a folder of journal files nor a .journal file")
    else:
        raise StorageMissing(f"storage {spec!r} does not exist (no folder or journal file there)")
    found: list[tuple[str, str]] = []
    problems: list[str] = []
    for file in files:
        try:
            storage = _journal(file, repair=False)
            found += [(name, str(file)) for name in optuna.get_all_study_names(storage)]
        except StorageError as exc:
            problems.append(str(exc))
        except (ValueError, KeyError, TypeError) as exc:  # Optuna replays lazily
            problems.append(str(_replay_error(file, exc)))
    return sorted(found), problems


def list_studies(spec: str) -> list[str]:
    """Names of every study in the storage (for a folder: in every `*.journal` file in it); none for a
    storage that does not exist yet (it is not created)."""
    try:
        found, problems = find_studies(spec)
    except StorageMissing:
        return []
    if problems:
        raise StorageError(problems[0])
    return sorted({name for name, _ in found})


def dashboard_command(spec: str, study_name: str) -> str:
    """The `optuna-dashboard` command that shows this study's storage (a URL's password shown as ***)."""
    target = mask_password(spec) if is_url(spec) else str(journal_path(spec, study_name).resolve())
    return f"optuna-dashboard {shlex.quote(target)}"
