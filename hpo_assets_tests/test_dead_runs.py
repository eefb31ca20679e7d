"""Pool slots of runs whose process is gone are freed; a live holder is named after a bounded wait; waiting sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from hpo_assets.cli import main
from hpo_assets.defs.dead_runs import free_dead_runs, lease_tags, slot_holders
from hpo_assets.defs.instance import RUN_RETRIES, ensure_instance, instance_config
from hpo_assets.defs.pool_wait import install
from hpo_assets.local_runs import PoolBusy, wait_for_pool


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The shipped instance, but with pools at op granularity: steps claim slots (and used to spin waiting)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = instance_config()
    config["concurrency"] = {"pools": {"granularity": "op"}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as inst:
        inst.event_log_storage.set_concurrency_slots("gpu", 1)
        yield inst


def _holding_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    """A STARTED run that claimed the gpu slot, as a study run does before its step starts."""
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(job_name="study_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags)
    )
    assert instance.event_log_storage.claim_concurrency_slot("gpu", run_id, "hpo_study").is_claimed
    return run_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_instance_enables_run_monitoring_and_frees_slots_after_run_end(tmp_path: Path) -> None:
    ensure_instance(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as inst:
        assert inst.run_monitoring_enabled
        assert inst.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_an_untouched_instance_file_of_the_previous_version_gains_monitoring(tmp_path: Path) -> None:
    # the file of the version before run monitoring (and before run retries, which came later)
    old = {k: v for k, v in instance_config().items() if k not in {"run_monitoring", *RUN_RETRIES}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(old))
    ensure_instance(tmp_path)
    new = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert new == instance_config() and new["run_monitoring"]["enabled"] is True


def test_dead_worker_slot_is_freed_and_run_failed(instance: dg.DagsterInstance) -> None:
    dead = _holding_run(instance, lease_tags(_dead_pid()))
    alive = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="study_job", run_id=alive, status=dg.DagsterRunStatus.STARTED, tags=lease_tags()
        )
    )
    (holder,) = slot_holders(instance, ["gpu"])
    assert holder.run_id == dead and holder.state == "dead" and "gone" in holder.why
    freed = free_dead_runs(instance, ["gpu"])
    assert [h.run_id for h in freed] == [dead]
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []
    assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED


def test_started_run_using_the_pool_at_run_granularity_is_failed_when_its_worker_is_gone(
    instance: dg.DagsterInstance,
) -> None:
    """At run granularity the run queue counts every started run of the pool: a killed one blocks it for good."""
    from dagster._core.storage.dagster_run import RunOpConcurrency

    usage = RunOpConcurrency(
        root_key_counts={"gpu": 1}, has_unconstrained_root_nodes=False, all_pools={"gpu"}
    )
    runs = {}
    for name, pid in (("dead", _dead_pid()), ("alive", None)):
        runs[name] = str(uuid.uuid4())
        instance.add_run(dg.DagsterRun(job_name="study_job", run_id=runs[name], status=dg.DagsterRunStatus.STARTED,
                                       tags=lease_tags(pid), run_op_concurrency=usage))  # fmt: skip
    states = {h.run_id: h.state for h in slot_holders(instance, ["gpu"])}
    assert states == {runs["dead"]: "dead", runs["alive"]: "alive"}
    assert [h.run_id for h in free_dead_runs(instance, ["gpu"])] == [runs["dead"]]
    assert instance.get_run_by_id(runs["dead"]).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(runs["alive"]).status == dg.DagsterRunStatus.STARTED


def test_live_holder_is_left_alone_and_named_after_the_bounded_wait(
    instance: dg.DagsterInstance, capsys
) -> None:
    live = _holding_run(instance, lease_tags())  # this test process: alive
    assert free_dead_runs(instance, ["gpu"]) == []
    with pytest.raises(PoolBusy) as err:
        wait_for_pool(instance, "gpu", limit_s=0.3, poll_s=0.1, log=lambda m: None)
    message = str(err.value)
    assert live in message and f"hpo-assets recover --run {live}" in message and "is running" in message
    # the command it names frees it
    assert main(["recover", "--run", live]) == 0
    assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []
    wait_for_pool(instance, "gpu", limit_s=0.3, poll_s=0.1, log=lambda m: None)  # now free: returns


def test_recover_command_frees_only_dead_runs(instance: dg.DagsterInstance, capsys) -> None:
    dead = _holding_run(instance, lease_tags(_dead_pid()))
    assert main(["recover"]) == 0
    out = capsys.readouterr().out
    assert f"freed: run {dead}" in out and "gone" in out
    assert main(["recover"]) == 0
    assert "no slot held by a dead run" in capsys.readouterr().out


@dg.asset(pool="gpu")
def gpu_step() -> int:
    return 1


def test_a_blocked_run_sleeps_and_frees_a_dead_holder_itself(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's own loop asks for the slot thousands of times a second while blocked (~90% of a core);
    with pool_wait installed it asks about once a second and sleeps in between."""
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    install()
    calls = []
    claim = InstanceConcurrencyContext.claim
    monkeypatch.setattr(
        InstanceConcurrencyContext, "claim", lambda self, *a, **k: calls.append(1) or claim(self, *a, **k)
    )
    live = _holding_run(instance, lease_tags())
    release = threading.Timer(3.0, lambda: instance.event_log_storage.free_concurrency_slots_for_run(live))
    release.start()
    wall0 = time.monotonic()
    result = dg.materialize([gpu_step], instance=instance)
    wall = time.monotonic() - wall0
    release.join()
    assert result.success and wall >= 3.0
    assert len(calls) / wall < 25, f"{len(calls)} claim attempts in {wall:.1f} s of waiting"

    dead = _holding_run(instance, lease_tags(_dead_pid()))
    assert dg.materialize([gpu_step], instance=instance).success  # no manual step: the dead holder is freed
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE


_WRAPPED = (
    "import hpo_assets.definitions\n"
    "from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext as I\n"
    "print(getattr(I.claim, '_hpo_wrapped', False))"
)


@pytest.mark.parametrize(("env", "wrapped"), [("", "False"), ("1", "True")])
def test_pool_wait_is_opt_in(env: str, wrapped: str) -> None:
    """Loading the code location leaves Dagster's claim alone unless HPO_ASSETS_POOL_WAIT=1."""
    environ = {**os.environ, "HPO_ASSETS_POOL_WAIT": env}
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPED], env=environ, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == wrapped


def test_pool_wait_installs_on_the_dagster_in_use(instance: dg.DagsterInstance) -> None:
    """Fails loudly (PoolWaitUnavailable, or a missing private attribute named here) when a Dagster
    upgrade changes what pool_wait wraps: then fix pool_wait or leave HPO_ASSETS_POOL_WAIT unset."""
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    install()
    assert getattr(InstanceConcurrencyContext.claim, "_hpo_wrapped", False)
    run = instance.add_run(dg.DagsterRun(job_name="study_job", run_id=str(uuid.uuid4())))
    with InstanceConcurrencyContext(instance, run) as ctx:
        missing = [a for a in ("_instance", "_run_id", "_pending_timeouts") if not hasattr(ctx, a)]
        assert missing == [], (
            f"dagster {dg.__version__} no longer has {missing} on InstanceConcurrencyContext"
        )
        assert ctx.claim("gpu", "hpo_study") is True  # the slot is free: claimed through the wrapper
