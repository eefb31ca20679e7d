"""Per-trial cost of the search machinery itself (TPE ask, steering, journal writes), no training.

    .venv/bin/python benchmarks/search_overhead.py [n_trials] [budget]

A constant-time fake trainer reports 10 epochs per trial, so what is timed is Optuna + steering +
storage: it should stay far below one real epoch. Prints seconds per trial and the steering share.
"""

from __future__ import annotations

import sys
import tempfile
import time
from types import SimpleNamespace

import optuna

from hpo_assets.search.build import study_space
from hpo_assets.search.runner import StudyOptions, run_study


def fake_train(arch, hp, on_epoch):
    curve = []
    for epoch in range(1, 11):
        rec = {"epoch": epoch, "train_loss": 0.69, "val_loss": 0.69, "val_auc": 0.5 + 0.001 * (arch.d_model % 7),
               "lr": hp["lr"], "seconds": 0.0}  # fmt: skip
        curve.append(rec)
        on_epoch(rec)
    auc = curve[-1]["val_auc"] + 0.01 * hp["dropout"]
    return SimpleNamespace(
        status="ok",
        metrics={"val_auc": auc, "val_loss": 0.69},
        curve=curve,
        best_epoch=10,
        best_val_loss=0.69,
        epochs_trained=10,
        early_stopped=False,
        val_logits=[0.0] * 500,
        val_labels=[0, 1] * 250,
        device="cpu",
        duration_sec=0.0,
    )


def main(n_trials: int, budget: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = study_space(budget)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_study(space, fake_train, study_name="bench", storage=tmp,
                        options=StudyOptions(n_trials=n_trials, pruner="median"), log=lambda m: None)  # fmt: skip
        seconds = time.perf_counter() - t0
    print(f"budget {budget}: space {space.size:,} configurations; {n_trials} trials in {seconds:.1f} s "
          f"= {seconds / n_trials * 1000:.0f} ms/trial (10 epochs reported each); "
          f"steered repeats {run.steered}, skipped {run.skipped_duplicates}; "
          f"complete {run.complete}, pruned {run.pruned}")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, sys.argv[2] if len(sys.argv) > 2 else "2M")
