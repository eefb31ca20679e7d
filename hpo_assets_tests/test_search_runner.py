"""run_study with real Optuna: forced extremes, steering away from repeats, pruning, failures, resume.

Most tests train with a cheap deterministic function (the search logic is what is under test); the
divergence test trains a real tiny PatchTST with torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo_assets.search.extremes import forced_extremes
from hpo_assets.search.runner import StudyConfigError, StudyOptions, run_study
from hpo_assets.search.space import PARAM_NAMES, ArchChoice, SearchSpace
from hpo_assets.search.storage import open_storage

ARCHS = [
    ArchChoice(f"d{d}-L{n}-H2-F{2 * d}", d, n, 2, 2 * d, d * d * n)
    for d in (16, 32, 64) for n in (1, 2, 4)
]  # fmt: skip
TINY = {
    "lr": [1e-3, 1e-2],
    "dropout": [0.0, 0.1],
    "weight_decay": [0.0],
    "warmup_frac": [0.0],
    "batch_size": [32],
    "normalization": ["zscore"],
}


@dataclass
class Result:
    """The fields run_study reads from a trainer's result (as hpo_assets.training.trainer.TrainResult)."""

    metrics: dict[str, Any]
    curve: list[dict[str, Any]]
    status: str = "ok"
    diverged_reason: str | None = None
    diverge_epoch: int | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    epochs_trained: int = 0
    early_stopped: bool = False
    val_logits: list[float] = field(default_factory=lambda: [0.3, -0.2, 0.1])
    val_labels: list[int] = field(default_factory=lambda: [1, 0, 0])
    device: str = "cpu"
    duration_sec: float = 0.0


def score(arch: ArchChoice, hp: Mapping[str, Any]) -> float:
    """A deterministic 'AUC' that prefers wide models and the small learning rate."""
    return (
        0.5 + 0.02 * math.log2(arch.d_model / 16) + (0.02 if hp["lr"] == 1e-3 else 0.0) - 0.05 * hp["dropout"]
    )


def cheap_trainer(epochs: int = 3, auc: Callable[[ArchChoice, Mapping[str, Any]], float] = score):
    def train(arch: ArchChoice, hp: Mapping[str, Any], on_epoch: Callable[[dict[str, Any]], None]) -> Result:
        final = auc(arch, hp)
        curve = []
        for epoch in range(1, epochs + 1):
            rec = {"epoch": epoch, "train_loss": 0.7 - 0.01 * epoch, "val_loss": 0.69 - 0.001 * epoch,
                   "val_auc": 0.5 + (final - 0.5) * epoch / epochs, "lr": hp["lr"], "seconds": 0.0}  # fmt: skip
            curve.append(rec)
            on_epoch(rec)
        metrics = {"val_auc": final, "val_loss": curve[-1]["val_loss"], "train_loss": curve[-1]["train_loss"]}
        return Result(
            metrics, curve, best_epoch=epochs, best_val_loss=curve[-1]["val_loss"], epochs_trained=epochs
        )

    return train


def load(storage: Path, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage), name))


def configs(study: optuna.Study) -> list[tuple]:
    return [tuple(t.params[k] for k in PARAM_NAMES) for t in study.trials if t.params]


def quiet(_: str) -> None:
    pass


def test_forced_extremes_run_first_as_ordinary_params(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS, TINY)
    run = run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=8, n_forced=4, pruner="none", epochs_config=3),
        log=quiet,
    )
    study = load(tmp_path)
    assert run.counted == 8 and run.complete == 8
    expected = forced_extremes(space, 4)
    first = study.trials[:4]
    assert [t.user_attrs["extreme_type"] for t in first] == [e.extreme_type for e in expected]
    assert [t.params for t in first] == [e.params for e in expected]
    assert all(t.user_attrs["forced_extreme"] is True for t in first)
    # Sampled trials are not forced, and the forced ones are real params TPE saw (stored distributions).
    assert all(t.user_attrs["forced_extreme"] is False and t.user_attrs["extreme_type"] is None
               for t in study.trials[4:])  # fmt: skip
    assert all(set(t.distributions) == set(PARAM_NAMES) for t in study.trials)
    assert study.user_attrs["source"] == "hpo_study" and study.user_attrs["objective"] == "val_auc"


def test_repeats_are_steered_so_no_configuration_is_trained_twice(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:2], TINY)  # 2 archs x 2 lr x 2 dropout = 8 configurations
    trained: list[tuple] = []
    inner = cheap_trainer()

    def train(arch, hp, on_epoch):
        trained.append((arch.label, *hp.values()))
        return inner(arch, hp, on_epoch)

    run = run_study(
        space,
        train,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=8, n_forced=0, pruner="none", tpe_startup_trials=2),
        log=quiet,
    )
    study = load(tmp_path)
    assert run.counted == 8 and len(study.trials) == 8
    assert len(set(trained)) == 8 and len(set(configs(study))) == 8
    steered = [t for t in study.trials if "steered_from" in t.user_attrs]
    assert steered, "TPE's best candidate repeats in an 8-point space; those proposals must have been steered"
    for t in steered:
        dup = study.trials[t.user_attrs["duplicate_of"]]
        assert dup.number < t.number and dup.params == t.user_attrs["steered_from"] != t.params
    assert run.steered == len(steered) == study.user_attrs["steered"]
    assert run.skipped_duplicates == 0 == study.user_attrs["skipped_duplicates"]  # steered != skipped

    # Raising the target beyond the space: the study stops and says so.
    more = run_study(
        space,
        train,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=12, n_forced=0, pruner="none"),
        log=quiet,
    )
    assert more.exhausted and more.new_trials == [] and len(load(tmp_path).trials) == 8
    assert load(tmp_path).user_attrs["exhausted"] is True


def test_median_pruner_prunes_a_bad_curve_at_its_epoch(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:3], {**TINY, "dropout": [0.0, 0.5]})

    def auc(arch, hp):  # dropout 0.5 is hopeless: its curve sits far below the others from epoch 1
        return 0.3 if hp["dropout"] == 0.5 else score(arch, hp)

    options = StudyOptions(
        n_trials=6, n_forced=0, pruner="median", pruner_startup_trials=2, pruner_warmup_epochs=0
    )
    run = run_study(
        space,
        cheap_trainer(epochs=4, auc=auc),
        study_name="s",
        storage=str(tmp_path),
        options=options,
        log=quiet,
    )
    study = load(tmp_path)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and run.pruned == len(pruned)
    for t in pruned:
        assert t.params["dropout"] == 0.5
        assert t.user_attrs["pruned_epoch"] == max(t.intermediate_values) < 4
        assert len(t.user_attrs["learning_curve"]) == t.user_attrs["pruned_epoch"]
    # Pruned trials have tested their configuration: none is tried again.
    assert len(set(configs(study))) == len(study.trials)


def test_exception_is_a_fail_with_its_message_and_nan_is_never_a_value(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:2], TINY)
    inner = cheap_trainer()

    def train(arch, hp, on_epoch):
        if arch.d_model == 16 and hp["lr"] == 1e-2:
            raise RuntimeError("CUDA out of memory (simulated by this test)")
        if hp["dropout"] == 0.1 and hp["lr"] == 1e-3:
            result = inner(arch, hp, on_epoch)
            result.metrics["val_auc"] = float("nan")
            return result
        return inner(arch, hp, on_epoch)

    run = run_study(
        space,
        train,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=8, n_forced=0, pruner="none"),
        log=quiet,
    )
    study = load(tmp_path)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and run.failed == len(failed) and run.counted == 8
    reasons = {t.user_attrs["fail_reason"] for t in failed}
    assert any(r == "RuntimeError: CUDA out of memory (simulated by this test)" for r in reasons)
    assert any("val_auc is nan" in r for r in reasons)
    assert all(t.value is None for t in failed)
    assert all(math.isfinite(t.value) for t in study.trials if t.state == TrialState.COMPLETE)


def test_resume_continues_to_the_target_and_never_restarts(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS, TINY)
    opts = dict(n_forced=2, pruner="none")
    run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=3, **opts),
        log=quiet,
    )
    before = {t.number: (t.params, t.value, t.datetime_complete) for t in load(tmp_path).trials}
    again = run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=3, **opts),
        log=quiet,
    )
    assert again.new_trials == []
    more = run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=5, **opts),
        log=quiet,
    )
    study = load(tmp_path)
    assert more.new_trials == [3, 4] and len(study.trials) == 5
    assert {t.number: (t.params, t.value, t.datetime_complete) for t in study.trials[:3]} == before
    assert len(set(configs(study))) == 5


def test_bad_options_and_a_changed_objective_name_the_field(tmp_path: Path) -> None:
    for kwargs, field_name in [({"n_trials": 0}, "n_trials"), ({"objective": "accuracy"}, "objective"),
                               ({"pruner": "asha"}, "pruner"), ({"n_forced": -1}, "n_forced"),
                               ({"seed": -3}, "seed")]:  # fmt: skip
        with pytest.raises(StudyConfigError, match=field_name):
            StudyOptions(**kwargs)
    space = SearchSpace.build(ARCHS[:2], TINY)
    run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=1, n_forced=0),
        log=quiet,
    )
    with pytest.raises(StudyConfigError, match="objective 'val_loss'"):
        run_study(
            space,
            cheap_trainer(),
            study_name="s",
            storage=str(tmp_path),
            options=StudyOptions(n_trials=2, objective="val_loss"),
            log=quiet,
        )
    assert len(load(tmp_path).trials) == 1  # nothing stored was lost


def test_a_study_is_never_continued_on_other_data(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:2], TINY)
    window = {"horizon_days": 1, "data_start": "2013-07-01", "data_end": "2016-12-30", "n_val": 173}
    run = dict(study_name="s", storage=str(tmp_path), log=quiet)
    run_study(space, cheap_trainer(), options=StudyOptions(n_trials=2, n_forced=0), study_attrs=window, **run)
    before = [(t.params, t.value) for t in load(tmp_path).trials]
    later = {**window, "data_end": "2018-12-28", "n_val": 210}
    with pytest.raises(StudyConfigError, match=r"data_end: '2016-12-30' -> '2018-12-28'; n_val: 173 -> 210"):
        run_study(
            space, cheap_trainer(), options=StudyOptions(n_trials=3, n_forced=0), study_attrs=later, **run
        )
    study = load(tmp_path)
    assert [(t.params, t.value) for t in study.trials] == before  # no trial added, none lost
    assert study.user_attrs["data_end"] == "2016-12-30"  # the record still describes the trials it holds
    # The same data continues; a setting the old study never recorded is not a mismatch.
    run_study(space, cheap_trainer(), options=StudyOptions(n_trials=3, n_forced=0),
              study_attrs={**window, "val_positives": 30}, **run)  # fmt: skip
    assert len(load(tmp_path).trials) == 3


def test_a_diverging_real_trial_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.model.params import Arch, count_parameters
    from hpo_assets.search.objective import TorchTrainer

    data = prepare_dataset(
        load_market(default_market_path()),
        1,
        start="2014-01-01",
        end="2016-12-31",
        val_start="2015-10-01",
        test_start="2016-10-01",
    )
    archs = [ArchChoice(a.label, a.d_model, a.n_layers, a.n_heads, a.d_ff, count_parameters(a, 25, 80, 16, 8))
             for a in (Arch(16, 1, 2, 32), Arch(32, 1, 2, 64))]  # fmt: skip
    # lr 10 is in the space on purpose: the forced middle-lr trials are fine, a huge-lr trial diverges.
    choices = {
        "lr": [1e-3, 10.0],
        "dropout": [0.0],
        "weight_decay": [0.0],
        "warmup_frac": [0.0],
        "batch_size": [128],
        "normalization": ["revin"],
    }
    space = SearchSpace.build(archs, choices)
    study = optuna.create_study(
        study_name="s", storage=open_storage(str(tmp_path), "s"), direction="maximize"
    )
    study.enqueue_trial({**archs[0].arch_params(), "lr": 10.0, "dropout": 0.0, "weight_decay": 0.0,
                         "warmup_frac": 0.0, "batch_size": 128, "normalization": "revin"})  # fmt: skip
    trainer = TorchTrainer(data, max_epochs=2, patience=2, seed=0, device="cpu", num_threads=1)
    run = run_study(
        space,
        trainer,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=3, n_forced=0, pruner="none", epochs_config=2),
        device="cpu",
        log=quiet,
    )
    study = load(tmp_path)
    bad = study.trials[0]
    # Diverged: PRUNED at its divergence epoch (TPE ranks it below every COMPLETE trial), never a value.
    assert bad.state == TrialState.PRUNED and bad.user_attrs["pruned_epoch"] == 1
    assert bad.user_attrs["diverged"] is True and bad.user_attrs["diverge_epoch"] == 1
    assert "10 x ln 2" in bad.user_attrs["diverged_reason"] or "finite" in bad.user_attrs["diverged_reason"]
    assert bad.user_attrs["learning_curve"], "the diverged trial keeps its curve"
    huge = [t.number for t in study.trials if t.params["lr"] == 10.0]
    assert [t.number for t in study.trials if t.user_attrs.get("diverged")] == huge
    assert run.diverged == len(huge) and run.counted == 3
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert done, "the study went on after the divergence"
    for t in done:
        ua = t.user_attrs
        assert ua["diverged"] is False and 0.0 <= ua["val_auc"] <= 1.0 and t.value == ua["val_auc"]
        assert len(ua["val_logits"]) == len(ua["val_labels"]) == len(data.split.val)
        assert set(ua["val_labels"]) == {0, 1}
        assert ua["param_count"] == space.arch_of(t.params).param_count and ua["device"] == "cpu"
        assert [r["epoch"] for r in ua["learning_curve"]] == list(range(1, ua["epochs_trained"] + 1))
        assert t.intermediate_values, "every epoch was reported to Optuna"
    # The diverged configuration counts as tested: it is never retried.
    assert len(set(configs(study))) == len(study.trials)
    # Effective duplicates: no two COMPLETE trials trained identically (bit-identical curves).
    curves = [tuple((r["epoch"], r["train_loss"], r["val_loss"], r["val_auc"]) for r in t.user_attrs["learning_curve"])
              for t in done]  # fmt: skip
    assert len(set(curves)) == len(curves)


def test_history_plot_and_top_table_cover_every_state(tmp_path: Path) -> None:
    from hpo_assets.search.history import history_png, top_trials

    space = SearchSpace.build(ARCHS[:3], {**TINY, "dropout": [0.0, 0.5]})
    inner = cheap_trainer(epochs=3, auc=lambda a, hp: 0.3 if hp["dropout"] == 0.5 else score(a, hp))

    def train(arch, hp, on_epoch):
        if arch.n_layers == 4:
            raise RuntimeError("boom")
        return inner(arch, hp, on_epoch)

    options = StudyOptions(
        n_trials=10, n_forced=4, pruner="median", pruner_startup_trials=1, pruner_warmup_epochs=0
    )
    run_study(space, train, study_name="s", storage=str(tmp_path), options=options, log=quiet)
    study = load(tmp_path)
    states = {t.state for t in study.trials}
    assert {TrialState.COMPLETE, TrialState.FAIL} <= states
    assert history_png(study, "val_auc")[:8] == b"\x89PNG\r\n\x1a\n"
    table = top_trials(study, 3)
    done = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
    assert table.height == min(3, len(done)) and table["rank"].to_list() == list(range(1, table.height + 1))
    assert table["value"].to_list() == sorted(done, reverse=True)[: table.height]

    empty = optuna.create_study(study_name="e", storage=open_storage(str(tmp_path), "e"))
    assert history_png(empty, "val_loss")[:8] == b"\x89PNG\r\n\x1a\n"
    assert top_trials(empty).is_empty()


def test_val_loss_objective_minimises_the_loss_at_the_best_epoch(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:3], TINY)
    run = run_study(
        space,
        cheap_trainer(),
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=4, n_forced=0, objective="val_loss", pruner="none"),
        log=quiet,
    )
    study = load(tmp_path)
    assert run.direction == "minimize" and study.direction.name == "MINIMIZE"
    assert all(t.value == t.user_attrs["val_loss"] for t in study.trials)
    assert all(
        t.intermediate_values[3] == t.user_attrs["learning_curve"][2]["val_loss"] for t in study.trials
    )
    assert run.best is not None and run.best.value == min(t.value for t in study.trials)


def test_an_enqueued_repeat_is_skipped_not_trained_and_not_counted(tmp_path: Path) -> None:
    space = SearchSpace.build(ARCHS[:3], TINY)
    trained: list[tuple] = []
    inner = cheap_trainer()

    def train(arch, hp, on_epoch):
        trained.append((arch.label, *hp.values()))
        return inner(arch, hp, on_epoch)

    opts = dict(n_forced=0, pruner="none")
    run_study(
        space,
        train,
        study_name="s",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=1, **opts),
        log=quiet,
    )
    first = load(tmp_path).trials[0]
    load(tmp_path).enqueue_trial(
        dict(first.params)
    )  # e.g. a second worker re-queued a finished configuration
    run = run_study(space, train, study_name="s", storage=str(tmp_path), options=StudyOptions(n_trials=3, **opts),
                    log=quiet)  # fmt: skip
    study = load(tmp_path)
    skipped = study.trials[1]
    assert skipped.state == TrialState.FAIL and skipped.params == first.params
    assert skipped.user_attrs["duplicate_of"] == 0 and skipped.user_attrs["skipped_duplicate"] is True
    assert skipped.user_attrs["fail_reason"].startswith("duplicate of #0")
    assert len(trained) == 3 and len(set(trained)) == 3  # the repeat was never trained
    assert run.counted == 3 and len(study.trials) == 4
    assert (
        run.skipped_duplicates == sum(bool(t.user_attrs.get("skipped_duplicate")) for t in study.trials) == 1
    )


def test_tpe_learns_a_diverging_region_that_random_search_keeps_proposing(tmp_path: Path) -> None:
    """Diverged trials are PRUNED, so TPE sees them: after start-up it proposes the bad lr region less."""
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.search.space import arch_choices, load_training_choices

    space = SearchSpace.build(arch_choices(budget_space("2M")), load_training_choices("2M"))
    bad_lr = 1e-3  # lr >= 1e-3 diverges at epoch 1: 2 of the 6 lr values

    def train(arch, hp, on_epoch):
        if hp["lr"] >= bad_lr:
            curve = [{"epoch": 1, "train_loss": float("nan"), "val_loss": None, "val_auc": None}]
            return Result({}, curve, status="diverged", diverged_reason="nan", diverge_epoch=1)
        return cheap_trainer(epochs=2, auc=lambda a, h: 0.6 - 0.05 * h["dropout"])(arch, hp, on_epoch)

    n, startup = 30, 8
    share = {}
    for name, tpe_startup in (("tpe", startup), ("random", n)):  # random: start-up never ends
        storage = tmp_path / name
        run_study(space, train, study_name="s", storage=str(storage), log=quiet,
                  options=StudyOptions(n_trials=n, n_forced=0, pruner="none", tpe_startup_trials=tpe_startup))  # fmt: skip
        after = load(storage).trials[startup:]
        share[name] = sum(t.params["lr"] >= bad_lr for t in after) / len(after)
    assert share["tpe"] < share["random"], share
    assert share["tpe"] <= 0.15, share  # random proposes the region at 1/3
    diverged = [t for t in load(tmp_path / "tpe").trials if t.user_attrs.get("diverged")]
    assert diverged and all(t.state == TrialState.PRUNED for t in diverged)
