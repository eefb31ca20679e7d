"""How far a running study is: trials done / target, best so far, elapsed against predicted, ETA.

A 2B trial trains for hours, so a study must say it is alive between its trial results. One
`StudyProgress` follows a run's trials (and, at most every `every_s`, its epochs) and hands each
`Snapshot` to its sinks: the `hpo_study` asset records it as an AssetObservation, a terminal shows it as
a tqdm bar (plain lines when stderr is not a terminal). Sinks registered with `listen` hear every study
that runs in this process (the CLI's bar over an in-process Dagster run).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

import optuna
from optuna.trial import FrozenTrial

from hpo_assets.search.runner import counts_toward_target

Sink = Callable[["Snapshot"], None]
_LISTENERS: list[Sink] = []


@dataclass(frozen=True)
class Snapshot:
    """One look at a running study. `eta_basis` says what the ETA extrapolates from."""

    study_name: str
    trials_done: int  # trials that count toward the target, the whole study's
    trials_target: int
    trials_this_run: int
    best_value: float | None
    best_trial: int | None
    elapsed_s: float
    predicted_s: float | None  # the run's predicted compute (planning/plan.py), None without an estimate
    eta_s: float | None
    eta_basis: str
    event: str  # "start", "trial" (a trial ended) or "epoch" (a trial is training)
    trial: int | None = None  # the trial that ended or is training
    trial_state: str | None = None
    epoch: int | None = None
    epochs: int | None = None

    def line(self) -> str:
        """One plain line, for logs and terminals that are not a TTY."""
        where = ""
        if self.event == "epoch":
            where = f", trial #{self.trial} epoch {self.epoch}/{self.epochs or '?'}"
        elif self.event == "trial":
            where = f", trial #{self.trial} {self.trial_state}"
        best = "-" if self.best_value is None else f"{self.best_value:.4f} (#{self.best_trial})"
        return (
            f"{self.study_name}: {self.trials_done}/{self.trials_target} trials{where}, best {best}, "
            f"{self.timing()}"
        )

    def timing(self) -> str:
        predicted = "" if self.predicted_s is None else f" of {_duration(self.predicted_s)} predicted"
        eta = "unknown" if self.eta_s is None else f"{_duration(self.eta_s)} ({self.eta_basis})"
        return f"elapsed {_duration(self.elapsed_s)}{predicted}, ETA {eta}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


class StudyProgress:
    """Snapshots of one run of a study: `start()`, then `trial_ended` per trial and `epoch` per epoch.

    The ETA is the remaining trials at the pace of this run's last `window` finished trials (the first
    trials, forced extremes trained to their last epoch before the pruner starts, are slower than later
    ones; one 14-trial CPU study's replay is in docs/benchmarks.md); before a trial of this run has finished
    it is the prediction less the elapsed time (None without a prediction).
    """

    def __init__(
        self,
        study_name: str,
        target: int,
        *,
        predicted_s: float | None = None,
        epochs: int | None = None,
        sinks: list[Sink] | None = None,
        every_s: float = 60.0,
        window: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.study_name, self.target, self.predicted_s, self.epochs = study_name, target, predicted_s, epochs
        self.sinks = [*(sinks or []), *_LISTENERS]
        self.every_s, self.clock, self.window = every_s, clock, window
        self.started = clock()
        self.ended: list[float] = []  # elapsed seconds at each trial end of this run
        self.last_sent = -math.inf
        self.done = 0
        self.done_at_start: int | None = None
        self.best: tuple[float, int] | None = None

    def _snapshot(self, event: str, **where: Any) -> Snapshot:
        elapsed = self.clock() - self.started
        ran = self.done - (self.done_at_start or 0)
        remaining = max(self.target - self.done, 0)
        if remaining == 0:
            eta, basis = 0.0, "target reached"
        elif ran > 0 and self.ended:
            k = min(self.window, len(self.ended))
            since = self.ended[-1 - k] if len(self.ended) > k else 0.0
            eta = max(remaining * (self.ended[-1] - since) / k - (elapsed - self.ended[-1]), 0.0)
            basis = f"pace of the last {k} trial(s)"
        elif self.predicted_s is not None:
            eta, basis = max(self.predicted_s - elapsed, 0.0), "prediction"
        else:
            eta, basis = None, "no trial finished yet"
        snap = Snapshot(
            study_name=self.study_name,
            trials_done=self.done,
            trials_target=self.target,
            trials_this_run=ran,
            best_value=None if self.best is None else self.best[0],
            best_trial=None if self.best is None else self.best[1],
            elapsed_s=elapsed,
            predicted_s=self.predicted_s,
            eta_s=eta,
            eta_basis=basis,
            event=event,
            epochs=self.epochs,
            **where,
        )
        self.last_sent = self.clock()
        for sink in self.sinks:
            sink(snap)
        return snap

    def _read(self, study: optuna.Study) -> None:
        self.done = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
        try:
            best = study.best_trial
        except ValueError:  # no COMPLETE trial yet
            return
        if best.value is not None:
            self.best = (float(best.value), best.number)

    def start(self, study: optuna.Study | None) -> Snapshot:
        """The first snapshot: where the study stands before this run (None: a study not created yet)."""
        if study is not None:
            self._read(study)
        self.done_at_start = self.done
        return self._snapshot("start")

    def trial_ended(self, study: optuna.Study, trial: FrozenTrial) -> Snapshot:
        if self.done_at_start is None:
            self.start(study)
        self._read(study)
        self.ended.append(self.clock() - self.started)
        return self._snapshot("trial", trial=trial.number, trial_state=trial.state.name)

    def epoch(self, trial: int, record: dict[str, Any]) -> Snapshot | None:
        """A snapshot while a trial trains, at most one per `every_s` (a long trial still shows it is alive)."""
        if self.clock() - self.last_sent < self.every_s:
            return None
        return self._snapshot("epoch", trial=trial, epoch=int(record.get("epoch", 0)) or None)


@contextlib.contextmanager
def listen(sink: Sink) -> Iterator[Sink]:
    """Hear every study that starts in this process while the block runs."""
    _LISTENERS.append(sink)
    try:
        yield sink
    finally:
        _LISTENERS.remove(sink)


class TerminalProgress:
    """A sink for a terminal: a tqdm bar per study on a TTY, else one plain line per trial (and epoch snapshot)."""

    def __init__(self, stream: IO[str] | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.bars: dict[str, Any] = {}

    def __call__(self, snap: Snapshot) -> None:
        if not self.tty:
            if snap.event != "start" or snap.trials_done:
                print(f"progress: {snap.line()}", file=self.stream, flush=True)
            return
        from tqdm import tqdm

        bar = self.bars.get(snap.study_name)
        if bar is None:
            bar = tqdm(
                total=snap.trials_target,
                initial=snap.trials_done,
                desc=snap.study_name,
                unit="trial",
                file=self.stream,
                bar_format="{desc} {bar} {n_fmt}/{total_fmt} trials {postfix}",
                dynamic_ncols=True,
            )
            self.bars[snap.study_name] = bar
        bar.n = snap.trials_done
        best = "-" if snap.best_value is None else f"{snap.best_value:.4f}"
        now = f"#{snap.trial} epoch {snap.epoch}/{snap.epochs or '?'} | " if snap.event == "epoch" else ""
        bar.set_postfix_str(f"{now}best {best} | {snap.timing()}", refresh=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def bar_on_terminal() -> bool:
    """True while a tqdm bar listens on a TTY: then per-trial log lines would only break it."""
    return any(isinstance(sink, TerminalProgress) and sink.tty for sink in _LISTENERS)


@contextlib.contextmanager
def terminal_progress(stream: IO[str] | None = None) -> Iterator[TerminalProgress]:
    """`with terminal_progress():` every study run in the block shows as a bar on stderr, when it is a TTY.

    Off a terminal nothing is added: the run's own INFO log already prints one `progress:` line per trial."""
    sink = TerminalProgress(stream)
    if not sink.tty:
        yield sink
        return
    with listen(sink):
        try:
            yield sink
        finally:
            sink.close()


class Stages:
    """A command's steps on a terminal (`extract`, `analyze`): a bar over the steps on a TTY, else one line
    per step with its seconds. No ETA: the steps are of unequal cost, so a pace would mislead."""

    def __init__(
        self, command: str, total: int, stream: IO[str] | None = None, tty: bool | None = None
    ) -> None:
        self.command, self.total = command, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.done, self.current, self.since = 0, "", time.monotonic()
        self.bar: Any = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=command,
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{desc} {bar} {n_fmt}/{total_fmt} steps, {elapsed} {postfix}",
            )

    def _finish(self) -> None:
        if not self.current:
            return
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        else:
            seconds = time.monotonic() - self.since
            print(
                f"{self.command}: {self.current} ({self.done}/{self.total}, {seconds:.1f} s)",
                file=self.stream,
                flush=True,
            )
        self.current = ""

    def step(self, name: str) -> None:
        """The previous step is done; `name` starts."""
        self._finish()
        self.current, self.since = name, time.monotonic()
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=True)

    def close(self, ok: bool = True) -> None:
        """The last step is done (`ok`), or the command stopped in it (then it is not counted)."""
        if ok:
            self._finish()
        elif self.bar is None and self.current:
            print(f"{self.command}: {self.current} stopped", file=self.stream, flush=True)
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def stages(command: str, total: int, stream: IO[str] | None = None) -> Iterator[Stages]:
    shown = Stages(command, total, stream)
    try:
        yield shown
    except BaseException:
        shown.close(ok=False)
        raise
    shown.close()
