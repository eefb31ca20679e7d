"""Trainer: learns a planted signal, restores the best checkpoint, guards divergence, decays weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpo_assets.data.dataset import PreparedData
from hpo_assets.data.splits import Split
from hpo_assets.model.params import Arch
from hpo_assets.training.device import bf16_supported, pick_device
from hpo_assets.training.divergence import DIVERGED_LOSS, first_divergence
from hpo_assets.training.metrics import classification_metrics
from hpo_assets.training.schedule import warmup_steps_for
from hpo_assets.training.trainer import (
    TrainConfig,
    build_optimizer,
    lr_lambda,
    train,
    train_prepared,
    zscore_stats,
)

CTX, PATCH, STRIDE = 32, 8, 4
TINY = Arch(16, 1, 2, 32)


def planted(n: int = 1000, n_features: int = 4, seed: int = 0, noise: float = 0.0):
    """Label = the last 4 days of feature 0 sit above the window's mean (a function of the inputs)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    y = np.full(n, np.nan, dtype=np.float32)
    for t in range(CTX - 1, n):
        w = x[t - CTX + 1 : t + 1, 0]
        y[t] = float(w[-4:].mean() > w.mean())
    if noise:
        flip = rng.random(n) < noise
        y[flip] = 1 - y[flip]
    idx = np.arange(CTX - 1, n)
    cut = int(len(idx) * 0.7)
    return x, y, idx[:cut], idx[cut:]


def fit(cfg: TrainConfig, data=None, arch: Arch = TINY, **kw):
    # one thread: tiny models gain nothing from two, and OpenMP barriers stall when the machine is busy
    cfg.num_threads = 1
    x, y, tr, va = data if data is not None else planted()
    return train(x, y, tr, va, arch, cfg, context=CTX, patch_len=PATCH, stride=STRIDE, **kw)


def test_tiny_model_learns_planted_signal() -> None:
    threads = torch.get_num_threads()
    res = fit(TrainConfig(lr=3e-3, warmup_steps=10, batch_size=64, max_epochs=8, patience=4))
    assert torch.get_num_threads() == threads  # the run's thread setting is restored
    assert res.status == "ok"
    assert res.metrics["val_auc"] > 0.9
    assert res.param_count == sum(p.numel() for p in res.model.parameters())
    assert len(res.val_logits) == len(res.val_labels) > 0
    assert res.device == "cpu" and next(res.model.parameters()).device.type == "cpu"


def test_best_checkpoint_is_restored_not_the_last_epoch() -> None:
    # few noisy samples, a big model, no regularisation and a flat lr: it overfits, val loss turns up
    x, y, tr, va = planted(n=400, noise=0.3, seed=1)
    cfg = TrainConfig(
        lr=3e-3,
        weight_decay=0.0,
        dropout=0.0,
        warmup_steps=0,
        batch_size=32,
        max_epochs=12,
        patience=50,
        objective="val_loss",
    )
    res = fit(cfg, (x, y, tr[:150], va), arch=Arch(32, 2, 2, 128))
    assert res.status == "ok" and not res.early_stopped and res.epochs_trained == 12
    best = res.curve[res.best_epoch - 1]
    assert res.best_epoch < res.epochs_trained
    assert res.metrics["val_loss"] == best["val_loss"] == res.best_val_loss
    assert res.metrics["val_loss"] != res.curve[-1]["val_loss"]
    assert best["val_loss"] == min(c["val_loss"] for c in res.curve)
    assert res.metrics["train_loss"] == best["train_loss"]
    # the returned logits are the restored model's
    assert classification_metrics(res.val_logits, res.val_labels)["val_loss"] == res.metrics["val_loss"]


def test_early_stopping_stops_after_patience() -> None:
    x, y, tr, va = planted(n=400, noise=0.3, seed=1)
    cfg = TrainConfig(
        lr=3e-3,
        weight_decay=0.0,
        dropout=0.0,
        warmup_steps=0,
        batch_size=32,
        max_epochs=40,
        patience=2,
        objective="val_loss",
    )
    res = fit(cfg, (x, y, tr[:150], va), arch=Arch(32, 2, 2, 128))
    assert res.early_stopped and res.epochs_trained == res.best_epoch + 2 < 40


def test_huge_learning_rate_is_diverged_not_raised() -> None:
    res = fit(TrainConfig(lr=50.0, warmup_steps=0, batch_size=64, max_epochs=5))
    assert res.status == "diverged"
    assert res.diverge_epoch == 1 and res.epochs_trained == 1
    assert res.diverged_reason.startswith("train_loss=")
    assert res.best_epoch is None and res.metrics["val_auc"] is None
    # the table's rule (training/divergence.py) reads the same epoch from the recorded curve
    broke = first_divergence(res.curve)
    assert broke is not None and broke[0] == res.diverge_epoch


def test_divergence_rule_is_absolute_and_shared() -> None:
    assert first_divergence([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.69}]) is None
    assert (
        first_divergence([{"epoch": 1, "val_loss": 0.69}, {"epoch": 2, "val_loss": DIVERGED_LOSS + 0.01}])[0]
        == 2
    )
    assert first_divergence([{"epoch": 1, "train_loss": float("nan"), "val_loss": None}])[0] == 1
    assert first_divergence([{"epoch": 3, "train_loss": 0.5, "val_loss": None}]) is None  # not measured


def test_warmup_fraction_sets_steps_from_the_run_length() -> None:
    x, y, tr, va = planted()
    steps = math.ceil(len(tr) / 64) * 3
    a = fit(TrainConfig(lr=3e-3, warmup_frac=0.0, batch_size=64, max_epochs=3, patience=3))
    b = fit(TrainConfig(lr=3e-3, warmup_frac=0.1, batch_size=64, max_epochs=3, patience=3))
    assert warmup_steps_for(0.1, steps) == math.ceil(0.1 * steps)
    assert a.curve[0]["train_loss"] != b.curve[0]["train_loss"]  # the fraction changes training
    with pytest.raises(ValueError, match="warmup_frac"):
        TrainConfig(warmup_frac=1.5).validate()


def test_zscore_uses_training_rows_only_and_trains() -> None:
    x, y, tr, va = planted()
    shifted = x.copy()
    shifted[va.min() :] += 100.0  # validation rows only: z-score statistics must not see them
    mean, std = zscore_stats(shifted, tr, CTX)
    z = (shifted - mean) / std
    first, last = int(tr.min()) - CTX + 1, int(tr.max()) + 1
    assert np.allclose(z[first:last].mean(axis=0), 0.0, atol=1e-4)
    assert z[va.max()].mean() > 50  # the validation shift is kept, not normalised away
    res = fit(TrainConfig(lr=3e-3, warmup_frac=0.0, batch_size=64, max_epochs=3, normalization="zscore"))
    revin = fit(TrainConfig(lr=3e-3, warmup_frac=0.0, batch_size=64, max_epochs=3, normalization="revin"))
    assert res.status == "ok" and res.curve != revin.curve
    with pytest.raises(ValueError, match="normalization"):
        TrainConfig(normalization="minmax").validate()


def test_weight_decay_changes_the_weights() -> None:
    cfg = dict(lr=3e-3, warmup_steps=0, batch_size=64, max_epochs=2, dropout=0.0)
    plain = fit(TrainConfig(weight_decay=0.0, **cfg)).model
    decayed = fit(TrainConfig(weight_decay=0.5, **cfg)).model
    w0, w1 = plain.layers[0].linear1.weight, decayed.layers[0].linear1.weight
    assert not torch.equal(w0, w1)
    assert w1.norm() < w0.norm()


def test_optimizer_decays_only_weight_matrices() -> None:
    from hpo_assets.model.patchtst import PatchTSTClassifier

    model = PatchTSTClassifier(4, TINY, CTX, PATCH, STRIDE)
    opt = build_optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"])
    assert any(p is model.pos_embed for p in no_decay["params"])


def test_identical_seeds_give_identical_curves() -> None:
    cfg = TrainConfig(lr=3e-3, warmup_steps=5, batch_size=64, max_epochs=3, seed=7)

    def strip(res):
        return [{k: v for k, v in c.items() if k != "seconds"} for c in res.curve]

    a, b = fit(cfg), fit(cfg)
    assert strip(a) == strip(b)
    assert np.array_equal(a.val_logits, b.val_logits)
    other = fit(TrainConfig(lr=3e-3, warmup_steps=5, batch_size=64, max_epochs=3, seed=8))
    assert strip(other) != strip(a)


def test_on_epoch_sees_every_epoch_and_its_exceptions_propagate() -> None:
    class Pruned(Exception):
        pass

    seen: list[dict] = []

    def hook(record: dict) -> None:
        seen.append(record)
        if record["epoch"] == 2:
            raise Pruned

    with pytest.raises(Pruned):
        fit(TrainConfig(lr=3e-3, batch_size=64, max_epochs=5), on_epoch=hook)
    assert [r["epoch"] for r in seen] == [1, 2]
    assert {"epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"} <= set(seen[0])


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    f = lr_lambda(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.5)
    assert f(110) == pytest.approx(0.0, abs=1e-12)
    assert all(f(s) >= f(s + 1) for s in range(10, 110))


def test_train_prepared_uses_the_split_and_context() -> None:
    x, y, tr, va = planted(n=300)
    data = PreparedData(
        x=x,
        y=y,
        dates=np.arange(len(y)),
        feature_names=[f"f{i}" for i in range(4)],
        split=Split(train=tr, val=va, test=va[:0]),
        context=CTX,
        horizon=1,
    )
    res = train_prepared(data, TINY, TrainConfig(batch_size=64, max_epochs=1), patch_len=PATCH, stride=STRIDE)
    assert res.status == "ok" and len(res.val_labels) == len(va)
    assert np.array_equal(res.val_labels, y[va])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cfg": TrainConfig(objective="auc")}, "objective"),
        ({"cfg": TrainConfig(lr=-1.0)}, "lr"),
        ({"cfg": TrainConfig(batch_size=0)}, "batch_size"),
        ({"cfg": TrainConfig(lr=math.nan)}, "lr"),
        ({"cfg": TrainConfig(device="tpu")}, "device"),
        ({"val_idx": np.array([5])}, "val_idx holds rows outside"),
        ({"val_idx": np.array([999, 5000])}, "val_idx holds rows outside"),
        ({"y_nan_at_train": True}, "unlabelled"),
        ({"x_nan": True}, "non-finite"),
    ],
)
def test_bad_inputs_are_named(change: dict, message: str) -> None:
    x, y, tr, va = planted(n=200)
    if change.get("y_nan_at_train"):
        y[tr[3]] = np.nan
    if change.get("x_nan"):
        x[tr[10], 1] = np.inf
    cfg = change.get("cfg", TrainConfig(max_epochs=1))
    with pytest.raises(ValueError, match=message):
        train(x, y, tr, change.get("val_idx", va), TINY, cfg, context=CTX, patch_len=PATCH, stride=STRIDE)


def test_one_class_validation_needs_val_loss_objective() -> None:
    x, y, tr, va = planted(n=200)
    y[va] = 0.0
    with pytest.raises(ValueError, match="one class"):
        fit(TrainConfig(max_epochs=1), (x, y, tr, va))
    res = fit(TrainConfig(max_epochs=1, objective="val_loss"), (x, y, tr, va))
    assert res.metrics["val_auc"] is None and res.metrics["val_loss"] is not None


def test_pick_device() -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        pick_device("gpu-please")


@pytest.mark.skipif(
    not bf16_supported(torch.device("cpu")), reason="CPU has no bf16 matmuls (AMX/AVX512-BF16)"
)
def test_cpu_bf16_autocast_still_learns_with_fp32_weights() -> None:
    res = fit(TrainConfig(lr=3e-3, warmup_steps=10, batch_size=64, max_epochs=8, patience=4, cpu_bf16=True))
    assert res.status == "ok" and res.metrics["val_auc"] > 0.9
    assert all(p.dtype == torch.float32 for p in res.model.parameters())
    assert res.val_logits.dtype == np.float32


def test_non_finite_loss_is_diverged_with_its_epoch() -> None:
    x, y, tr, va = planted()
    x[tr[100] - 3 : tr[100] + 1, 0] = 3e38  # finite inputs whose window statistics overflow to inf/NaN
    res = fit(TrainConfig(batch_size=64, max_epochs=3), (x, y, tr, va))
    assert res.status == "diverged" and res.diverge_epoch == 1
    assert "finite" in res.diverged_reason  # a non-finite loss or gradient
    assert len(res.curve) == 1 and res.metrics["val_loss"] is None


def test_classification_metrics_match_sklearn_and_are_none_where_undefined() -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    logits = np.array([-2.0, -0.5, 0.3, 1.5, 0.1, -1.0])
    labels = np.array([0, 0, 1, 1, 0, 1])
    m = classification_metrics(logits, labels)
    p = 1 / (1 + np.exp(-logits))
    assert m["val_auc"] == pytest.approx(roc_auc_score(labels, p))
    assert m["val_loss"] == pytest.approx(log_loss(labels, p))
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["pred_pos_rate"] == pytest.approx(0.5) and m["pred_min"] == pytest.approx(p.min())
    one_class = classification_metrics(np.array([-1.0, -2.0]), np.array([0, 0]))
    assert one_class["val_auc"] is None and one_class["val_pr_auc"] is None
    assert one_class["precision"] is None and one_class["recall"] is None and one_class["accuracy"] == 1.0
    assert classification_metrics(np.array([np.nan, 1.0]), np.array([0, 1]))["val_loss"] is None
