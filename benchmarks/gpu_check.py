"""The GPU device check: one prepared script, under five minutes on one H100, that writes one JSON.

A GPU machine is lent for minutes, so everything it should measure is here, ready. Two steps:

    # here (CPU, the project's venv: TA-Lib and polars build the inputs once)
    .venv/bin/python benchmarks/gpu_check.py --make-features gpu_check_data
    # there (a stock CUDA image: Python 3.12, torch, numpy, pyarrow, pyyaml, scikit-learn)
    python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 benchmarks/gpu_check.py --data gpu_check_data --out gpu_check.json

The trainer part needs no Dagster, TA-Lib or polars: `--make-features` writes the prepared arrays
(features, labels, split) as Parquet files that pyarrow reads. Modules on the study path import polars
and TA-Lib at the top for constants only, so where they are not installed the script imports those
modules with stand-ins in their place whose every attribute raises, then removes the stand-ins (nothing
of theirs runs here; a test keeps it so). The demo
study needs Optuna and the study settings pydantic, so these small wheels travel (about 8 MB):
optuna, sqlalchemy, alembic, mako, colorlog, pydantic, pydantic-core, annotated-types,
typing-inspection (`pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
manylinux2014_x86_64 -d .whl NAME==VERSION` for each, at the versions of the project's venv).
Without CUDA the script prints one line and exits 0 (tests run it so).

What it measures (each section also lands in the JSON; a section that fails records its error, and
a missing number stays null):
- `shapes`: per budget (2M, 20M, 200M, 2B for a few steps) the median shape of its space at the middle
  batch size, trained by the trainer's own step loop: samples/s, model-FLOP utilisation against the
  device's dense bf16 peak (FlopCounterMode FLOPs of one step x steps/s), peak memory, and host
  synchronisations in the step loop (`torch.cuda.set_sync_debug_mode("warn")`, each warning counted).
- `lease`: a step that leases a GPU (training/leases.py) sees only that GPU in CUDA_VISIBLE_DEVICES.
- `reproducibility`: two same-seed 2M trainings on CUDA; their val AUC / loss / logit differences
  (release.py's reproduction check assumes up to CUDA_TOLERANCE = 1e-2).
- `demo_study`: a 2M|h1 demo-profile study end to end (12 trials, Optuna journal storage), wall time,
  and its speed-up over `--cpu-study-s` (the same study on a CPU: `--cpu-baseline` measures it).
- `packing`: aggregate 2M trials/hour and epochs/s with 1, 2, 4, 8 trial processes on one GPU.
Goals (issue 21): >= 40% bf16 MFU at the 200M shape; the 2M demo partition >= 20x faster than the
2-core CPU the project is developed on.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUDGETS = ("2M", "20M", "200M", "2B")
HORIZON = 1
PACK_LEVELS = (1, 2, 4, 8)
# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s; matched in order
# against torch.cuda.get_device_name() (the first key that is a substring wins).
BF16_PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,  # SXM5 / "H100 80GB HBM3"
    "H200": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
}
CUDA_TOLERANCE = 1e-2  # training/release.py's reproduction tolerance on CUDA (a test keeps them equal)
NO_CUDA = "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False); nothing measured"


def peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a device by its name, or None for a device the table does not know."""
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


class _Absent(types.ModuleType):
    """A module that is not installed, imported by the study path for its constants only."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise RuntimeError(f"{self.__name__}.{attr}: {self.__name__} is not installed on this machine")


STUDY_PATH = (
    "hpo_assets.training.trainer",
    "hpo_assets.training.leases",
    "hpo_assets.model.budgets",
    "hpo_assets.search.objective",
    "hpo_assets.search.partition",
    "hpo_assets.search.runner",
    "hpo_assets.search.space",
    "hpo_assets.search.study_settings",
)


def import_study_path(names: tuple[str, ...] = ("polars", "talib")) -> list[str]:
    """Import the modules the check runs, with an `_Absent` stand-in for each of `names` not installed.

    The stand-ins are removed from `sys.modules` afterwards (the modules keep their reference), so other
    libraries that probe `sys.modules` for polars (scikit-learn through narwhals) find none. Returns the
    names that were stood in for.
    """
    replaced = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found and name not in sys.modules:
            sys.modules[name] = _Absent(name)
            replaced.append(name)
    try:
        for module in STUDY_PATH:
            importlib.import_module(module)
    finally:
        for name in replaced:
            del sys.modules[name]
    return replaced


# ---------------------------------------------------------------- inputs (made here, read there)


def make_features(folder: Path) -> list[Path]:
    """Prepared h1 data of the full window and of the demo window, as Parquet pyarrow can read alone."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.settings import settings

    demo = settings("demo")["study"]
    market = load_market(default_market_path())
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, window in (
        ("full", {}),
        ("demo", {k: demo[k] for k in ("start", "end", "val_start", "test_start") if demo.get(k)}),
    ):
        data = prepare_dataset(market, HORIZON, **window)
        part = np.full(len(data.y), "", dtype=object)
        for label, idx in data.split.parts().items():
            part[idx] = label
        columns = {"date": pa.array(data.dates.astype("datetime64[D]"))}
        columns |= {f: pa.array(data.x[:, i]) for i, f in enumerate(data.feature_names)}
        columns |= {"label": pa.array(data.y), "part": pa.array(part.astype(str))}
        meta = {
            "context": data.context,
            "horizon": data.horizon,
            "label_threshold": data.label_threshold,
            "label_mode": data.label_mode,
            "split_kind": data.split.kind,
            "split_details": data.split.details,
            "feature_names": data.feature_names,
        }
        table = pa.table(columns).replace_schema_metadata({"gpu_check": json.dumps(meta, default=str)})
        path = folder / f"{name}_h{HORIZON}.parquet"
        pq.write_table(table, path)
        written.append(path)
    return written


def load_data(folder: Path, name: str) -> Any:
    """A PreparedData look-alike (x, y, split.train/val, context, ...) from `make_features`' Parquet."""
    import numpy as np
    import pyarrow.parquet as pq

    path = Path(folder) / f"{name}_h{HORIZON}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it first: gpu_check.py --make-features {folder}")
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"gpu_check"])
    names = meta["feature_names"]
    x = np.stack([table.column(f).to_numpy() for f in names], axis=1).astype(np.float32)
    part = np.asarray(table.column("part").to_pylist())
    split = SimpleNamespace(
        **{k: np.flatnonzero(part == k).astype(np.int64) for k in ("train", "val", "test")},
        kind=meta["split_kind"],
        details=meta["split_details"],
    )
    return SimpleNamespace(
        x=x,
        y=table.column("label").to_numpy().astype(np.float32),
        dates=table.column("date").to_numpy(),
        feature_names=names,
        split=split,
        context=int(meta["context"]),
        horizon=int(meta["horizon"]),
        label_threshold=meta["label_threshold"],
        label_mode=meta["label_mode"],
        n_features=len(names),
    )


def median_shape(budget: str, data: Any) -> tuple[Any, int, int]:
    """The middle architecture (by parameter count) of a budget's space and its middle batch size."""
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.search.space import load_training_choices
    from hpo_assets.settings import settings

    model = settings()["model"]
    entries = sorted(
        budget_space(budget, data.n_features, data.context, int(model["patch_len"]), int(model["stride"])),
        key=lambda e: e.param_count,
    )
    entry = entries[(len(entries) - 1) // 2]
    batches = sorted(int(b) for b in load_training_choices(budget)["batch_size"])
    return entry.arch, entry.param_count, batches[(len(batches) - 1) // 2]


# ---------------------------------------------------------------- sections


def environment(device: str) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        out |= {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count,
            "bf16_peak_tflops": peak_tflops(props.name),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        n = 8192
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        out["matmul_bf16_tflops_measured"] = 10 * 2 * n**3 / (time.perf_counter() - t) / 1e12
        del a, b
        torch.cuda.empty_cache()
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def shape_throughput(
    budget: str,
    data: Any,
    device: str,
    steps: int,
    warmup: int,
    peak: float | None,
    compile_too: bool = False,
) -> dict[str, Any]:
    """The trainer's own step loop (`_Run.train_epoch`) on the budget's median shape; with `compile_too`
    the same loop again with the model under torch.compile (its compile time and samples/s)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hpo_assets.model.patchtst import PatchTSTClassifier
    from hpo_assets.settings import settings
    from hpo_assets.training.device import autocast, prepare_device
    from hpo_assets.training.trainer import TrainConfig, _Run

    arch, params, batch = median_shape(budget, data)
    model_cfg = settings()["model"]
    out: dict[str, Any] = {"arch": arch.label, "params": params, "batch": batch}
    dev = torch.device(device)
    prepare_device(dev)
    while True:
        try:
            torch.manual_seed(0)
            with dev:  # built on the device: a 2B model initialised on the host takes minutes
                model = PatchTSTClassifier(
                    data.n_features, arch, data.context, int(model_cfg["patch_len"]), int(model_cfg["stride"])
                )
            cfg = TrainConfig(batch_size=batch, max_epochs=1, device=device, seed=0, warmup_steps=0)
            train = data.split.train
            reps = math.ceil((steps + warmup) * batch / len(train))
            pool = np.tile(train, reps)
            run = _Run(model, data.x, data.y, pool[: warmup * batch], data.split.val, cfg, dev, data.context)
            xb = run.windows(run.train_idx[:batch])
            with FlopCounterMode(display=False) as counter:
                with autocast(dev):
                    loss = run.loss_fn(model(xb).float(), run.y[run.train_idx[:batch]])
                loss.backward()
            flops_per_step = counter.get_total_flops()
            model.zero_grad(set_to_none=True)
            run.train_epoch(1)  # warm-up: kernels chosen, allocator grown
            _sync(device)
            run.train_idx = torch.from_numpy(pool[: steps * batch]).to(dev)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.set_sync_debug_mode("warn")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t = time.perf_counter()
                run.train_epoch(2)
                _sync(device)
                seconds = time.perf_counter() - t
            if device.startswith("cuda"):
                torch.cuda.set_sync_debug_mode(0)
            break
        except torch.cuda.OutOfMemoryError:
            if device.startswith("cuda"):
                torch.cuda.set_sync_debug_mode(0)
            model = run = None  # type: ignore[assignment]
            torch.cuda.empty_cache()
            if batch == 1:
                raise
            batch //= 2
            out["batch"] = batch
            out["note"] = "out of memory at the middle batch size; halved until it fit"
    syncs = sum(1 for w in caught if "synchroniz" in str(w.message).lower())
    achieved = flops_per_step * steps / seconds
    out |= {
        "steps": steps,
        "seconds": seconds,
        "samples_per_s": steps * batch / seconds,
        "step_ms": 1e3 * seconds / steps,
        "train_gflop_per_step": flops_per_step / 1e9,
        "achieved_tflops": achieved / 1e12,
        "mfu_bf16": None if peak is None else achieved / (peak * 1e12),
        "host_syncs": syncs,
        "steps_per_sync": steps / syncs if syncs else None,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
    }
    if compile_too:
        try:
            out |= _compiled(run, model, pool, warmup, steps, batch, device, seconds)
        except Exception as exc:  # the eager figures stand without it
            out["compile_error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    del model, run
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def _compiled(
    run: Any, model: Any, pool: Any, warmup: int, steps: int, batch: int, device: str, eager_s: float
) -> dict:
    """The timed loop again under torch.compile: is `compile: auto` (small shapes) worth it here?"""
    import torch

    dev = torch.device(device)
    run.model = torch.compile(model)  # the optimizer keeps the same parameters
    run.train_idx = torch.from_numpy(pool[: warmup * batch]).to(dev)
    t = time.perf_counter()
    run.train_epoch(3)  # compiles (forward and backward) on the first step
    _sync(device)
    compile_s = time.perf_counter() - t
    run.train_idx = torch.from_numpy(pool[: steps * batch]).to(dev)
    t = time.perf_counter()
    run.train_epoch(4)
    _sync(device)
    seconds = time.perf_counter() - t
    return {
        "compiled_first_epoch_s": compile_s,
        "compiled_samples_per_s": steps * batch / seconds,
        "compiled_vs_eager": eager_s / seconds,
    }


def reproducibility(data: Any, device: str, epochs: int) -> dict[str, Any]:
    """Two same-seed trainings of the 2M median shape: how far apart their results land."""
    import numpy as np

    from hpo_assets.training.trainer import TrainConfig, train_prepared

    arch, _, batch = median_shape("2M", data)
    runs = []
    for _ in range(2):
        cfg = TrainConfig(batch_size=batch, max_epochs=epochs, patience=epochs, seed=7, device=device)
        runs.append(train_prepared(data, arch, cfg))
    a, b = runs
    return {
        "arch": arch.label,
        "epochs": epochs,
        "val_auc": [r.metrics["val_auc"] for r in runs],
        "val_auc_diff": abs(a.metrics["val_auc"] - b.metrics["val_auc"]),
        "val_loss_diff": abs(a.metrics["val_loss"] - b.metrics["val_loss"]),
        "max_logit_diff": float(np.max(np.abs(a.val_logits - b.val_logits))),
        "bitwise_identical": bool(np.array_equal(a.val_logits, b.val_logits)),
        "cuda_tolerance": CUDA_TOLERANCE,  # release.py's (not imported: release.py needs polars)
    }


def demo_study(data: Any, device: str, storage: Path, n_trials: int | None = None) -> dict[str, Any]:
    """The 2M|h1 demo-profile study end to end, as `hpo_study` runs it, without Dagster."""
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.search.objective import TorchTrainer
    from hpo_assets.search.partition import parse_partition, study_attrs
    from hpo_assets.search.runner import StudyOptions, run_study
    from hpo_assets.search.space import SearchSpace, arch_choices, load_training_choices
    from hpo_assets.search.study_settings import study_settings
    from hpo_assets.settings import settings

    cfg = study_settings("demo")
    if n_trials is not None:  # a shorter try-out; validated again by StudyOptions
        cfg = cfg.model_copy(update={"n_trials": n_trials, "n_forced": min(cfg.n_forced, n_trials)})
    options = StudyOptions.of(cfg)
    model = settings()["model"]
    patch_len, stride = int(model["patch_len"]), int(model["stride"])
    part = parse_partition(f"2M|h{HORIZON}")
    entries = budget_space(part.budget, data.n_features, data.context, patch_len, stride)
    space = SearchSpace.build(
        arch_choices(entries),
        load_training_choices(part.budget),
        n_train=len(data.split.train),
        max_epochs=cfg.max_epochs,
    )
    trainer = TorchTrainer(
        data, cfg.max_epochs, cfg.patience, objective=cfg.objective, seed=cfg.seed, device=device,
        patch_len=patch_len, stride=stride, num_threads=(cfg.cpu_threads or None) if device == "cpu" else None,
    )  # fmt: skip
    t = time.perf_counter()
    run = run_study(
        space, trainer, study_name=part.study_name, storage=str(storage), options=options,
        study_attrs=study_attrs(part, data, patch_len, stride), device=device, log=lambda _msg: None,
    )  # fmt: skip
    return {
        "partition": part.key,
        "device": device,
        "wall_s": time.perf_counter() - t,
        "n_trials": options.n_trials,
        "complete": run.complete,
        "pruned": run.pruned,
        "failed": run.failed,
        "diverged": run.diverged,
        "best_value": run.best_value,
    }


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", *args]


def lease_check(lease_dir: Path, timeout_s: float = 120) -> dict[str, Any]:
    """2M steps lease the way a study step does, all at once (budgets.yaml packs them per GPU), each
    holding its lease a moment; each reports what CUDA shows it."""
    from hpo_assets.model.budgets import gpu_slots, trials_per_gpu

    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    n = trials_per_gpu("2M")
    procs = [
        subprocess.Popen(
            _worker_cmd("lease", "--lease-dir", str(lease_dir)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(n)
    ]
    seen = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"lease worker failed: {stderr[-2000:]}")
        seen.append(json.loads(stdout.strip().splitlines()[-1]))
    slots = [(s["leased"], tuple(s["slots"])) for s in seen]
    return {
        "steps": seen,
        "trials_per_gpu_2M": n,
        "slots_per_gpu": gpu_slots(),
        "only_its_gpu": all(
            s["device_count"] == 1 and s["cuda_visible_devices"] == s["leased"] for s in seen
        ),
        "distinct_slots": len(set(slots)) == len(slots),
    }


def lease_worker(lease_dir: str) -> None:
    from hpo_assets.model.budgets import gpu_slots, trials_per_gpu
    from hpo_assets.training import leases

    devices = leases.visible_devices()
    lease = leases.acquire(
        lease_dir, devices, holder={"step": "gpu_check lease"}, timeout_s=60,
        share=trials_per_gpu("2M"), slots=gpu_slots(),
    )  # fmt: skip
    os.environ["CUDA_VISIBLE_DEVICES"] = lease.cuda_visible_devices
    import torch  # after the lease, as in a study step: CUDA reads the variable when it starts

    report = {
        "visible_before": devices,
        "leased": lease.physical_id,
        "slots": list(lease.slots),
        "cuda_visible_devices": os.environ["CUDA_VISIBLE_DEVICES"],
        "device_count": torch.cuda.device_count(),
        "device": lease.device,
        "name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    time.sleep(2)  # held while the others lease: they must take other slots
    print(json.dumps(report))
    lease.release()


def pack_worker(data_dir: str, device: str, epochs: int, ready: str, go: str, window_s: float) -> None:
    """One trial process of the packing measurement: warm up, wait for `go`, train 2M trials for `window_s`."""
    import torch

    from hpo_assets.training.trainer import TrainConfig, train_prepared

    data = load_data(Path(data_dir), "full")
    arch, _, batch = median_shape("2M", data)
    cfg = TrainConfig(batch_size=batch, max_epochs=1, patience=1, seed=0, device=device)
    train_prepared(data, arch, cfg)  # CUDA context, kernels: not part of the window
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    start = float(Path(go).read_text())
    ends: list[float] = []
    trials = 0
    while time.time() - start < window_s:
        cfg = TrainConfig(batch_size=batch, max_epochs=epochs, patience=epochs, seed=trials, device=device)
        train_prepared(data, arch, cfg, on_epoch=lambda _r: ends.append(time.time()))
        trials += 1
    in_window = sum(1 for t in ends if t - start <= window_s)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    print(json.dumps({"epochs_in_window": in_window, "trials_started": trials, "peak_memory_gib": peak}))


def packing(data_dir: Path, device: str, levels: tuple[int, ...], epochs: int, window_s: float) -> dict:
    """Aggregate trials/hour with k 2M trial processes sharing one GPU, for each k in `levels`."""
    out: dict[str, Any] = {"trial_epochs": epochs, "window_s": window_s, "levels": {}}
    for k in levels:
        with tempfile.TemporaryDirectory(prefix="gpu-check-pack-") as tmp:
            go = Path(tmp) / "go"
            procs = [
                subprocess.Popen(
                    _worker_cmd(
                        "pack",
                        "--data",
                        str(data_dir),
                        "--device",
                        device,
                        "--pack-epochs",
                        str(epochs),
                        "--ready",
                        str(Path(tmp) / f"ready{i}"),
                        "--go",
                        str(go),
                        "--pack-window-s",
                        str(window_s),
                    ),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                for i in range(k)
            ]
            deadline = time.time() + 180
            while sum(Path(tmp, f"ready{i}").exists() for i in range(k)) < k:
                if time.time() > deadline or any(p.poll() not in (None, 0) for p in procs):
                    for p in procs:
                        p.kill()
                    errs = " | ".join((p.communicate()[1] or "")[-500:] for p in procs)
                    raise RuntimeError(f"packing level {k}: workers did not get ready: {errs}")
                time.sleep(0.05)
            go.write_text(repr(time.time()))
            results = []
            for p in procs:
                stdout, stderr = p.communicate(timeout=window_s + 300)
                if p.returncode != 0:
                    raise RuntimeError(f"packing level {k}: a worker failed: {stderr[-1000:]}")
                results.append(json.loads(stdout.strip().splitlines()[-1]))
        epochs_done = sum(r["epochs_in_window"] for r in results)
        out["levels"][str(k)] = {
            "epochs_per_s": epochs_done / window_s,
            "trials_per_hour": 3600 * epochs_done / epochs / window_s,
            "per_process_epochs": [r["epochs_in_window"] for r in results],
            "peak_memory_gib_per_process": max((r["peak_memory_gib"] or 0) for r in results) or None,
        }
    base = out["levels"].get("1", {}).get("trials_per_hour")
    for row in out["levels"].values():
        row["vs_one"] = row["trials_per_hour"] / base if base else None
    measured = [
        (row["trials_per_hour"], int(k)) for k, row in out["levels"].items() if row["trials_per_hour"]
    ]
    out["best_trials_per_gpu"] = max(measured)[1] if measured else None
    if not measured:
        out["note"] = "no epoch ended inside the window: lengthen --pack-window-s"
    return out


# ---------------------------------------------------------------- main


def _section(report: dict, name: str, out: Path | None, fn: Any, *args: Any) -> None:
    t = time.perf_counter()
    try:
        report[name] = fn(*args)
    except Exception as exc:  # one broken section must not lose the others' figures
        report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    report.setdefault("section_seconds", {})[name] = time.perf_counter() - t
    print(f"gpu_check: {name} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    if out is not None:
        out.write_text(json.dumps(report, indent=2, default=str))


def _shapes(done: dict, budget: str, *args: Any) -> dict:
    try:
        done[budget] = shape_throughput(budget, *args)
    except Exception as exc:  # a shape that fails (2B out of memory) leaves the others measured
        done[budget] = {"error": f"{type(exc).__name__}: {exc}"}
    return done


def _verdicts(report: dict, cpu_study_s: float | None) -> dict[str, Any]:
    mfu = ((report.get("shapes") or {}).get("200M") or {}).get("mfu_bf16")
    gpu_s = (report.get("demo_study") or {}).get("wall_s")
    speedup = cpu_study_s / gpu_s if cpu_study_s and gpu_s else None
    return {
        "mfu_200M": mfu,
        "mfu_200M_goal": 0.40,
        "mfu_200M_met": None if mfu is None else mfu >= 0.40,
        "demo_speedup_vs_cpu": speedup,
        "cpu_study_s": cpu_study_s,
        "demo_speedup_goal": 20.0,
        "demo_speedup_met": None if speedup is None else speedup >= 20.0,
    }


def run_check(args: argparse.Namespace) -> int:
    import torch

    device = args.device
    started = time.perf_counter()
    out = Path(args.out) if args.out else None
    report: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    full = load_data(Path(args.data), "full")
    demo = load_data(Path(args.data), "demo")
    _section(report, "environment", out, environment, device)
    peak = report["environment"].get("bf16_peak_tflops")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        if device.startswith("cuda"):
            _section(report, "lease", out, lease_check, Path(tmp) / "leases")
        report["shapes"] = {}
        for budget in args.budgets:
            steps, warm = (args.steps_2b, 1) if budget == "2B" else (args.steps, 3)
            _section(
                report,
                "shapes",
                out,
                _shapes,
                report["shapes"],
                budget,
                full,
                device,
                steps,
                warm,
                peak,
                budget in args.compile,
            )
        _section(report, "reproducibility", out, reproducibility, full, device, args.repro_epochs)
        _section(report, "demo_study", out, demo_study, demo, device, Path(tmp) / "hpo", args.study_trials)
        if args.pack_levels:
            _section(report, "packing", out, packing, Path(args.data), device, tuple(args.pack_levels),
                     args.pack_epochs, args.pack_window_s)  # fmt: skip
    report["verdicts"] = _verdicts(report, args.cpu_study_s)
    report["total_s"] = time.perf_counter() - started
    report["torch_threads"] = torch.get_num_threads()
    text = json.dumps(report, indent=2, default=str)
    if out is not None:
        out.write_text(text)
    print(text)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--make-features", metavar="DIR", help="write the prepared inputs to DIR (on CPU) and exit"
    )
    p.add_argument("--data", default="gpu_check_data", help="folder written by --make-features")
    p.add_argument("--out", default="", help="write the JSON report here too (rewritten after each section)")
    p.add_argument("--device", default="cuda", help="cuda (the check); cpu only to try the script out")
    p.add_argument("--budgets", nargs="*", default=list(BUDGETS))
    p.add_argument("--steps", type=int, default=30, help="timed steps per shape (2B: --steps-2b)")
    p.add_argument("--steps-2b", type=int, default=4)
    p.add_argument(
        "--compile",
        nargs="*",
        default=[],
        metavar="BUDGET",
        help="also time these budgets' shapes under torch.compile (e.g. --compile 2M 20M)",
    )
    p.add_argument("--repro-epochs", type=int, default=3)
    p.add_argument(
        "--study-trials", type=int, default=None, help="demo study trials (default: the profile's 12)"
    )
    p.add_argument("--cpu-study-s", type=float, default=None, help="the demo study's wall time on a CPU")
    p.add_argument("--cpu-baseline", action="store_true", help="only time the demo study on this CPU")
    p.add_argument("--pack-levels", type=int, nargs="*", default=list(PACK_LEVELS))
    p.add_argument("--pack-epochs", type=int, default=5, help="epochs per packed 2M trial (full h1 data)")
    p.add_argument("--pack-window-s", type=float, default=15.0)
    p.add_argument("--worker", choices=["lease", "pack"], help=argparse.SUPPRESS)
    p.add_argument("--lease-dir", help=argparse.SUPPRESS)
    p.add_argument("--ready", help=argparse.SUPPRESS)
    p.add_argument("--go", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.make_features:
        for path in make_features(Path(args.make_features)):
            print(f"wrote {path}")
        return 0
    if args.worker == "lease":  # before torch is imported, as a study step leases
        lease_worker(args.lease_dir)
        return 0
    if args.device.startswith("cuda") and args.worker is None and not args.cpu_baseline:
        from hpo_assets.training.leases import visible_devices

        if not visible_devices() and not Path("/dev/nvidiactl").exists():  # no GPU: skip importing torch
            print(NO_CUDA)
            return 0
        import torch

        if not torch.cuda.is_available():
            print(NO_CUDA)
            return 0
    import_study_path()
    if args.worker == "pack":
        pack_worker(args.data, args.device, args.pack_epochs, args.ready, args.go, args.pack_window_s)
        return 0
    if args.cpu_baseline:
        with tempfile.TemporaryDirectory(prefix="gpu-check-cpu-") as tmp:
            result = demo_study(load_data(Path(args.data), "demo"), "cpu", Path(tmp), args.study_trials)
        print(json.dumps(result))
        return 0
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
