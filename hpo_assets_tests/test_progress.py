"""A running study says how far it is: per-trial snapshots (done / target, best so far, elapsed vs
predicted, ETA) from a real Optuna study, shown on a terminal as a tqdm bar or as plain lines."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import optuna
import pytest

from hpo_assets.search.progress import Snapshot, StudyProgress, TerminalProgress, listen, terminal_progress
from hpo_assets.search.runner import StudyOptions, run_study
from hpo_assets.search.space import SearchSpace
from hpo_assets.search.storage import open_storage
from hpo_assets_tests.test_search_runner import ARCHS, TINY, cheap_trainer, quiet


class Clock:
    """A clock a test moves: each trial takes exactly `step` seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(
    tmp_path: Path, n_trials: int, progress: StudyProgress, clock: Clock, step: float | list[float] = 10.0
):
    trainer = cheap_trainer()
    steps = iter(step) if isinstance(step, list) else itertools.repeat(step)

    def timed(arch, hp, on_epoch):
        clock.now += next(steps)
        return trainer(arch, hp, on_epoch)

    return run_study(
        SearchSpace.build(ARCHS, TINY),
        timed,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=n_trials, n_forced=2, pruner="none", epochs_config=3),
        log=quiet,
        epoch_hook=progress.epoch,
        trial_hook=progress.trial_ended,
    )


def test_each_trial_reports_done_best_so_far_and_an_eta_at_the_runs_pace(tmp_path: Path) -> None:
    clock, seen = Clock(), []
    progress = StudyProgress(
        "s", 5, predicted_s=40.0, epochs=3, sinks=[seen.append], every_s=1e9, clock=clock
    )
    first = progress.start(None)
    assert (first.trials_done, first.eta_s, first.eta_basis) == (0, 40.0, "prediction")
    _run(tmp_path, 5, progress, clock)
    trials = [s for s in seen if s.event == "trial"]
    assert [s.trials_done for s in trials] == [1, 2, 3, 4, 5]
    assert [s.elapsed_s for s in trials] == [10.0, 20.0, 30.0, 40.0, 50.0]
    # remaining trials x this run's 10 s per trial; 0 at the target
    assert [s.eta_s for s in trials] == [40.0, 30.0, 20.0, 10.0, 0.0]
    assert trials[-1].eta_basis == "target reached"
    study = optuna.load_study(study_name="s", storage=open_storage(str(tmp_path), "s"))
    values = [t.value for t in study.trials]
    # best so far is the running maximum of the objective (val_auc is maximised)
    running_best = list(itertools.accumulate(values, max))
    assert [s.best_value for s in trials] == running_best
    assert trials[-1].best_trial == study.best_trial.number
    assert [s.trial for s in trials] == [t.number for t in study.trials]
    assert all(s.trial_state == "COMPLETE" for s in trials)
    # the study names its metric for optuna-dashboard ("val_auc", not "Objective 0")
    assert study.metric_names == ["val_auc"]


def test_a_resumed_run_counts_the_studys_earlier_trials_and_its_own_pace(tmp_path: Path) -> None:
    clock = Clock()
    _run(tmp_path, 2, StudyProgress("s", 2, clock=clock), clock)
    seen: list[Snapshot] = []
    progress = StudyProgress("s", 4, sinks=[seen.append], every_s=1e9, clock=clock)
    progress.start(optuna.load_study(study_name="s", storage=open_storage(str(tmp_path), "s")))
    assert seen[0].trials_done == 2 and seen[0].eta_s is None  # no prediction, no trial of this run yet
    _run(tmp_path, 4, progress, clock, step=30.0)
    trials = [s for s in seen if s.event == "trial"]
    assert [(s.trials_done, s.trials_this_run, s.eta_s) for s in trials] == [(3, 1, 30.0), (4, 2, 0.0)]


def test_the_eta_follows_the_pace_of_the_last_five_trials(tmp_path: Path) -> None:
    """Slow first trials (forced extremes, no pruning yet), then faster ones: the ETA moves to the new pace."""
    clock, seen = Clock(), []
    progress = StudyProgress("s", 12, sinks=[seen.append], every_s=1e9, clock=clock)  # 2 left after the run
    progress.start(None)
    _run(tmp_path, 10, progress, clock, step=[30.0] * 5 + [10.0] * 5)
    trials = [s for s in seen if s.event == "trial"]
    assert [s.eta_s for s in trials[:3]] == [330.0, 300.0, 270.0]  # 30 s a trial so far
    assert trials[7].eta_s == pytest.approx(4 * (30 + 30 + 10 + 10 + 10) / 5)  # trials 4-8: 18 s each
    assert trials[7].eta_basis == "pace of the last 5 trial(s)"
    clock.now += 4.0  # 4 s into a trial: an epoch snapshot subtracts the time already spent in it
    progress.every_s = 0.0
    assert progress.epoch(99, {"epoch": 1}).eta_s == pytest.approx(2 * 10.0 - 4.0)


def test_epoch_snapshots_are_throttled_so_a_long_trial_still_shows_it_is_alive() -> None:
    clock, seen = Clock(), []
    progress = StudyProgress("s", 3, epochs=10, sinks=[seen.append], every_s=60.0, clock=clock)
    progress.start(None)
    sent = []
    for epoch in range(1, 11):
        clock.now += 25.0  # an epoch every 25 s: one snapshot per minute at most
        sent.append(progress.epoch(7, {"epoch": epoch}) is not None)
    assert sent == [False, False, True, False, False, True, False, False, True, False]
    snap = seen[-1]
    assert (snap.event, snap.trial, snap.epoch, snap.epochs) == ("epoch", 7, 9, 10)
    assert "trial #7 epoch 9/10" in snap.line()


def _snap(**kw) -> Snapshot:
    base = dict(study_name="hpo-2M-h1", trials_done=3, trials_target=8, trials_this_run=3, best_value=0.5312,
                best_trial=2, elapsed_s=120.0, predicted_s=600.0, eta_s=200.0, eta_basis="pace of the last 3 trial(s)",
                event="trial", trial=2, trial_state="COMPLETE")  # fmt: skip
    return Snapshot(**{**base, **kw})


def test_plain_lines_off_a_terminal_and_a_bar_with_eta_on_one() -> None:
    out = io.StringIO()
    plain = TerminalProgress(out, tty=False)
    plain(_snap())
    assert out.getvalue() == (
        "progress: hpo-2M-h1: 3/8 trials, trial #2 COMPLETE, best 0.5312 (#2), "
        "elapsed 2.0 min of 10.0 min predicted, ETA 3.3 min (pace of the last 3 trial(s))\n"
    )
    out = io.StringIO()
    bar = TerminalProgress(out, tty=True)
    bar(_snap())
    bar(_snap(trials_done=4, event="epoch", trial=3, epoch=2, epochs=10, eta_s=7200.0))
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "4/8 trials" in text and "#3 epoch 2/10" in text and "ETA 2.00 h" in text
    assert "\n" not in text.rstrip("\n")  # a bar redrawn in place, not a line per update


def test_terminal_progress_hears_every_study_run_in_the_block(tmp_path: Path) -> None:
    out = io.StringIO()
    clock = Clock()
    with terminal_progress(out):  # not a TTY: the run's log lines say it, no second copy
        assert StudyProgress("s", 1).sinks == []
    with listen(TerminalProgress(out, tty=False)):
        progress = StudyProgress("s", 2, clock=clock)  # the asset's own sinks plus the listeners
        progress.start(None)
        _run(tmp_path, 2, progress, clock)
    after = StudyProgress("t", 1)
    assert after.sinks == []  # the listener is gone after the block
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["progress: s: 1/2 trials", "progress: s: 2/2 trials"]
    assert lines[-1].endswith("ETA 0 s (target reached)")


def test_extract_shows_its_steps_and_a_failed_step_is_not_counted(tmp_path: Path, capsys) -> None:
    from hpo_assets.cli import main
    from hpo_assets_tests.conftest import EXPORTS_DIR

    assert main(["extract", str(EXPORTS_DIR / "hpo_2m_1_a50"), "--out", str(tmp_path / "x")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("extract: ")]
    assert [line.split(" (")[0] for line in lines] == [
        "extract: reading 1 source(s)",
        f"extract: writing {lines[1].split()[2]} trials to {tmp_path / 'x'}",
    ]
    assert lines[0].split(" (")[1].startswith("1/2, ") and lines[1].split(" (")[1].startswith("2/2, ")
    assert int(lines[1].split()[2]) > 0
    assert main(["extract", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "extract: reading 1 source(s) stopped" and "nothing could be read" in err[1]
