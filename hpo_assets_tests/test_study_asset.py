"""The hpo_study asset, materialized for real (market data -> features -> a 2M|h1 study on CPU)."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import optuna
import polars as pl
import pytest
from optuna.trial import TrialState

from hpo_assets.defs.assets.market import features, market_data
from hpo_assets.defs.assets.studies import GPU_OP_TAGS, HpoStudyConfig, hpo_study, resolve_config
from hpo_assets.defs.resources import GpuLeases, HpoPaths
from hpo_assets.search.partition import parse_partition
from hpo_assets.search.runner import StudyConfigError
from hpo_assets.search.space import PARAM_NAMES
from hpo_assets.search.storage import open_storage
from hpo_assets.trials.extract import extract

# A small window and three shallow architectures of the real 2M space keep this at about a minute on CPU.
TINY = {
    "max_epochs": 2, "patience": 2, "n_forced": 2,
    "start": "2014-01-01", "end": "2016-12-31", "val_start": "2015-10-01", "test_start": "2016-10-01",
    "architectures": ["d384-L1-H8-F1536", "d512-L1-H8-F1024", "d192-L4-H8-F768"],
    "cpu_threads": 1,  # no thread contention with other processes on a small machine
}  # fmt: skip
TRIAL_ATTRS = {"d_model", "n_layers", "n_heads", "d_ff", "param_count", "lr", "dropout", "weight_decay",
               "warmup_steps", "batch_size", "epochs_config", "device", "duration_sec", "forced_extreme",
               "extreme_type", "learning_curve", "diverged"}  # fmt: skip
DONE_ATTRS = {"val_loss", "val_auc", "val_pr_auc", "precision", "recall", "accuracy", "pred_min", "pred_max",
              "pred_pos_rate", "train_loss", "best_epoch", "metrics_epoch", "best_val_loss", "epochs_trained", "early_stopped",
              "val_logits", "val_labels"}  # fmt: skip


def _study_run(config: dict, key: str = "2M|h1", instance: dg.DagsterInstance | None = None):
    return dg.materialize([hpo_study], partition_key=key, resources={"paths": HpoPaths(), "gpu": GpuLeases()}, instance=instance,
                          run_config={"ops": {"hpo_study": {"config": config}}}, raise_on_error=False)  # fmt: skip


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1 and not result.success
    return failures[0].event_specific_data.error.message.strip()


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("hpo_study")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory):
    """market data -> features -> a 4-trial 2M|h1 study, once for the tests below (about a minute on CPU)."""
    root = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HPO_ASSETS_OUTPUTS", str(root / "outputs"))
        env.setenv("HPO_ASSETS_STORAGE", str(root / "hpo"))
        assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
        instance = dg.DagsterInstance.ephemeral()
        result = _study_run({**TINY, "n_trials": 4}, instance=instance)
        assert result.success
        journal = root / "hpo" / "hpo-2M-h1.journal"
        study = optuna.load_study(
            study_name="hpo-2M-h1", storage=open_storage(str(journal.parent), "hpo-2M-h1")
        )
        yield SimpleNamespace(root=root, instance=instance, result=result, journal=journal, study=study)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def test_trials_are_logged_with_their_label_and_epochs(first_run) -> None:
    logged = [e.user_message for e in first_run.instance.all_logs(first_run.result.run_id)]
    assert any(m.startswith("trial 1/4 #0: ") and "[forced min_d_model]" in m for m in logged)
    assert any(m.startswith("trial 4/4 #3 epoch 1/2: ") and "val_auc=" in m for m in logged)


def test_four_trials_forced_extremes_first_each_recording_its_configuration(first_run) -> None:
    trials = first_run.study.trials
    assert len(trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
    assert [t.user_attrs["forced_extreme"] for t in trials] == [True, True, False, False]
    assert _complete(first_run.study)
    for t in trials:
        assert TRIAL_ATTRS <= set(t.user_attrs), TRIAL_ATTRS - set(t.user_attrs)
        ua = t.user_attrs
        label = f"d{ua['d_model']}-L{ua['n_layers']}-H{ua['n_heads']}-F{ua['d_ff']}"
        assert label in TINY["architectures"] and ua["epochs_config"] == 2
        assert ua["d_ff"] == t.params["d_ff_ratio"] * t.params["d_model"]
        assert 1.5e6 <= t.user_attrs["param_count"] <= 2.5e6  # the real 2M budget, +-25%


def test_complete_trials_record_their_metrics_at_the_best_epoch(first_run) -> None:
    for t in _complete(first_run.study):
        assert DONE_ATTRS <= set(t.user_attrs), DONE_ATTRS - set(t.user_attrs)
        assert t.value == t.user_attrs["val_auc"]
        assert t.intermediate_values[t.user_attrs["best_epoch"]] == pytest.approx(t.value, abs=1e-6)


def test_the_study_records_its_partition_shape_and_provenance(first_run) -> None:
    ua = first_run.study.user_attrs
    assert (ua["budget"], ua["horizon"], ua["horizon_days"], ua["tier"]) == ("2M", "h1", 1, "a20")
    assert (ua["objective"], ua["source"], ua["n_features"], ua["context"]) == (
        "val_auc",
        "hpo_study",
        25,
        80,
    )
    assert (ua["patch_len"], ua["stride"], ua["skipped_duplicates"]) == (16, 8, 0)
    # provenance for the trial table: the features asset's label definition, the split, the validation set
    assert (ua["label_mode"], ua["label_threshold"], ua["split_kind"]) == ("high", 0.01, "contiguous")
    assert ua["val_start"] >= "2015-10-01" and ua["test_start"] >= "2016-10-01"
    assert 0 < ua["val_positives"] < ua["n_val"] and ua["feature_set"].count(",") == 24


def test_the_trial_table_carries_the_provenance_and_best_epoch_metrics(first_run) -> None:
    ua = first_run.study.user_attrs
    table = extract([str(first_run.journal.parent)]).table
    row = table.row(0, named=True)
    assert (row["label_threshold"], row["val_size"], row["val_positives"]) == (
        0.01,
        ua["n_val"],
        ua["val_positives"],
    )
    for r in table.filter(pl.col("state") == "COMPLETE").iter_rows(named=True):
        # the metric columns measure the restored best_epoch checkpoint: they match the curve at that epoch
        at = r["learning_curve"][r["best_epoch"] - 1]
        assert r["val_auc"] == pytest.approx(at["val_auc"], abs=1e-6)
        assert r["val_loss"] == pytest.approx(at["val_loss"], abs=1e-5)
        assert r["early_stopped"] == (r["epochs_trained"] < 2)


def test_metadata_counts_best_value_and_the_history_plot(first_run) -> None:
    trials, complete = first_run.study.trials, _complete(first_run.study)
    meta = _metadata(first_run.result)
    assert meta["trials_counted"] == 4 and meta["trials_complete"] == len(complete)
    assert meta["trials_pruned"] == sum(t.state == TrialState.PRUNED for t in trials)
    assert meta["best_value"] == max(t.value for t in complete)
    assert meta["dashboard_command"] == f"optuna-dashboard {first_run.journal}"
    assert meta["dashboard_all_studies"] == f"hpo-assets dashboard --storage {first_run.journal.parent}"
    png = Path(meta["history_path"])
    assert png == first_run.root / "outputs" / "studies" / "hpo-2M-h1_history.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prefix = "![history](data:image/png;base64,"
    assert meta["history"].startswith(prefix)
    assert base64.b64decode(meta["history"][len(prefix) : -1]) == png.read_bytes()


def test_top_trials_table_and_checks(first_run) -> None:
    meta = _metadata(first_run.result)
    top = meta["top_trials"]
    assert (
        len(top.records) == min(5, len(_complete(first_run.study))) and top.schema.columns[2].type == "float"
    )
    # UI tables show 4 significant digits
    assert top.records[0].data["value"] == float(f"{meta['best_value']:.4g}")
    assert all(c.passed for c in first_run.result.get_asset_check_evaluations())


def test_each_trial_is_an_observation_with_progress_and_eta(first_run) -> None:
    """What the asset page shows while the study runs, read back through the instance's API."""
    records = first_run.instance.fetch_observations(
        dg.AssetKey("hpo_study"), limit=100, ascending=True
    ).records
    mine = [r for r in records if r.event_log_entry.run_id == first_run.result.run_id]
    assert all(r.asset_observation.partition == "2M|h1" for r in mine)
    meta = [{k: getattr(v, "value", v) for k, v in r.asset_observation.metadata.items()} for r in mine]
    trials = [m for m in meta if m["event"] == "trial"]
    assert meta[0]["event"] == "start" and meta[0]["trials_counted"] == 0 and meta[0]["best_value"] is None
    assert [m["trials_counted"] for m in trials] == [1, 2, 3, 4]
    assert all(m["trials_target"] == 4 for m in meta)
    best, expected = None, []  # best so far: the running maximum over the COMPLETE trials
    for t in first_run.study.trials:
        if t.state == TrialState.COMPLETE:
            best = t.value if best is None else max(best, t.value)
        expected.append(best)
    assert [m["best_value"] for m in trials] == expected
    assert [m["trial_state"] for m in trials] == [t.state.name for t in first_run.study.trials]
    elapsed = [m["elapsed_hours"] for m in trials]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert trials[-1]["eta_hours"] == 0.0 and trials[-1]["eta_basis"] == "target reached"
    # 3 left at the first trial's pace (shown to 4 significant digits)
    assert trials[0]["eta_hours"] == pytest.approx(3 * elapsed[0], rel=1e-3)
    assert meta[0]["predicted_hours"] == pytest.approx(
        _metadata(first_run.result)["predicted_hours"], rel=1e-3
    )
    logged = [e.user_message for e in first_run.instance.all_logs(first_run.result.run_id)]
    assert any(m.startswith("progress: hpo-2M-h1: 2/4 trials, trial #1 ") and "ETA" in m for m in logged)
    assert any(" epoch 1/2: " in m and " elapsed=" in m for m in logged)
    # the first epoch line is at INFO (the UI's default filter shows it), most later ones within 30 s at DEBUG
    epochs = [
        e
        for e in first_run.instance.all_logs(first_run.result.run_id)
        if re.search(r"#\d+ epoch \d+/", e.user_message)
    ]
    assert epochs[0].level == logging.INFO and epochs[0].user_message.startswith("trial 1/4 #0 epoch 1/2: ")
    assert {e.level for e in epochs[1:]} <= {logging.INFO, logging.DEBUG} and logging.DEBUG in {
        e.level for e in epochs
    }


def test_a_rerun_at_the_target_keeps_the_study_cost_apart_from_its_own(first_run) -> None:
    """Re-materializing a study at its target trains nothing: this run's hours are about 0 and its prediction
    0, while the study's cumulative compute (every trial's training time) stays what the study cost."""
    timed = [t.user_attrs["duration_sec"] for t in first_run.study.trials if t.user_attrs.get("duration_sec")]
    cost = sum(timed) / 3600.0
    first = _metadata(first_run.result)
    again = _study_run({**TINY, "n_trials": 4}, instance=first_run.instance)
    assert again.success
    meta = _metadata(again)
    assert meta["new_trials_this_run"] == 0 and meta["predicted_hours"] == 0.0
    assert meta["measured_hours"] < first["measured_hours"]
    assert cost > 0 and first["study_compute_hours"] == pytest.approx(cost)
    assert meta["study_compute_hours"] == pytest.approx(cost) and meta["study_trials_timed"] == len(timed) > 0


def test_raising_the_target_continues_the_same_study(first_run) -> None:
    """Last of the group (it adds trials): the study continues to exactly 6, nothing repeated or rewritten."""
    before = {t.number: (t.params, t.value, t.state) for t in first_run.study.trials}
    second = _study_run({**TINY, "n_trials": 6})
    assert second.success
    journal = first_run.journal
    study = optuna.load_study(study_name="hpo-2M-h1", storage=open_storage(str(journal.parent), "hpo-2M-h1"))
    assert len(study.trials) == 6
    assert {t.number: (t.params, t.value, t.state) for t in study.trials[:4]} == before
    keys = [tuple(t.params[k] for k in PARAM_NAMES) for t in study.trials]
    assert len(set(keys)) == 6
    assert _metadata(second)["new_trials_this_run"] == 2


def test_asset_runs_in_the_gpu_pool_with_k8s_gpu_tags() -> None:
    assert hpo_study.op.pool == "gpu"
    assert json.loads(hpo_study.op.tags["dagster-k8s/config"]) == GPU_OP_TAGS["dagster-k8s/config"]
    assert GPU_OP_TAGS["dagster-k8s/config"]["container_config"]["resources"]["limits"] == {
        "nvidia.com/gpu": "1"
    }
    assert hpo_study.group_names_by_key[dg.AssetKey("hpo_study")] == "studies"


def test_bad_partition_key_is_one_clear_message() -> None:
    assert parse_partition("20M|h5").study_name == "hpo-20M-h5" and parse_partition("2B|h3").horizon_days == 3
    for key, needle in [
        ("3M|h1", "budget '3M'"),
        ("2M|h2", "horizon 'h2'"),
        ("2M", "must read budget|horizon"),
    ]:
        with pytest.raises(StudyConfigError, match=needle):
            parse_partition(key)
    with pytest.raises(dg.DagsterUnknownPartitionError, match="3M|h1"):
        dg.materialize(
            [hpo_study], partition_key="3M|h1", resources={"paths": HpoPaths(), "gpu": GpuLeases()}
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_trials": 0}, "n_trials must be a whole number >= 1, got 0"),
        ({"objective": "accuracy"}, "objective 'accuracy' is unknown"),
        ({"pruner": "asha"}, "pruner 'asha' is unknown"),
        ({"max_epochs": 0}, "max_epochs must be a whole number >= 1"),
        ({"cpu_threads": -1}, "cpu_threads must be 0"),
        (
            {"transfer_from": ["2M"]},
            "transfer_from: '2M' is not another budget; choose from ['200K', '20M', '200M', '2B']",
        ),
        (
            {"parametrization": "mu-p"},
            "parametrization 'mu-p' is not one of ['standard', 'mup', 'completep']",
        ),
        ({"storage": "mongodb://localhost/x"}, "unsupported scheme 'mongodb'"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
    ],
)
def test_bad_config_values_fail_with_one_message_naming_the_field(
    isolated_dirs: Path, config, message
) -> None:
    text = _failure(_study_run(config))
    assert text.startswith("dagster._core.definitions.events.Failure: hpo_study: ") and message in text
    assert "\n" not in text
    assert not (isolated_dirs / "hpo").exists() or not any((isolated_dirs / "hpo").iterdir())


def test_missing_features_file_says_what_to_materialize(isolated_dirs: Path) -> None:
    text = _failure(_study_run({"n_trials": 1}))
    assert "features file not found" in text and "materialize the `features` asset first" in text


def test_profile_fills_fields_left_at_their_defaults() -> None:
    demo = resolve_config(HpoStudyConfig(profile="demo"))
    assert (demo.n_trials, demo.max_epochs, demo.n_forced, demo.start) == (12, 3, 6, "2013-07-01")
    mine = resolve_config(HpoStudyConfig(profile="demo", n_trials=9))
    assert mine.n_trials == 9 and mine.max_epochs == 3 and mine.cpu_threads == 1
    assert resolve_config(HpoStudyConfig()).n_trials == 50


def test_cpu_bf16_trains_in_bf16_where_the_cpu_has_it_else_one_message(isolated_dirs: Path) -> None:
    import torch

    from hpo_assets.training.device import bf16_supported

    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    one = {**TINY, "n_trials": 1, "n_forced": 1, "pruner": "none", "architectures": ["d384-L1-H8-F1536"]}
    if not bf16_supported(torch.device("cpu")):
        text = _failure(_study_run({**one, "cpu_bf16": True}))
        assert "cpu_bf16: this CPU has no bf16 matmuls" in text and "\n" not in text
        return
    curves = {}
    for bf16, storage in ((False, "fp32"), (True, "bf16")):
        spec = str(isolated_dirs / storage)
        assert _study_run({**one, "cpu_bf16": bf16, "storage": spec}).success
        (trial,) = optuna.load_study(study_name="hpo-2M-h1", storage=open_storage(spec, "hpo-2M-h1")).trials
        assert trial.state == TrialState.COMPLETE
        curves[storage] = [r["train_loss"] for r in trial.user_attrs["learning_curve"]]
    # Same seed and configuration: only the matmul precision differs, so the losses differ slightly.
    assert curves["fp32"] != curves["bf16"]
    assert curves["bf16"] == pytest.approx(curves["fp32"], rel=0.05)
