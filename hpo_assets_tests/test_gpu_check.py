"""benchmarks/gpu_check.py: one line and exit 0 without CUDA (real subprocess, torch never imported), inputs
that pyarrow alone reads back as the trainer's data, no Dagster/TA-Lib/polars on the trainer and study path;
the CUDA run itself is `gpu`-marked and skipped on CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
assert _spec is not None and _spec.loader is not None
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)

# Runs the script as `python gpu_check.py` would, then says whether torch was imported on the way.
PROBE = (
    "import runpy, sys; sys.argv = [sys.argv[1]] + sys.argv[2:]\n"
    "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "print('torch imported:', 'torch' in sys.modules); sys.exit(code)\n"
)


@pytest.mark.parametrize("visible", ["", None])
def test_without_cuda_one_line_and_exit_0_before_importing_torch(tmp_path: Path, visible: str | None) -> None:
    if Path("/dev/nvidiactl").exists() or torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(SCRIPT), "--out", str(out), "--data", str(tmp_path / "absent")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [gpu_check.NO_CUDA, "torch imported: False"]
    assert proc.stderr == "" and not out.exists(), "nothing measured, nothing written"


@pytest.mark.parametrize(
    ("name", "peak"),
    [("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.4),
     ("NVIDIA A100-SXM4-80GB", 312.0), ("Tesla T4", None)],
)  # fmt: skip
def test_bf16_peak_by_device_name(name: str, peak: float | None) -> None:
    assert gpu_check.peak_tflops(name) == peak


def test_cuda_tolerance_is_the_reproduction_checks() -> None:
    from hpo_assets.training.release import CUDA_TOLERANCE

    assert gpu_check.CUDA_TOLERANCE == CUDA_TOLERANCE


def test_made_inputs_read_back_as_the_prepared_data(tmp_path: Path) -> None:
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.settings import settings

    gpu_check.make_features(tmp_path)
    demo = settings("demo")["study"]
    window = {k: demo[k] for k in ("start", "end", "val_start", "test_start")}
    for name, kwargs in (("full", {}), ("demo", window)):
        want = prepare_dataset(load_market(default_market_path()), 1, **kwargs)
        got = gpu_check.load_data(tmp_path, name)
        np.testing.assert_array_equal(got.x, want.x)
        np.testing.assert_array_equal(got.y, want.y)
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(got.split, part), getattr(want.split, part))
        assert (got.context, got.n_features, got.split.kind) == (
            want.context,
            want.n_features,
            want.split.kind,
        )
        assert str(got.dates[0])[:10] == str(want.dates[0]) and got.label_mode == want.label_mode
    with pytest.raises(FileNotFoundError, match="--make-features"):
        gpu_check.load_data(tmp_path / "nowhere", "full")


BLOCKED = (
    "import importlib, importlib.abc, runpy, sys\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name.split('.')[0] in {'dagster', 'talib', 'polars', 'upath'}:\n"
    "            raise ImportError('blocked ' + name)\n"
    "sys.meta_path.insert(0, Block()); sys.path.insert(0, sys.argv[1])\n"
    "check = runpy.run_path(sys.argv[2])\n"
    "assert check['import_study_path']() == ['polars', 'talib']\n"
    "assert 'polars' not in sys.modules and 'talib' not in sys.modules\n"
    "data = check['load_data'](check['Path'](sys.argv[3]), 'demo')\n"
    "from hpo_assets.training.trainer import TrainConfig, train_prepared\n"
    "arch = check['median_shape']('2M', data)[0]\n"
    "cfg = TrainConfig(batch_size=128, max_epochs=1, device='cpu', num_threads=1)\n"
    "result = train_prepared(data, arch, cfg)\n"
    "print('ok', result.status, result.metrics['val_auc'] is not None)\n"
)


def test_the_trainer_and_study_path_run_without_dagster_talib_or_polars(tmp_path: Path) -> None:
    gpu_check.make_features(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(ROOT), str(SCRIPT), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "ok ok True", proc.stderr[-2000:]


@pytest.mark.slow
def test_demo_study_runs_without_dagster_on_cpu(tmp_path: Path) -> None:
    gpu_check.make_features(tmp_path / "data")
    result = gpu_check.demo_study(gpu_check.load_data(tmp_path / "data", "demo"), "cpu", tmp_path / "hpo", 2)
    assert result["complete"] + result["pruned"] == 2 and result["failed"] == 0
    assert result["wall_s"] > 0 and result["best_value"] is not None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_check_on_cuda(tmp_path: Path) -> None:
    gpu_check.make_features(tmp_path / "data")
    out = tmp_path / "r.json"
    args = ["--data", str(tmp_path / "data"), "--out", str(out), "--budgets", "2M", "--steps", "20",
            "--study-trials", "3", "--pack-levels", "1", "2", "--pack-window-s", "5"]  # fmt: skip
    assert gpu_check.main(args) == 0
    report = json.loads(out.read_text())
    assert report["lease"]["only_its_gpu"] is True and report["lease"]["distinct_slots"] is True
    shape = report["shapes"]["2M"]
    assert shape["samples_per_s"] > 0 and shape["host_syncs"] >= 1
    assert report["reproducibility"]["val_auc_diff"] <= gpu_check.CUDA_TOLERANCE
    assert report["demo_study"]["complete"] + report["demo_study"]["pruned"] == 3
