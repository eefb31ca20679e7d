"""Sensors: re-import when an export appears or changes in a watched folder; run the assets' automation.

Watched folders: `imports.watch` in defaults.yaml plus HPO_ASSETS_IMPORT_DIRS (os.pathsep-separated).
The sensor fingerprints every file under them (path, size, modification time) and requests
`imported_studies` when a fingerprint changes, with the watched folders added to the sources of the
previous import (so a manual import is never dropped).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg

from hpo_assets import outputs, settings
from hpo_assets.defs.dead_runs import free_dead_runs
from hpo_assets.defs.resources import HpoPaths
from hpo_assets.trials import live

IMPORTED = dg.AssetKey("imported_studies")


def watched_folders() -> list[str]:
    configured = settings.settings().get("imports", {}).get("watch") or []
    extra = settings.import_dirs()
    return [str(settings.project_path(p)) for p in dict.fromkeys([*configured, *extra])]


def fingerprint(folder: str) -> str | None:
    """A hash of every file's relative path, size and mtime under `folder`; None when it holds no file."""
    root = Path(folder)
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        try:
            st = path.stat()
        except OSError:  # removed while we walked: the next tick sees the new state
            continue
        digest.update(
            f"{path.relative_to(root) if path != root else path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()


@dg.sensor(
    name="import_folders_sensor",
    description="Re-imports studies (imported_studies) when an export appears or changes in a watched folder "
    "(imports.watch in defaults.yaml or HPO_ASSETS_IMPORT_DIRS).",
    asset_selection=[IMPORTED],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def import_folders_sensor(context: dg.SensorEvaluationContext, paths: HpoPaths) -> dg.SensorResult:
    folders = watched_folders()
    if not folders:
        return dg.SensorResult(
            skip_reason="no import folders are watched (imports.watch / HPO_ASSETS_IMPORT_DIRS)"
        )
    seen = json.loads(context.cursor) if context.cursor else {}
    now = {folder: fingerprint(folder) for folder in folders}
    changed = sorted(f for f, fp in now.items() if fp is not None and seen.get(f) != fp)
    missing = sorted(f for f, fp in now.items() if fp is None)  # absent or empty
    cursor = json.dumps(now, sort_keys=True)
    if not changed:
        reason = "no export appeared or changed"
        return dg.SensorResult(
            skip_reason=reason + (f"; absent or empty: {', '.join(missing)}" if missing else ""),
            cursor=cursor,
        )
    folder = paths.outputs(*outputs.TRIALS_DIR, live.IMPORTED_PARQUET).parent
    previous = live.load_import(folder)[1].get("sources", [])
    sources = list(dict.fromkeys([*previous, *(f for f in folders if now[f] is not None)]))
    run_key = hashlib.sha256(cursor.encode()).hexdigest()[:16]
    context.log.info(f"exports changed in {', '.join(changed)}: importing {len(sources)} source(s)")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                asset_selection=[IMPORTED],
                run_config={"ops": {"imported_studies": {"config": {"sources": sources}}}},
                tags={"hpo-assets/changed": ",".join(changed)[:200]},
            )
        ],
        cursor=cursor,
    )


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the assets' automation conditions (e.g. the analysis after a study partition or an "
    "import materializes) every 30 s; on by default.",
)


@dg.sensor(
    name="free_dead_runs",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails runs whose worker process is gone (e.g. killed with kill -9) and frees their pool "
    "places, so queued studies do not wait on them forever. Dagster's run monitoring does not health-check "
    "runs executed in-process or launched by the default run launcher.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    freed = free_dead_runs(context.instance)
    for holder in freed:
        context.log.warning(f"freed: {holder.describe()}")
    return dg.SkipReason(
        f"freed {len(freed)} pool place(s) of dead runs" if freed else "no dead run holds a pool"
    )


SENSORS = [import_folders_sensor, automation_sensor, dead_run_sensor]
