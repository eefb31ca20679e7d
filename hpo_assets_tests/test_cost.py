"""The cost estimate: FLOPs agree with torch's own counter, the fit recovers known costs, and on demo
partitions the prediction made before a study runs is within a factor 3 of the hours it then took."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from hpo_assets.cli import main
from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.assets.studies import hpo_study
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.model.params import Arch
from hpo_assets.model.patchtst import PatchTSTClassifier
from hpo_assets.planning import cost

SHAPE = cost.Shape(n_features=25, context=80, patch_len=16, stride=8, n_train=400, n_val=170)
# The stated factor: predicted / measured hours of a study run, on a CPU shared with other processes.
FACTOR = 3.0


@pytest.mark.parametrize("arch", [Arch(64, 2, 4, 256), Arch(256, 3, 16, 1024), Arch(96, 20, 2, 192)])
def test_forward_flops_match_torch_flop_counter(arch: Arch) -> None:
    model = PatchTSTClassifier(SHAPE.n_features, arch, SHAPE.context, SHAPE.patch_len, SHAPE.stride).eval()
    x = torch.randn(8, SHAPE.context, SHAPE.n_features)
    # The math attention backend runs as matmuls the counter sees (it does not count fused CPU kernels).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert cost.forward_flops(arch, SHAPE) == counter.get_total_flops() / 8


def _obs(arch: Arch, seconds_per_epoch: float, epochs: int = 4, batch: int = 64) -> cost.Observation:
    return cost.Observation(arch, SHAPE, epochs, 10, seconds_per_epoch * epochs, "cpu", epochs < 10, batch)


def test_calibration_recovers_overhead_throughput_and_per_layer_cost() -> None:
    archs = [Arch(64, 2, 4, 256), Arch(128, 4, 8, 512), Arch(256, 3, 16, 1024), Arch(96, 20, 2, 192)]
    truth = cost.Calibration(0.4, 5e9, "truth", s_per_layer_step=2e-3)
    obs = [_obs(a, truth.seconds_per_epoch(a, SHAPE, b), batch=b) for a in archs for b in (32, 128)]
    fit = cost.calibrate(obs, "cpu")
    assert fit is not None and fit.n_trials == len(obs) and "8 trials in storage on cpu" in fit.basis
    assert fit.overhead_s == pytest.approx(0.4, rel=1e-3)
    assert fit.flops_per_s == pytest.approx(5e9, rel=1e-3)
    assert fit.s_per_layer_step == pytest.approx(2e-3, rel=1e-3)
    assert cost.calibrate(obs, "cuda:1") is None, "CPU trials say nothing about a GPU"


def test_epoch_fraction_reads_pruning_and_early_stopping() -> None:
    a = Arch(64, 2, 4, 256)
    frac = cost.epoch_fraction([_obs(a, 1.0, epochs=10), _obs(a, 1.0, epochs=5), _obs(a, 1.0, epochs=3)])
    assert frac.fraction == pytest.approx((1.0 + 0.5 + 0.3) / 3)
    assert frac.pruning_rate == pytest.approx(2 / 3)
    empty = cost.epoch_fraction([])
    assert empty.fraction == 1.0 and empty.pruning_rate is None and "upper bound" in empty.basis


def _meta(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("hpo_study")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_predicted_hours_within_a_factor_of_measured_on_demo_partitions(
    isolated_dirs: Path, capsys: pytest.CaptureFixture
) -> None:
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    config = {"profile": "demo", "n_trials": 3, "max_epochs": 2, "n_forced": 2,
              "architectures": ["d96-L20-H2-F192", "d192-L6-H8-F384", "d256-L3-H16-F1024"]}  # fmt: skip
    metas = []
    instance = dg.DagsterInstance.ephemeral()
    for key in ("2M|h1", "2M|h3"):
        result = dg.materialize(
            [hpo_study],
            partition_key=key,
            resources={"paths": HpoPaths(), "gpu": GpuLeases()},
            run_config={"ops": {"hpo_study": {"config": config}}},
            instance=instance,
        )
        metas.append(_meta(result))
    messages = [(e.level, e.user_message) for e in instance.all_logs(result.run_id) if e.user_message]
    epoch_levels = {lvl for lvl, msg in messages if " epoch 1/2:" in msg}
    outcome_levels = {lvl for lvl, msg in messages if ": COMPLETE val_auc=" in msg}
    # per-epoch lines are DEBUG, except one at INFO at most every 30 s so a long trial shows it is alive
    logs = [e for e in instance.all_logs(result.run_id) if e.user_message and " epoch " in e.user_message]
    info = [e.timestamp for e in logs if e.level == logging.INFO and " epoch 1/2:" in e.user_message]
    span = (max(e.timestamp for e in logs) - min(e.timestamp for e in logs)) if logs else 0.0
    assert logging.DEBUG in epoch_levels and epoch_levels <= {logging.DEBUG, logging.INFO}
    assert len(info) <= 1 + span / 30, "per-epoch lines are DEBUG, not console noise"
    assert outcome_levels == {logging.INFO}
    first, second = metas
    assert "probe" in first["prediction_basis"], "an empty storage is calibrated by a measured probe"
    assert "3 trials in storage on cpu" in second["prediction_basis"], "then by the trials it holds"
    for meta in metas:
        ratio = meta["predicted_over_measured"]
        assert 1 / FACTOR <= ratio <= FACTOR, meta
        assert meta["predicted_hours"] > 0 and meta["measured_hours"] > 0

    # The CLI plans the same partitions from that storage: nothing left to run at this target.
    assert main(["plan", "2M|h1,2M|h3", "--profile", "demo", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "calibration: 6 trials in storage on cpu" in out
    assert "2M|h1" in out and "12 trials x <= 3 epochs" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("2M|")]
    assert [r[2] for r in rows] == ["9", "9"], "12 demo trials, 3 already counted in each study"


def test_plan_rejects_a_bad_partition_and_profile_naming_the_choices(capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", "3M|h1"]) == 2
    assert "budget '3M' is not one of ['200K', '2M', '20M', '200M', '2B']" in capsys.readouterr().err
    assert main(["plan", "2M|h1", "--profile", "quick"]) == 2
    assert "unknown profile 'quick'" in capsys.readouterr().err


def test_study_asset_and_jobs_say_what_a_partition_costs_per_profile() -> None:
    from hpo_assets.definitions import defs

    desc = defs.resolve_asset_graph().get(dg.AssetKey("hpo_study")).description
    assert "hpo-assets plan" in desc and "predicted and measured hours" in desc
    for job, profile in (("study_demo_job", "demo"), ("study_job", "full")):
        definition = defs.resolve_job_def(job)
        assert f"--profile {profile}" in definition.description
        assert (
            definition.get_run_config_for_partition_key("2M|h1")["ops"]["hpo_study"]["config"]["profile"]
            == profile
        )
