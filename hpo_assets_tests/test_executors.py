"""The executor follows HPO_ASSETS_EXECUTOR; a wrong value or a missing extra is one clear message."""

from __future__ import annotations

import importlib.util

import dagster as dg
import pytest

from hpo_assets.defs.executors import ExecutorConfigError, select_executor


def test_default_is_multiprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_ASSETS_EXECUTOR", raising=False)
    assert select_executor() is dg.multiprocess_executor
    monkeypatch.setenv("HPO_ASSETS_EXECUTOR", "in_process")
    assert select_executor() is dg.in_process_executor


def test_unknown_executor_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_ASSETS_EXECUTOR", "slurm")
    with pytest.raises(ExecutorConfigError, match="HPO_ASSETS_EXECUTOR='slurm'"):
        select_executor()


def test_k8s_executor_or_a_clear_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_ASSETS_EXECUTOR", "k8s")
    if importlib.util.find_spec("dagster_k8s") is None:
        with pytest.raises(ExecutorConfigError, match=r"hpo-assets\[k8s\]"):
            select_executor()
    else:
        assert select_executor().name == "k8s"


def test_study_step_asks_kubernetes_for_a_gpu() -> None:
    pytest.importorskip("dagster_k8s", reason="the k8s extra is not installed")
    from dagster_k8s.job import get_user_defined_k8s_config

    from hpo_assets.definitions import defs

    step = defs.resolve_assets_def(dg.AssetKey("hpo_study")).op
    k8s = get_user_defined_k8s_config(step.tags)
    assert k8s.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert step.pool == "gpu"
