"""Kubernetes on paper and in tests: the code location loads with the k8s executor, every training step (every
asset in the `gpu` pool) asks for one nvidia.com/gpu on a GPU node, and deploy/ (Dockerfile, Helm values for
the official Dagster chart) parses and names the project's image, module and settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from hpo_assets import settings

pytest.importorskip("dagster_k8s", reason="the k8s extra is not installed")

DEPLOY = settings.PROJECT_ROOT / "deploy"
TRAINING_STEPS = {"hpo_study", "calibrated_model", "cross_budget_validation"}

PROBE = """
import json
import dagster as dg
from dagster_k8s.job import get_user_defined_k8s_config
from hpo_assets.definitions import defs
graph = defs.resolve_asset_graph()
gpu = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    if "gpu" in (node.pools or set()):
        cfg = get_user_defined_k8s_config(defs.resolve_assets_def(key).op.tags)
        gpu[key.to_user_string()] = {"container": cfg.container_config, "pod_spec": cfg.pod_spec_config}
jobs = {name: defs.resolve_job_def(name).executor_def.name for name in ("study_job", "study_demo_job", "market_job")}
names = [k.to_user_string() for k in graph.get_all_asset_keys()]
print(json.dumps({"gpu": gpu, "jobs": jobs, "assets": names}))
"""


def test_definitions_load_with_the_k8s_executor_and_training_steps_ask_for_a_gpu() -> None:
    env = {**os.environ, "HPO_ASSETS_EXECUTOR": "k8s"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300,
                         cwd=settings.PROJECT_ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(found["jobs"].values()) == {"k8s"}, found["jobs"]
    gpu = found["gpu"]
    training = TRAINING_STEPS & set(found["assets"])  # #11's model steps, when they are in the code location
    assert "hpo_study" in training and training <= set(gpu), (
        f"training steps outside the gpu pool: {gpu.keys()}"
    )
    for name, cfg in gpu.items():
        assert cfg["container"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}, name
        assert cfg["pod_spec"]["node_selector"] == {"nvidia.com/gpu.present": "true"}, name
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in cfg["pod_spec"][
            "tolerations"
        ]


def _env_names() -> set[str]:
    """Every HPO_ASSETS_* variable the package reads."""
    names: set[str] = set()
    for path in settings.PACKAGE_DIR.rglob("*.py"):
        names |= set(re.findall(r"HPO_ASSETS_[A-Z_]+", path.read_text()))
    return names


def test_helm_values_name_the_image_workspace_and_settings_the_code_reads() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    workspace = yaml.safe_load((settings.PROJECT_ROOT / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    module, location_name = (
        location["python_module"]["module_name"],
        location["python_module"]["location_name"],
    )

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"].endswith("/hpo-assets")
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    (server,) = values["dagsterWebserver"]["workspace"]["servers"]
    assert server["name"] == location_name and server["port"] == deployment["port"]
    assert server["host"] == deployment["name"]

    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["HPO_ASSETS_EXECUTOR"] == "k8s"
    assert env["HPO_ASSETS_OUTPUTS"].startswith("s3://"), "every pod must reach the asset files"
    assert set(env) <= _env_names(), f"values set variables the code never reads: {set(env) - _env_names()}"

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["concurrency"]["pools"]["granularity"] == "run"
    assert values["postgresql"]["postgresqlHost"] and values["global"]["postgresqlSecretName"]


def test_helm_values_retry_runs_as_the_local_instance_does() -> None:
    from hpo_assets.defs.instance import RUN_RETRIES

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    retries, local = values["dagsterDaemon"]["runRetries"], RUN_RETRIES["run_retries"]
    assert (retries["enabled"], retries["maxRetries"], retries["retryOnAssetOrOpFailure"]) == (
        local["enabled"], local["max_retries"], local["retry_on_asset_or_op_failure"])  # fmt: skip


def test_dockerfile_installs_the_extras_a_cluster_needs_and_serves_the_module() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"pip install [^\n]*\.\[postgres,k8s,s3\]", text)
    for path in ("pyproject.toml", "workspace.yaml", "hpo_assets", "data"):
        assert re.search(rf"^COPY [^\n]*\b{re.escape(path)}\b", text, re.M), (
            f"{path} not copied into the image"
        )
    assert '"--module-name", "hpo_assets.definitions"' in text
    assert "ENV" in text and "HPO_ASSETS_EXECUTOR=k8s" in text
