"""Study storage: journal files per study, RDB URLs (SQLite, a real PostgreSQL server), clear errors."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo_assets.locations import mask_password
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace
from hpo_assets.search.storage import StorageError, dashboard_command, list_studies, open_storage
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer


def _tiny_study(spec: str, name: str, n_trials: int = 3) -> None:
    space = SearchSpace.build(ARCHS[:3], TINY)
    run_study(space, cheap_trainer(), study_name=name, storage=spec,
              options=StudyOptions(n_trials=n_trials, n_forced=1, pruner="none"), log=lambda m: None)  # fmt: skip


def test_journal_folder_holds_one_file_per_study(tmp_path: Path) -> None:
    folder = tmp_path / "hpo"
    _tiny_study(str(folder), "hpo-2M-h1")
    _tiny_study(str(folder), "hpo-2M-h3", n_trials=2)
    assert sorted(p.name for p in folder.glob("*.journal")) == ["hpo-2M-h1.journal", "hpo-2M-h3.journal"]
    assert list_studies(str(folder)) == ["hpo-2M-h1", "hpo-2M-h3"]
    study = optuna.load_study(study_name="hpo-2M-h3", storage=open_storage(str(folder), "hpo-2M-h3"))
    assert len(study.trials) == 2
    # A `.journal` path is accepted as the spec too, and the dashboard gets that exact file.
    direct = str(folder / "hpo-2M-h1.journal")
    assert list_studies(direct) == ["hpo-2M-h1"]
    assert dashboard_command(str(folder), "hpo-2M-h1") == f"optuna-dashboard {direct}"
    assert list_studies(str(tmp_path / "nothing-here")) == []


def test_sqlite_url_holds_many_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    _tiny_study(url, "hpo-2M-h1")
    _tiny_study(url, "hpo-20M-h1", n_trials=2)
    assert list_studies(url) == ["hpo-20M-h1", "hpo-2M-h1"]
    assert dashboard_command(url, "hpo-2M-h1") == f"optuna-dashboard {url}"
    _tiny_study(url, "hpo-2M-h1", n_trials=4)  # resumes in the same database
    assert len(optuna.load_study(study_name="hpo-2M-h1", storage=url).trials) == 4


def test_bad_specs_are_one_clear_error(tmp_path: Path) -> None:
    cases = [
        ("mongodb://localhost/db", "unsupported scheme 'mongodb'"),
        (
            f"sqlite:///{tmp_path}/missing/dir/x.db",
            "cannot be opened (the database cannot be reached or opened): (sqlite3.OperationalError) unable to open",
        ),
        ("", "storage is empty"),
    ]
    for spec, needle in cases:
        with pytest.raises(StorageError) as err:
            open_storage(spec, "s")
        assert needle in str(err.value) and "\n" not in str(err.value)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(StorageError, match="plain.txt' is a file, not a folder"):
        open_storage(str(a_file), "s")
    with pytest.raises(StorageError, match="sub' cannot be used: Not a directory"):
        open_storage(str(a_file / "sub"), "s")


def test_unreadable_journal_is_named_and_left_untouched(tmp_path: Path) -> None:
    bad = tmp_path / "hpo-2M-h1.journal"
    bad.write_text("this is not a journal\n")
    with pytest.raises(StorageError, match=r"hpo-2M-h1\.journal' is not a readable Optuna journal"):
        open_storage(str(tmp_path), "hpo-2M-h1")
    assert bad.read_text() == "this is not a journal\n"


def test_passwords_are_masked_in_messages() -> None:
    url = "postgresql://hpo:s3cret@db.example:5432/optuna"
    assert "s3cret" not in mask_password(url) and "db.example" in mask_password(url)
    with pytest.raises(StorageError) as err:
        open_storage("mongodb://hpo:s3cret@db.example/x", "s")
    assert "s3cret" not in str(err.value)


def test_postgresql_url_runs_and_resumes_studies(postgres_url: str) -> None:
    _tiny_study(postgres_url, "hpo-2M-h1")
    _tiny_study(postgres_url, "hpo-2M-h5", n_trials=2)
    assert list_studies(postgres_url) == ["hpo-2M-h1", "hpo-2M-h5"]
    _tiny_study(postgres_url, "hpo-2M-h1", n_trials=5)
    study = optuna.load_study(study_name="hpo-2M-h1", storage=open_storage(postgres_url, "hpo-2M-h1"))
    assert len(study.trials) == 5 and study.trials[0].user_attrs["forced_extreme"] is True
    assert len({tuple(t.params.items()) for t in study.trials}) == 5
    assert dashboard_command(postgres_url, "hpo-2M-h1") == f"optuna-dashboard {postgres_url}"
    # The plain postgresql:// spelling works too (SQLAlchemy picks the installed driver).
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    assert list_studies(plain) == ["hpo-2M-h1", "hpo-2M-h5"]


def test_cli_lists_studies_with_dashboard_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hpo_assets.cli import main

    folder = tmp_path / "hpo"
    _tiny_study(str(folder), "hpo-2M-h1", n_trials=3)
    assert main(["studies", "--storage", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("hpo-2M-h1: 3 trials (complete 3, pruned 0, failed 0, diverged 0, running 0)")
    assert out[1].strip() == f"optuna-dashboard {folder / 'hpo-2M-h1.journal'}"
    assert main(["studies", "--storage", "mongodb://x/y"]) == 2
    assert "unsupported scheme 'mongodb'" in capsys.readouterr().err


# --- issue 22, case 5: reading never creates or migrates a storage -------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_read_only_commands_leave_an_unrelated_sqlite_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from hpo_assets.cli import main

    app = tmp_path / "app.db"
    with sqlite3.connect(app) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = _files(tmp_path)
    assert main(["extract", str(app), "--out", str(tmp_path / "out")]) == 2
    assert "app.db" in capsys.readouterr().err
    assert main(["studies", "--storage", f"sqlite:///{app}"]) == 2
    err = capsys.readouterr().err
    assert "app.db" in err and "not an Optuna storage" in err and len(err.strip().splitlines()) == 1
    assert _files(tmp_path) == before  # no Optuna tables, no alembic_version, no lock file
    with sqlite3.connect(app) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["users"]
    conn.close()


def test_a_missing_storage_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hpo_assets.cli import main

    for spec, named in [
        (f"sqlite:///{tmp_path}/typo.db", "typo.db"),
        (str(tmp_path / "nonexistent"), "nonexistent"),
        (str(tmp_path / "gone.journal"), "gone.journal"),
    ]:
        assert main(["studies", "--storage", spec]) == 2, spec
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing created, not even a lock file
    assert list_studies(str(tmp_path / "nonexistent")) == []  # a planner's empty history, still not created
    assert list(tmp_path.iterdir()) == []


def test_reading_an_empty_postgresql_database_creates_no_tables(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlalchemy as sa

    from hpo_assets.cli import main

    assert main(["studies", "--storage", postgres_url]) == 2
    assert "not an Optuna storage" in capsys.readouterr().err
    assert main(["extract", postgres_url, "--out", str(tmp_path / "out")]) == 2
    assert "not an Optuna storage" in capsys.readouterr().err
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    _tiny_study(postgres_url, "hpo-2M-h1")  # a writer creates the tables; then reading works
    assert main(["studies", "--storage", postgres_url]) == 0
    assert "hpo-2M-h1: 3 trials" in capsys.readouterr().out
