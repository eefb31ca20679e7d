"""Same-named studies from two machines are kept side by side; a true re-import of one study is recognised."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna

from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace
from hpo_assets.search.storage import open_storage
from hpo_assets.trials.identity import UID_ATTR
from hpo_assets.trials.importers import read_sources
from hpo_assets.trials.live import assemble, read_live
from hpo_assets.trials.schema import to_table
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer

NAME = "hpo-2M-h1"


def _live_study(folder: Path, seed: int, n_trials: int = 3) -> str:
    space = SearchSpace.build(ARCHS, TINY)
    options = StudyOptions(n_trials=n_trials, seed=seed, n_forced=0, pruner="none", tpe_startup_trials=1)
    run_study(
        space, cheap_trainer(), study_name=NAME, storage=str(folder), options=options, log=lambda m: None
    )
    study = optuna.load_study(study_name=NAME, storage=open_storage(str(folder), NAME))
    return study.user_attrs[UID_ATTR]


def test_live_study_identity_is_set_once_and_kept(tmp_path: Path) -> None:
    uid = _live_study(tmp_path / "a", seed=1, n_trials=2)
    assert len(uid) == 32
    assert _live_study(tmp_path / "a", seed=1, n_trials=3) == uid  # resumed: same study, same identity
    assert _live_study(tmp_path / "b", seed=1, n_trials=2) != uid  # another storage: another study


def test_same_name_from_two_machines_kept_side_by_side_and_reimport_recognised(tmp_path: Path) -> None:
    _live_study(tmp_path / "machineA", seed=1)
    _live_study(tmp_path / "machineB", seed=2)
    (tmp_path / "copyA").mkdir()
    shutil.copy(tmp_path / "machineA" / f"{NAME}.journal", tmp_path / "copyA" / f"{NAME}.journal")

    result = read_sources([str(tmp_path / "machineA"), str(tmp_path / "machineB"), str(tmp_path / "copyA")])
    names = sorted(s.study for s in result.studies)
    assert names == [NAME, f"{NAME}@machineB"]
    assert result.n_read == 6 and result.n_skipped == 3  # the copy of machine A's study is not read twice
    notes = [str(n) for n in result.all_notes]
    assert any("kept beside it as 'hpo-2M-h1@machineB'" in n for n in notes)
    assert any("copyA" in n and "not read twice" in n for n in notes)
    assert {r["study"] for r in result.rows} == set(names)


def test_studies_without_identity_compare_by_their_trials(tmp_path: Path) -> None:
    for folder, xs in (("one", [0.1, 0.2]), ("two", [0.1, 0.2]), ("three", [0.3, 0.4])):
        study = optuna.create_study(study_name=NAME, storage=open_storage(str(tmp_path / folder), NAME))
        for x in xs:
            study.enqueue_trial({"x": x})
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=len(xs))
    result = read_sources([str(tmp_path / f) for f in ("one", "two", "three")])
    assert sorted(s.study for s in result.studies) == [NAME, f"{NAME}@three"] and result.n_skipped == 2


def test_imported_study_named_like_a_live_one(tmp_path: Path) -> None:
    _live_study(tmp_path / "live", seed=1)
    _live_study(tmp_path / "other", seed=2)
    live = read_live(str(tmp_path / "live"))
    copy = to_table(read_sources([str(tmp_path / "live" / f"{NAME}.journal")]).rows)
    other = to_table(read_sources([str(tmp_path / "other")]).rows)

    table, notes, used = assemble(live, copy)  # the live study imported again: not counted twice
    assert used == 0 and table.height == 3 and "is the live study" in str(notes[0])

    table, notes, used = assemble(live, other)  # another machine's study of that name: kept beside it
    assert used == 3 and sorted(set(table["study"].to_list())) == [NAME, f"{NAME}@other"]
    assert "kept as 'hpo-2M-h1@other'" in str(notes[0])
