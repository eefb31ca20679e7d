"""The Dagster instance's dagster.yaml and its `gpu` pool: only GPU steps are limited, GPUs x slots.

Dagster has no per-pool limit in dagster.yaml (only `default_limit`, which would cap every pool), so the
`gpu` limit lives in the instance's storage, set here once (`dagster instance concurrency set gpu N`
changes it later and is kept). Pools use run granularity: a backfill's runs wait in the run queue,
not as launched processes polling for a slot.

Run monitoring (run by the daemon that `dagster dev` starts) fails runs that never start or overrun and
frees the slots of runs that ended without releasing them; a run whose process was killed (which
Dagster never notices for an in-process run) is found by dead_runs.py. Run retries relaunch a failed run
of a study or model job (tagged dagster/max_retries in jobs.py), so a preempted or killed run resumes
its study without anyone re-submitting it.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

GPU_POOL = "gpu"
AUTOMATION = {"auto_materialize": {"enabled": True, "use_sensors": True}}
RUN_MONITORING = {
    "run_monitoring": {
        "enabled": True,
        "start_timeout_seconds": 300,
        "cancel_timeout_seconds": 300,
        "poll_interval_seconds": 30,
        "free_slots_after_run_end_seconds": 30,
    }
}


# Run retries (the daemon relaunches a failed run of a job tagged dagster/max_retries, see jobs.py): 0 for
# untagged jobs. Step failures are retried too: under the k8s executor a preempted step pod fails its step.
RUN_RETRIES = {"run_retries": {"enabled": True, "max_retries": 0, "retry_on_asset_or_op_failure": True}}


def gpu_count() -> int:
    """GPUs on this machine, without initialising CUDA in this process."""
    from hpo_assets.training.leases import visible_devices

    return len(visible_devices())


def gpu_limit(n_gpus: int | None = None, slots: int | None = None) -> int:
    """Steps in the `gpu` pool at once: HPO_ASSETS_GPU_LIMIT if set, else GPUs x slots per GPU (at least 1).

    Slots per GPU are the most trials any budget packs on one (budgets.yaml `trials_per_gpu`); the GPU
    lease (training/leases.py) then lets a budget's steps share a device only as far as its own value
    allows, so a 2B step waits for a whole free GPU while four 2M steps share one. A CPU-only machine
    runs one step at a time.
    """
    raw = os.environ.get("HPO_ASSETS_GPU_LIMIT", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"HPO_ASSETS_GPU_LIMIT must be a whole number >= 1, got {raw!r}")
        return int(raw)
    gpus = gpu_count() if n_gpus is None else n_gpus
    if gpus < 1:
        return 1
    if slots is None:
        from hpo_assets.model.budgets import gpu_slots

        slots = gpu_slots()
    return gpus * slots


PG_URL_ENV = "HPO_ASSETS_PG_URL"
PG_PASSWORD_ENV = "HPO_ASSETS_PG_PASSWORD"


def postgres_storage(postgres_url: str, from_env: bool = False) -> dict:
    """dagster-postgres storage config that never holds a password.

    A URL taken from HPO_ASSETS_PG_URL is written as a reference to that variable; a URL given on the
    command line with a password is written in parts, the password as a reference to
    HPO_ASSETS_PG_PASSWORD (Dagster reads `{"env": ...}` when each process starts).
    """
    from sqlalchemy.engine import make_url

    if from_env:
        driver = make_url(postgres_url).get_dialect().driver
        if driver != "psycopg2":
            raise ValueError(
                f"${PG_URL_ENV} selects the {driver} driver; the Dagster instance needs psycopg2: "
                f"write it as postgresql+psycopg2://user@host:port/db"
            )
        return {"postgres_url": {"env": PG_URL_ENV}}

    # dagster-postgres speaks psycopg2 (its NOTIFY with a bound parameter fails under psycopg 3, which
    # SQLAlchemy 2.1 picks for a bare postgresql:// URL): name the driver whatever URL was given.
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2")
    if url.password is None:
        return {"postgres_url": url.render_as_string(hide_password=False)}
    db: dict = {
        "username": url.username or "",
        "password": {"env": PG_PASSWORD_ENV},
        "hostname": url.host or "localhost",
        "db_name": url.database or "postgres",
        "port": url.port or 5432,
        "scheme": "postgresql+psycopg2",
    }
    if url.query:
        db["params"] = dict(url.query)
    return {"postgres_db": db}


def instance_config(postgres_url: str | None = None, from_env: bool = False) -> dict:
    """Queued runs (pools at run granularity), the automation sensors on, optional PostgreSQL storage."""
    config: dict = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        },
        "concurrency": {"pools": {"granularity": "run"}},
        **AUTOMATION,
        **RUN_MONITORING,
        **RUN_RETRIES,
        "telemetry": {"enabled": False},
        # library modules log through logging.getLogger(__name__): show those records in the run log
        "python_logs": {"managed_python_loggers": ["hpo_assets"], "python_log_level": "INFO"},
    }
    if postgres_url:
        config["storage"] = {"postgres": postgres_storage(postgres_url, from_env)}
    return config


def _written_by_old_version(existing: dict) -> bool:
    """The dagster.yaml earlier versions wrote (default_limit capped every pool): safe to replace."""
    pools = (existing.get("concurrency") or {}).get("pools") or {}
    if set(existing) <= {"concurrency", "run_coordinator", "telemetry", "storage"} and set(pools) == {
        "default_limit"
    }:
        return True
    # the files of the versions before run monitoring and before run retries: the same settings without them
    mine = {k: v for k, v in existing.items() if k != "storage"}
    current = instance_config()
    older = [
        {k: v for k, v in current.items() if k not in dropped}
        for dropped in (set(RUN_RETRIES), set(RUN_RETRIES) | set(RUN_MONITORING))
    ]
    return mine in older


def set_gpu_pool(home: str | os.PathLike[str], limit: int | None = None) -> int:
    """Give the `gpu` pool its limit unless one is already set (an explicit `limit` always applies)."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        storage = instance.event_log_storage
        current = {p.name: p for p in storage.get_pool_limits()}.get(GPU_POOL)
        if limit is None and current is not None and not current.from_default:
            return int(current.limit)
        value = gpu_limit() if limit is None else limit
        storage.set_concurrency_slots(GPU_POOL, value)
        return value
    finally:
        instance.dispose()


def ensure_instance(
    home: str | os.PathLike[str],
    postgres_url: str | None = None,
    gpu_pool_limit: int | None = None,
    url_from_env: bool = False,
) -> Path:
    """Write dagster.yaml into DAGSTER_HOME unless the user already has one (theirs is never overwritten),
    then make sure the `gpu` pool has its limit."""
    home_path = Path(home)
    home_path.mkdir(parents=True, exist_ok=True)
    target = home_path / "dagster.yaml"
    existing = yaml.safe_load(target.read_text()) if target.exists() else None
    if existing is None or (isinstance(existing, dict) and _written_by_old_version(existing)):
        old_storage = (existing or {}).get("storage")
        config = instance_config(postgres_url, from_env=url_from_env)
        if old_storage and not postgres_url:
            config["storage"] = old_storage
        target.write_text(yaml.safe_dump(config, sort_keys=False))
    set_gpu_pool(home_path, gpu_pool_limit)
    return target
