"""The executor: multiprocess on one machine, Kubernetes jobs when HPO_ASSETS_EXECUTOR=k8s."""

from __future__ import annotations

import os

import dagster as dg


class ExecutorConfigError(ValueError):
    pass


def select_executor() -> dg.ExecutorDefinition:
    """One machine runs steps as processes; on a cluster each step (GPU steps ask for nvidia.com/gpu) is a pod."""
    kind = os.environ.get("HPO_ASSETS_EXECUTOR", "multiprocess").strip().lower()
    if kind in ("", "multiprocess"):
        return dg.multiprocess_executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:  # the k8s extra is optional
            raise ExecutorConfigError(
                "HPO_ASSETS_EXECUTOR=k8s needs the k8s extra: pip install 'hpo-assets[k8s]'"
            ) from exc
        return k8s_job_executor
    raise ExecutorConfigError(f"HPO_ASSETS_EXECUTOR={kind!r} is not one of multiprocess, in_process, k8s")
