"""Measure the statistics themselves: error rates and coverage of every verdict rule on simulations
with known truth, at this project's sizes. Prints one table, each rate with its Monte Carlo 95%
(Wilson) interval, and writes the full results as JSON.

    .venv/bin/python benchmarks/stats_calibration.py                 # the full table (about an hour of CPU)
    .venv/bin/python benchmarks/stats_calibration.py --sims 60 --importance-studies 40 --ece-sims 100  # a look

Rows:
- scaling / budgets: the paired rule "95% interval of AUC(b) - AUC(a) excludes 0" on K walk-forward test
  folds with k seeds per model (full: 4 x 125 days, 5 seeds; demo: 2 x 280 days, 2 seeds): rate of
  "improves"/"worsens" when the budgets are equal (goal <= 5%), power at +0.02 and +0.05 AUC, and
  coverage of the interval (goal 93-97%);
- model vs baseline: the same paired interval against a one-seed baseline: coverage and false verdicts;
- importance: family-wise false "distinguishable" rate on null studies (goal <= 5%), detection of a
  planted learning-rate effect (hpo_assets/simulation/importance.py);
- ECE: false "miscalibrated" rate and coverage of the perfect-calibration range for a calibrated
  predictor (hpo_assets/simulation/calibration.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _fmt(rate: float, ci: tuple[float, float] | list[float]) -> str:
    return f"{rate:6.1%} [{ci[0]:.1%}, {ci[1]:.1%}]"


def _goal(ok: bool | None) -> str:
    return "" if ok is None else ("meets goal" if ok else "MISSES GOAL")


def comparison_rows(profile: str, sims: int, resamples: int, seed: int) -> list[dict[str, Any]]:
    from hpo_assets.simulation.comparisons import scenarios, simulate

    rows = []
    for sc in scenarios(profile):
        t = time.perf_counter()
        r = simulate(sc, sims, resamples, seed=seed)
        r["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(r)
        print(f"  ran {sc.name}: {r['sims']} sims in {r['seconds']} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=400, help="simulated test sets per comparison scenario")
    ap.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples (models.bootstrap_resamples)"
    )
    ap.add_argument("--importance-studies", type=int, default=200, help="null and planted studies each")
    ap.add_argument("--ece-sims", type=int, default=400)
    ap.add_argument("--profiles", default="full,demo")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--only", default="comparisons,importance,ece")
    ap.add_argument("--json", default="outputs/stats_calibration.json")
    a = ap.parse_args()
    only = set(a.only.split(","))
    started = time.time()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out: dict[str, Any] = {"command": " ".join(["benchmarks/stats_calibration.py", *sys.argv[1:]]),
                           "commit": commit, "cpu": platform.processor() or platform.machine(),
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    lines = []
    if "comparisons" in only:
        out["comparisons"] = []
        for profile in a.profiles.split(","):
            print(f"comparisons, {profile} sizes", flush=True)
            out["comparisons"] += comparison_rows(profile, a.sims, a.resamples, a.seed)
        for r in out["comparisons"]:
            equal = abs(r["true_diff"]) < 1e-3  # equal by construction (Monte Carlo truth)
            fires = _fmt(r["fires"], r["fires_ci"])
            lines.append(f"{r['scenario']:<36} true {r['true_diff']:+.3f}  "
                         f"{'false verdicts' if equal else 'power'} {fires} "
                         f"{_goal(r['fires_ci'][0] <= 0.05) if equal else ''}".rstrip())  # fmt: skip
            lines.append(f"{'':<36} coverage {_fmt(r['coverage'], r['coverage_ci'])} "
                         f"{_goal(r['coverage_ci'][1] >= 0.93 and r['coverage_ci'][0] <= 0.97)}; "
                         f"median SE {r['median_se']:.4f}, seed SD {r['seed_sd_auc']:.4f}, {r['sims']} sims")  # fmt: skip
    if "importance" in only:
        from hpo_assets.simulation.importance import importance_rates

        print("importance", flush=True)
        imp = importance_rates(a.importance_studies, a.seed)
        out["importance"] = imp
        for kind in ("fanova", "ped_anova"):
            if kind not in imp:
                continue
            f, d = imp[kind]["fwer"], imp[kind]["detection"]
            lines.append(f"importance {kind:<25} null FWER {_fmt(f['rate'], (f['lo'], f['hi']))} "
                         f"{_goal(f['lo'] <= 0.05)}; detection of a {imp['effect']} AUC lr effect "
                         f"{_fmt(d['rate'], (d['lo'], d['hi']))} ({f['n']} studies each)")  # fmt: skip
    if "ece" in only:
        from hpo_assets.simulation.calibration import ece_rates

        print("ece", flush=True)
        ece = ece_rates(a.ece_sims, a.seed)
        out["ece"] = ece
        for key, val in ece.items():
            if isinstance(val, dict) and "rate" in val:
                lines.append(f"ECE {key:<32} {_fmt(val['rate'], (val['lo'], val['hi']))} goal {val['goal']}")
    out["seconds"] = round(time.time() - started)
    print()
    print("\n".join(lines))
    print(f"\n{out['seconds']} s; {out['command']} at {commit}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
