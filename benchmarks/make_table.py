"""A dense, seed-replicated table of real training runs: the ground truth the search replay reads.

Every valid architecture of the budget's band at the demo profile (window, split, epochs, patience,
one CPU thread) crossed with a few values of lr and dropout, the other training choices at the middle
of their lists (model/training.yaml), each configuration trained with several initialisation seeds by
the project's own trainer (search/objective.py TorchTrainer). Per run it stores the per-epoch curve
(val AUC, val loss, train loss), the seconds, and the objective (val AUC at the best epoch, the value a
study records), so a replay can answer any proposal of any sampler and replay pruners from the curves.

Resumable: runs are appended, one JSON line each (flushed and fsynced), to a per-shard file under
benchmarks/.cache/table/; a run already there (or in the shipped Parquet) is skipped. Architectures
are visited in a fixed random order, each with all its training choices and seeds, so a table cut
short is the full grid over a random subset of shapes (still a product space a sampler can search),
not a biased corner of it.

    nice -n 19 .venv/bin/python benchmarks/make_table.py --task 2M_h1 --shard 0/2   # and 1/2 beside it
    .venv/bin/python benchmarks/make_table.py --task 2M_h1 --collect   # -> benchmarks/data/2M_h1.parquet

`--collect` writes the Parquet table, its provenance (benchmarks/data/PROVENANCE.md) and prints the
table's signal-to-noise (benchmarks/replay.py `snr`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = Path(__file__).resolve().parent / "data"
CACHE = Path(__file__).resolve().parent / ".cache" / "table"
ORDER_SEED = 20261207  # the fixed random order configurations are visited in


@dataclass(frozen=True)
class Task:
    """One table: a budget and horizon at a profile, the lr x dropout grid and the training seeds."""

    name: str
    budget: str
    horizon: int
    lrs: tuple[float, ...]
    dropouts: tuple[float, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    profile: str = "demo"


TASKS: dict[str, Task] = {
    "2M_h1": Task("2M_h1", "2M", 1, lrs=(1.0e-4, 1.0e-3, 3.0e-3), dropouts=(0.1, 0.5)),
    "2M_h5": Task("2M_h5", "2M", 5, lrs=(1.0e-4, 1.0e-3, 3.0e-3), dropouts=(0.1,)),
}


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise SystemExit(f"make_table: unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n; anything else is one clear error naming the flag."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise SystemExit(f"make_table: --shard {text!r} must be i/n, e.g. 0/2") from None
    if not 0 <= i < n:
        raise SystemExit(f"make_table: --shard {text!r} needs 0 <= i < n")
    return i, n


def build(task: Task) -> tuple[Any, Any, Any]:
    """(prepared data, the table's SearchSpace, the profile's StudySettings) for a task, built by the
    same functions a study uses (search/build.py), the training lists narrowed to the task's grid."""
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.search.build import prepared_for, study_space
    from hpo_assets.search.space import TRAIN_PARAMS, SearchSpace
    from hpo_assets.search.study_settings import study_settings

    cfg = study_settings(task.profile)
    data = prepared_for(load_market(default_market_path()), task.horizon, cfg)
    full = study_space(task.budget, data, cfg)
    choices: dict[str, list[Any]] = {k: [full.middle_choice(k)] for k in TRAIN_PARAMS}
    for name, values in (("lr", task.lrs), ("dropout", task.dropouts)):
        missing = [v for v in values if v not in full.choices[name]]
        if missing:
            raise SystemExit(f"make_table: task {task.name}: {name} {missing} not in model/training.yaml")
        choices[name] = list(values)
    space = SearchSpace.build(full.archs, choices, n_train=len(data.split.train), max_epochs=cfg.max_epochs)
    return data, space, cfg


def grid(space: Any) -> list[dict[str, Any]]:
    """Every configuration of the table's space, config_id = position in this list."""
    import itertools

    from hpo_assets.search.space import TRAIN_PARAMS

    out = []
    for arch in space.archs:
        for values in itertools.product(*(space.choices[k] for k in TRAIN_PARAMS)):
            out.append(space.params(arch, dict(zip(TRAIN_PARAMS, values, strict=True))))
    return out


def visit_order(n_archs: int) -> np.ndarray:
    """Architecture indices in the fixed random order every shard shares."""
    return np.random.default_rng(ORDER_SEED).permutation(n_archs)


def shard_runs(task: Task, configs: list[dict[str, Any]], shard: tuple[int, int]) -> list[tuple[int, int]]:
    """(config_id, seed) pairs of one shard: every n-th architecture of the visit order, each with all its
    training choices and seeds, so a table cut short is still a full grid over a random set of shapes."""
    i, n = shard
    arch_of = [(c["d_model"], c["n_layers"], c["n_heads"], c["d_ff_ratio"]) for c in configs]
    archs = list(dict.fromkeys(arch_of))
    mine = {archs[int(a)] for pos, a in enumerate(visit_order(len(archs))) if pos % n == i}
    order = {archs[int(a)]: pos for pos, a in enumerate(visit_order(len(archs)))}
    ids = sorted(
        (cid for cid, a in enumerate(arch_of) if a in mine), key=lambda cid: (order[arch_of[cid]], cid)
    )
    return [(cid, s) for cid in ids for s in task.seeds]


def done_runs(task: Task) -> set[tuple[int, int]]:
    """(config_id, seed) pairs already stored in any shard file or the shipped table."""
    done: set[tuple[int, int]] = set()
    for path in sorted(CACHE.glob(f"{task.name}.*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill mid-write: that run is redone
                    continue
                done.add((int(rec["config_id"]), int(rec["seed"])))
    table = DATA / f"{task.name}.parquet"
    if table.exists():
        frame = pl.read_parquet(table, columns=["config_id", "seed"])
        done |= {(int(c), int(s)) for c, s in frame.iter_rows()}
    return done


def train_one(data: Any, space: Any, cfg: Any, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """One real run by the project's trainer; the row the table stores (objective None when there is none)."""
    from hpo_assets.search.build import torch_trainer
    from hpo_assets.search.space import TRAIN_PARAMS

    trainer = torch_trainer(data, cfg, "cpu", seed=seed)
    arch = space.arch_of(params)
    row: dict[str, Any] = {"status": "failed", "val_auc": None, "reason": None, "best_epoch": None,
                           "epochs_trained": 0, "curve_val_auc": [], "curve_val_loss": [],
                           "curve_train_loss": [], "curve_seconds": []}  # fmt: skip
    t0 = time.perf_counter()
    try:
        res = trainer(arch, {k: params[k] for k in TRAIN_PARAMS}, lambda _record: None)
    except Exception as exc:  # a failed run is stored with its reason, never as a number
        row["reason"] = f"{type(exc).__name__}: {exc}"
    else:
        row.update(
            status=res.status,
            best_epoch=res.best_epoch,
            epochs_trained=res.epochs_trained,
            curve_val_auc=[_num(r.get("val_auc")) for r in res.curve],
            curve_val_loss=[_num(r.get("val_loss")) for r in res.curve],
            curve_train_loss=[_num(r.get("train_loss")) for r in res.curve],
            curve_seconds=[_num(r.get("seconds")) for r in res.curve],
        )
        value = _num(res.metrics.get("val_auc"))
        if res.status == "diverged":
            row["reason"] = f"diverged at epoch {res.diverge_epoch}: {res.diverged_reason}"
        elif value is None:
            row["reason"] = "val_auc is not a finite number at the best epoch"
        else:
            row["val_auc"] = value
    row["seconds"] = time.perf_counter() - t0
    return row


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def run_shard(task: Task, shard: tuple[int, int], limit: int | None) -> None:
    data, space, cfg = build(task)
    configs = grid(space)
    done = done_runs(task)
    todo = [r for r in shard_runs(task, configs, shard) if r not in done]
    if limit is not None:
        todo = todo[:limit]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{task.name}.shard{shard[0]}of{shard[1]}.jsonl"
    print(f"{task.name} shard {shard[0]}/{shard[1]}: {len(configs)} configurations x {len(task.seeds)} seeds; "
          f"{len(todo)} runs to do -> {out}", flush=True)  # fmt: skip
    for k, (cid, seed) in enumerate(todo, 1):
        params = configs[cid]
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        load = os.getloadavg()[0]
        row = train_one(data, space, cfg, params, seed)
        arch = space.arch_of(params)
        rec = {"task": task.name, "config_id": cid, "seed": seed, "arch": arch.label,
               "param_count": arch.param_count, **params, **row, "started_utc": started,
               "load1_start": load, "load1_end": os.getloadavg()[0], "pid": os.getpid()}  # fmt: skip
        with out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        print(f"  [{k}/{len(todo)}] config {cid} seed {seed} {arch.label} lr={params['lr']} "
              f"dropout={params['dropout']}: val_auc={row['val_auc']} {row['seconds']:.1f} s load {load:.2f}",
              flush=True)  # fmt: skip


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def collect(task: Task) -> pl.DataFrame:
    """All shard rows (plus the shipped table's) -> one Parquet table; complete architectures only."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    table = DATA / f"{task.name}.parquet"
    if table.exists():
        for rec in pl.read_parquet(table).to_dicts():
            rows[(rec["config_id"], rec["seed"])] = rec
    for path in sorted(CACHE.glob(f"{task.name}.*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows.setdefault((rec["config_id"], rec["seed"]), rec)
    if not rows:
        raise SystemExit(f"make_table: no runs of {task.name} yet (run a --shard first)")
    frame = pl.DataFrame(list(rows.values()), infer_schema_length=None).sort("config_id", "seed")
    n_train = len(task.lrs) * len(task.dropouts) * len(task.seeds)  # runs of one complete architecture
    per = frame.group_by("arch").agg(pl.len().alias("n"))
    complete = per.filter(pl.col("n") == n_train)["arch"]
    frame = frame.filter(pl.col("arch").is_in(complete.implode()))
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = table.with_suffix(".parquet.tmp")
    frame.write_parquet(tmp)
    tmp.replace(table)
    return frame


def provenance(task: Task, frame: pl.DataFrame, n_grid: int, space: Any, cfg: Any, data: Any) -> str:
    """The PROVENANCE.md section of one table (what made it, on what, under what load)."""
    started, ended = frame["started_utc"].min(), frame["started_utc"].max()
    secs = frame["seconds"].to_numpy()
    load = np.concatenate([frame["load1_start"].to_numpy(), frame["load1_end"].to_numpy()])
    n_cfg = frame["config_id"].n_unique()
    return "\n".join(
        [
            f"## {task.name}: {task.budget}|h{task.horizon}, profile {task.profile}",
            "",
            f"- file: `benchmarks/data/{task.name}.parquet`, {frame.height} runs = {n_cfg} configurations x "
            f"{len(task.seeds)} seeds {list(task.seeds)} (grid {n_grid} configurations"
            + (
                ""
                if n_cfg == n_grid
                else f"; {n_grid - n_cfg} not trained before the table was cut, "
                "a random subset by the fixed visit order"
            )
            + ")",
            f"- space: {frame['arch'].n_unique()} of the {len(space.archs)} valid architectures of the {task.budget} "
            "band (all of them unless the table was cut) x lr "
            f"{list(space.choices['lr'])} x dropout {list(space.choices['dropout'])}; fixed: "
            + ", ".join(
                f"{k} {space.choices[k][0]}"
                for k in ("weight_decay", "warmup_frac", "batch_size", "normalization")
            ),
            f"- data window {cfg.start}..{cfg.end}, validation from {cfg.val_start}, test from {cfg.test_start} "
            f"(not read); {len(data.split.train)} train / {len(data.split.val)} val windows; "
            f"{cfg.max_epochs} epochs, patience {cfg.patience}, {cfg.cpu_threads or 1} CPU thread, objective "
            "val AUC at the best epoch",
            f"- command: `nice -n 19 .venv/bin/python benchmarks/make_table.py --task {task.name} --shard i/2` "
            f"(two shards side by side), then `--task {task.name} --collect`",
            f"- commit at collection: {_git('rev-parse', 'HEAD')}; CPU: {cpu_model()} ({os.cpu_count()} cores, "
            "shared with other engineers' jobs)",
            f"- runs started {started} .. {ended} UTC; seconds per run median {np.median(secs):.2f}, "
            f"range {secs.min():.2f}..{secs.max():.2f} (wall clock under contention, nice 19: NOT a speed figure)",
            f"- 1-minute load average at run start/end: median {np.median(load):.2f}, range "
            f"{load.min():.2f}..{load.max():.2f} on {os.cpu_count()} CPUs",
            f"- runs without an objective (failed/diverged): {int(frame['val_auc'].is_null().sum())}",
            "",
        ]
    )


def write_provenance(sections: dict[str, str]) -> None:
    path = DATA / "PROVENANCE.md"
    existing: dict[str, str] = {}
    if path.exists():
        parts = path.read_text().split("\n## ")[1:]
        for part in parts:
            existing[part.split(":", 1)[0]] = "## " + part.rstrip() + "\n"
    existing.update(sections)
    head = ("# Provenance of the search-benchmark tables\n\nWritten by `benchmarks/make_table.py --collect`; "
            "read by `benchmarks/replay.py`.\n")  # fmt: skip
    path.write_text(head + "\n" + "\n".join(existing[k] for k in sorted(existing)))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="2M_h1", help=f"one of {sorted(TASKS)}")
    ap.add_argument("--shard", default="0/1", help="i/n: train every n-th configuration from the i-th")
    ap.add_argument("--limit", type=int, default=None, help="train at most this many runs (timing probes)")
    ap.add_argument("--collect", action="store_true", help="write the Parquet table and its provenance")
    args = ap.parse_args(argv)
    task = task_named(args.task)
    if not args.collect:
        run_shard(task, parse_shard(args.shard), args.limit)
        return
    data, space, cfg = build(task)
    frame = collect(task)
    write_provenance({task.name: provenance(task, frame, len(grid(space)), space, cfg, data)})
    from replay import format_snr, snr

    print(format_snr(task.name, snr(frame)))


if __name__ == "__main__":
    main()
