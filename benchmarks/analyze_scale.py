"""How fast and how lean `hpo-assets analyze` is at scale; run by hand, prints figures (nothing is asserted).

    .venv/bin/python benchmarks/analyze_scale.py                  # both cases (first run builds benchmarks/.cache/)
    .venv/bin/python benchmarks/analyze_scale.py --only 600       # 600 trials: 12 studies x 50, per-trial JSON, curves
    .venv/bin/python benchmarks/analyze_scale.py --only 100k [--workers 2]
                                                                  # the 100,000-trial synthetic campaign of
                                                                  # extract_scale.py (100 template exports x 1,000)

Each case runs in a fresh subprocess: read (imports + extract) + every report (coverage, importance per
partition with fANOVA subsampled to `fanova_max_trials`, summary, scaling, consistency, HTML), wall time per
phase, CPU (helper processes included) and peak RSS; the load average before/after is printed beside them.
`--workers N` (N > 1) draws the figures in N - 1 helper processes, as `hpo-assets analyze --workers N` does.
Targets (issue 10): 600 trials < 10 s; 100,000 trials < 5 min and < 4 GB.

Measured 2026-11-22 08:40-08:43 UTC on the project's 2-core machine, load average 1.3-1.7 (other jobs):
    --only 600 --workers 2    6.2 / 6.3 / 6.6 s wall, CPU 8.9-9.5 s, peak 0.51 GB
    --only 600 --workers 1    9.9 / 8.0 / 8.5 s wall, CPU 8.2-9.5 s, peak 0.32 GB
    --only 100k --workers 1   66.8 s wall (read 16.4 s), CPU 66.4 s, peak 0.64 GB
At load average 4-5 the 600-trial case took 14-17 s wall (no free core) and the 100k case 82 s.
Before the array importances and figure changes: 600 trials 20.8 s wall / 19.4 s CPU (load 2.9).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from extract_scale import CACHE, _ensure, write_exports, write_trial_json


def measure(source: str, out: str, workers: int) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    from hpo_assets.analysis.campaign import analyze
    from hpo_assets.trials.extract import extract

    table = extract([source]).table
    t1 = time.perf_counter()
    files = analyze(table, Path(out), workers=workers)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + children.ru_utime + children.ru_stime
    if workers > 1:  # helper processes drawing figures: at most the largest one's peak each
        peak += (workers - 1) * children.ru_maxrss / 1024 / 1024
    print(json.dumps({"rows": table.height, "studies": table["study"].n_unique(), "read": t1 - t0,
                      "analyze": t2 - t1, "total": t2 - t0, "cpu": cpu, "files": len(files), "peak_gb": peak}))  # fmt: skip


def _child(source: Path, out: Path, workers: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", str(source), str(out), str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["600", "100k"], default=None)
    parser.add_argument(
        "--workers", type=int, default=1, help="processes in all (N > 1: N - 1 helpers draw the figures)"
    )
    parser.add_argument("--measure", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], args.measure[1], int(args.measure[2]))
        return
    CACHE.mkdir(exist_ok=True)
    for case in [args.only] if args.only else ["600", "100k"]:
        if case == "600":
            src = CACHE / "trial_json_600"
            _ensure(src, write_trial_json, 12, 50)
            target = "< 10 s"
        else:
            src = CACHE / "exports_100k"
            _ensure(src, write_exports, 100, 1000)
            target = "< 300 s, < 4 GB"
        before = os.getloadavg()
        r = _child(src, CACHE / "analyze_out" / case, args.workers)
        print(f"load average before/after: {before} / {os.getloadavg()}")
        print(
            f"{r['rows']:,} trials in {r['studies']} studies ({src.name}, workers {args.workers}): "
            f"{r['total']:.1f} s wall (read {r['read']:.1f} s, analyze {r['analyze']:.1f} s; CPU {r['cpu']:.1f} s), "
            f"{r['files']} files, "
            f"peak {r['peak_gb']:.2f} GB [target {target}]"
        )


if __name__ == "__main__":
    main()
