"""The search benchmark: table reader, signal-to-noise, common-random-numbers replay and its verdict rule
(benchmarks/replay.py, benchmarks/make_table.py), on tiny synthetic tables with known truth."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
replay: Any = importlib.import_module("replay")
make_table: Any = importlib.import_module("make_table")


def synthetic_frame(n_archs: int = 6, lrs: tuple[float, ...] = (1e-4, 1e-3, 3e-3), dropouts: tuple[float, ...] = (0.1, 0.5),
                    seeds: tuple[int, ...] = (0, 1, 2), signal: float = 0.03, noise: float = 0.02, seed: int = 0,
                    epochs: int = 3) -> pl.DataFrame:  # fmt: skip
    """make_table's row layout over the first architectures of the 2M band; curves rise to the objective."""
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.search.space import arch_choices

    rng = np.random.default_rng(seed)
    rows, cid = [], 0
    for a in arch_choices(budget_space("2M"))[:n_archs]:
        for lr in lrs:
            for dropout in dropouts:
                mu = 0.6 + signal * rng.standard_normal()
                for s in seeds:
                    v = float(mu + noise * rng.standard_normal())
                    curve = [v - 0.02 * (epochs - 1 - e) for e in range(epochs)]
                    rows.append({"config_id": cid, "seed": s, "arch": a.label, "param_count": a.param_count,
                                 **a.arch_params(), "lr": lr, "dropout": dropout, "weight_decay": 1e-4,
                                 "warmup_frac": 0.05, "batch_size": 64, "normalization": "revin", "val_auc": v,
                                 "curve_val_auc": curve, "curve_seconds": [1.0] * epochs})  # fmt: skip
                cid += 1
    return pl.DataFrame(rows)


def test_table_reader_builds_the_product_space_and_refuses_holes() -> None:
    frame = synthetic_frame()
    t = replay.table_from_frame("t", frame)
    assert len(t.configs) == t.space.size == 6 * 3 * 2 and t.y.shape == (36, 3) and t.max_epochs == 3
    assert t.space.choices["lr"] == (1e-4, 1e-3, 3e-3)
    # every configuration of the space is answered by its own row
    assert all(t.lookup(c) == i for i, c in enumerate(t.configs))
    with pytest.raises(ValueError, match="lack some of the seeds"):
        replay.table_from_frame("t", frame.filter(~((pl.col("config_id") == 3) & (pl.col("seed") == 1))))
    with pytest.raises(ValueError, match="do not fill the product"):
        replay.table_from_frame("t", frame.filter(pl.col("config_id") != 3))


def test_snr_interval_covers_the_true_icc() -> None:
    """Known truth: normal configuration effects (SD 0.02) and seed noise (SD 0.03): ICC = 4/13."""
    rng = np.random.default_rng(1)
    truth, hits = 0.02**2 / (0.02**2 + 0.03**2), 0
    for _ in range(400):
        y = 0.6 + 0.02 * rng.standard_normal((60, 1)) + 0.03 * rng.standard_normal((60, 3))
        s = replay.snr(y)
        hits += s["icc_lo"] <= truth <= s["icc_hi"]
    assert 0.92 <= hits / 400 <= 0.98


def test_common_random_numbers_and_held_out_scoring() -> None:
    t = replay.table_from_frame("t", synthetic_frame())
    a = replay.Observer(t, replay.Stream.of(t, 5))
    b = replay.Observer(t, replay.Stream.of(t, 5))
    other = replay.Observer(t, replay.Stream.of(t, 6))
    assert all(a.seed_for(c) == b.seed_for(c) for c in range(len(t.configs)))  # shared across arms
    assert any(a.seed_for(c) != other.seed_for(c) for c in range(len(t.configs)))  # new per replay
    c = 7
    s = a.seed_for(c)
    a.record(c, s, float(t.y[c, s]), 3)
    assert a.seed_for(c) != s  # a repeat is answered by another seed
    rest = [j for j in range(3) if j != s]
    assert a.heldout(c) == pytest.approx(t.y[c, rest].mean())  # scored on the seeds it did not see
    regret, cost = a.regret_curve()
    assert regret[0] == pytest.approx(t.regret(t.y[c, rest].mean())) and cost[0] == 1.0
    fixed = replay.Observer(t, replay.Stream.of(t, 5), fixed_seed=True)
    assert {fixed.seed_for(c) for c in range(len(t.configs))} == {5 % 3}


def test_regret_is_zero_at_the_best_and_one_on_average() -> None:
    t = replay.table_from_frame("t", synthetic_frame(noise=0.0))
    assert t.regret(t.best) == 0.0
    assert np.mean([t.regret(m) for m in t.means]) == pytest.approx(1.0)


def test_arms_replay_the_table() -> None:
    t = replay.table_from_frame("t", synthetic_frame(n_archs=8))
    n = 20
    for arm in ("random", "seed", "ours", "tpe_cl4", "ours_median"):
        regret, cost = replay.replay_one(t, arm, 0, n)
        assert regret.shape == cost.shape == (n,)
        assert np.all(np.isfinite(regret)) and np.all(np.diff(cost) > 0)
        if arm != "ours_median":
            assert cost[-1] == pytest.approx(n)  # no pruner: every trial trains all its epochs
    # the same replay is the same answer (a benchmark that can be rerun)
    r1, _ = replay.replay_one(t, "ours", 3, n)
    r2, _ = replay.replay_one(t, "ours", 3, n)
    assert np.array_equal(r1, r2)
    # the median pruner stops trials whose epoch-2 value is below the median: it saves compute here
    _, cost = replay.replay_one(t, "ours_median", 0, n)
    assert cost[-1] < n


def test_verdict_rule_false_positives_and_power() -> None:
    """Known truth: paired differences ~ t(5) * 0.3 around 0 (null) or around the detectable shift."""
    rng = np.random.default_rng(2)
    n, sd = 200, 0.3 * np.sqrt(5 / 3)
    shift = replay.detectable(sd, n)
    false_pos = detected = 0
    for i in range(100):
        null = 0.3 * rng.standard_t(5, n)
        d = replay.paired(null, np.zeros(n), seed=i)
        false_pos += replay.verdict(d, d["p"]) != "inconclusive"
        alt = replay.paired(null - shift, np.zeros(n), seed=i)
        detected += replay.verdict(alt, alt["p"]) == "better"
    assert false_pos / 100 <= 0.09
    assert 0.6 <= detected / 100 <= 0.95


def test_holm_adjusts_upward_and_keeps_order() -> None:
    assert replay.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_shards_split_whole_architectures() -> None:
    task = make_table.TASKS["2M_h1"]
    configs = [{"d_model": d, "n_layers": 1, "n_heads": 2, "d_ff_ratio": 2, "lr": lr}
               for d in (32, 64, 96, 128, 160) for lr in (1, 2)]  # fmt: skip
    shards = [make_table.shard_runs(task, configs, (i, 3)) for i in range(3)]
    runs = [r for s in shards for r in s]
    assert len(runs) == len(set(runs)) == len(configs) * len(task.seeds)
    for s in shards:  # an architecture is trained by one shard, with all its training choices and seeds
        dims = {configs[c]["d_model"] for c, _ in s}
        assert {(c, seed) for c, seed in s} == {
            (c, seed) for c, cfg in enumerate(configs) if cfg["d_model"] in dims for seed in task.seeds
        }
    with pytest.raises(SystemExit, match="--shard"):
        make_table.parse_shard("2/2")


@pytest.mark.slow
def test_make_table_trains_real_rows() -> None:
    """Two configurations x 1 epoch with the project's trainer; the row holds its curve and objective."""
    task = make_table.TASKS["2M_h1"]
    data, space, cfg = make_table.build(task)
    cfg = cfg.model_copy(update={"max_epochs": 1, "patience": 1})
    configs = make_table.grid(space)
    assert len(configs) == len(space.archs) * 3 * 2
    rows = [make_table.train_one(data, space, cfg, configs[i], 0) for i in (0, 1)]
    for row in rows:
        assert row["status"] == "ok" and row["epochs_trained"] == 1 and len(row["curve_val_auc"]) == 1
        assert row["val_auc"] == pytest.approx(row["curve_val_auc"][0]) and 0.0 < row["val_auc"] < 1.0
        assert row["seconds"] > 0
    again = make_table.train_one(data, space, cfg, configs[0], 0)
    assert again["val_auc"] == rows[0]["val_auc"]  # one thread on CPU: the table's runs are reproducible
