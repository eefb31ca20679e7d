"""Warm-started studies with real Optuna: transferred configurations first, their source recorded."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo_assets.search.runner import StudyConfigError, StudyOptions, run_study
from hpo_assets.search.space import ArchChoice, SearchSpace
from hpo_assets.search.storage import open_storage
from hpo_assets.search.transfer import (
    SourceBest,
    TransferError,
    load_sources,
    map_onto,
    plan_warm_start,
)

CHOICES = {
    "lr": [1e-4, 3e-4, 1e-3, 3e-3],
    "dropout": [0.0, 0.1, 0.2, 0.3],
    "weight_decay": [0.0, 1e-3, 1e-2],
    "warmup_frac": [0.0, 0.05],
    "batch_size": [32, 64],
    "normalization": ["zscore", "revin"],
}
SMALL = [ArchChoice(f"d{d}-L{n}-H{d // 16}-F{4 * d}", d, n, d // 16, 4 * d, 12 * d * d * n)
         for d in (32, 64) for n in (1, 2, 4)]  # fmt: skip
LARGE = [ArchChoice(f"d{d}-L{n}-H{d // 16}-F{r * d}", d, n, d // 16, r * d, 12 * d * d * n)
         for d in (128, 256) for n in (2, 4, 8) for r in (2, 4)]  # fmt: skip


@dataclass
class Result:
    metrics: dict[str, Any]
    curve: list[dict[str, Any]]
    status: str = "ok"
    best_epoch: int = 1
    epochs_trained: int = 1
    val_logits: list[float] = field(default_factory=lambda: [0.1, -0.1])
    val_labels: list[int] = field(default_factory=lambda: [1, 0])


def auc(arch: ArchChoice, hp: Mapping[str, Any]) -> float:
    """Best at lr 1e-3 (any width, as under muP), dropout 0.2 and depth 2."""
    return (
        0.8
        - 0.05 * abs(math.log10(hp["lr"] / 1e-3))
        - 0.2 * abs(hp["dropout"] - 0.2)
        - 0.01 * abs(math.log2(arch.n_layers / 2))
    )


def trainer(seen: list[dict[str, Any]] | None = None) -> Callable:
    def train(arch: ArchChoice, hp: Mapping[str, Any], on_epoch: Callable) -> Result:
        if seen is not None:
            seen.append({**arch.arch_params(), **hp})
        value = auc(arch, hp)
        rec = {
            "epoch": 1,
            "train_loss": 0.6,
            "val_loss": 0.6,
            "val_auc": value,
            "lr": hp["lr"],
            "seconds": 0.0,
        }
        on_epoch(rec)
        return Result({"val_auc": value, "val_loss": 0.6}, [rec])

    return train


def quiet(_: str) -> None:
    pass


def _source_study(storage: Path, name: str, kind: str = "mup", n_trials: int = 12) -> None:
    run_study(
        SearchSpace.build(SMALL, CHOICES),
        trainer(),
        study_name=name,
        storage=str(storage),
        options=StudyOptions(n_trials=n_trials, n_forced=2, pruner="none", tpe_startup_trials=4, seed=1),
        study_attrs={"parametrization": kind},
        log=quiet,
    )


def _load(storage: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage), name))


def test_warm_started_study_enqueues_transferred_configurations_first_and_records_their_source(
    tmp_path: Path,
) -> None:
    _source_study(tmp_path, "hpo-50K-h1")
    source = _load(tmp_path, "hpo-50K-h1")
    best = source.best_trial
    space = SearchSpace.build(LARGE, CHOICES)
    sources = load_sources(str(tmp_path), ["hpo-50K-h1"], "mup", "maximize")
    assert [(s.study_name, s.trial_number) for s in sources] == [("hpo-50K-h1", best.number)]
    warm = plan_warm_start(sources, space, max_configs=5)
    seen: list[dict[str, Any]] = []
    run_study(
        space,
        trainer(seen),
        study_name="hpo-1M-h1",
        storage=str(tmp_path),
        options=StudyOptions(n_trials=12, n_forced=6, pruner="none", tpe_startup_trials=10, seed=3),
        study_attrs={"parametrization": "mup"},
        warm_start=warm,
        log=quiet,
    )
    target = _load(tmp_path, "hpo-1M-h1")
    n = len(warm.configs)
    # the mapped best, then dropout and weight decay one step down/up where the grid has that step
    inner = sum(
        0 < CHOICES[k].index(best.params[k]) < len(CHOICES[k]) - 1 for k in ("dropout", "weight_decay")
    )
    assert n == 1 + 2 * inner + (2 - inner) == 3 + inner
    # the transferred configurations are the first trials trained, in the planned order
    assert seen[:n] == [c.params for c in warm.configs]
    first = target.trials[:n]
    assert all(t.user_attrs["transferred_from"] == f"hpo-50K-h1#{best.number}" for t in first)
    assert first[0].user_attrs["transfer_kind"].endswith(":best")
    # the source's learning rate carries over unchanged; the architecture is one of the target's
    assert first[0].params["lr"] == best.params["lr"] and (
        first[0].params["d_model"],
        first[0].params["n_layers"],
    ) in {(a.d_model, a.n_layers) for a in LARGE}
    # dropout and weight decay are widened around the source's values
    assert {t.params["dropout"] for t in first} >= {best.params["dropout"]}
    assert len({(t.params["dropout"], t.params["weight_decay"]) for t in first}) == n
    # fewer forced extremes (2, not 6); no other trial claims a source
    assert sum(bool(t.user_attrs.get("forced_extreme")) for t in target.trials) == 2
    assert all("transferred_from" not in t.user_attrs for t in target.trials[n:])
    assert target.user_attrs["transferred_from"] == ["hpo-50K-h1"]
    assert target.user_attrs["transfer_sources"][0]["trial"] == best.number
    # the first sampled trials after the enqueued ones are drawn from the transferred region
    region = {tuple(sorted(p.items())) for p in warm.region}
    sampled = [
        t
        for t in target.trials
        if not t.user_attrs.get("transferred_from") and not t.user_attrs.get("forced_extreme")
    ]
    assert all(tuple(sorted(t.params.items())) in region for t in sampled[:3])
    # the trial table shows each trial's source (null for the others)
    from hpo_assets.trials.extract import extract

    table = extract([str(tmp_path)]).table
    rows = {(r["study"], r["trial_num"]): r["transferred_from"] for r in table.iter_rows(named=True)}
    assert [rows[("hpo-1M-h1", t.number)] for t in first] == [f"hpo-50K-h1#{best.number}"] * n
    assert {rows[("hpo-1M-h1", t.number)] for t in target.trials[n:]} == {None}
    assert {v for (study, _), v in rows.items() if study == "hpo-50K-h1"} == {None}


def test_a_study_started_cold_records_no_source(tmp_path: Path) -> None:
    _source_study(tmp_path, "hpo-50K-h1", n_trials=3)
    study = _load(tmp_path, "hpo-50K-h1")
    assert study.user_attrs["transferred_from"] == []
    assert all("transferred_from" not in t.user_attrs for t in study.trials)


def test_source_in_another_parametrization_is_refused_with_one_message(tmp_path: Path) -> None:
    _source_study(tmp_path, "hpo-50K-h1", kind="standard", n_trials=3)
    with pytest.raises(TransferError) as err:
        load_sources(str(tmp_path), ["hpo-50K-h1"], "mup", "maximize")
    assert str(err.value) == (
        "transfer_from: source study 'hpo-50K-h1' was trained with parametrization 'standard', the target "
        "uses 'mup'; a learning rate does not carry over between them"
    )
    with pytest.raises(TransferError, match="source study 'hpo-9M-h1' does not exist"):
        load_sources(str(tmp_path), ["hpo-9M-h1"], "standard", "maximize")
    with pytest.raises(TransferError, match="optimises maximize, the target minimize"):
        load_sources(str(tmp_path), ["hpo-50K-h1"], "standard", "minimize")


def test_resuming_a_study_in_another_parametrization_is_refused(tmp_path: Path) -> None:
    _source_study(tmp_path, "hpo-50K-h1", kind="mup", n_trials=2)
    with pytest.raises(
        StudyConfigError, match="parametrization 'standard' does not match study 'hpo-50K-h1'"
    ):
        _source_study(tmp_path, "hpo-50K-h1", kind="standard", n_trials=3)


def test_map_onto_keeps_the_source_shape_and_snaps_training_values() -> None:
    space = SearchSpace.build(LARGE, {**CHOICES, "lr": [1e-4, 3e-4]})  # the target stops at a lower lr
    src = SourceBest(
        "hpo-50K-h1", 4, 0.7,
        {"arch": "d32-L4-H2-F128", "lr": 1e-3, "dropout": 0.3, "weight_decay": 1e-3, "warmup_frac": 0.05, "batch_size": 32,
         "normalization": "revin"},
        {"d_model": 32, "n_layers": 4, "n_heads": 2, "d_ff": 128}, 50_000,
    )  # fmt: skip
    mapped = map_onto(src, space)
    # depth 4, head size 16, FFN ratio 4 kept; the widest such architecture of the target
    assert (mapped["d_model"], mapped["n_layers"], mapped["n_heads"], mapped["d_ff_ratio"]) == (256, 4, 16, 4)
    assert mapped["lr"] == 3e-4  # nearest on a log scale to the source's 1e-3
    assert {k: mapped[k] for k in ("dropout", "weight_decay", "warmup_frac", "batch_size")} == {
        "dropout": 0.3, "weight_decay": 1e-3, "warmup_frac": 0.05, "batch_size": 32
    }  # fmt: skip
