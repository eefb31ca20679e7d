"""Time the demo's `calibrated_model` (and `baselines`) for 2M|h1 on the demo profile (run by hand, prints figures).

    nice -n 10 .venv/bin/python benchmarks/calibrated_model_demo.py            # profile demo, 2M|h1
    nice -n 10 .venv/bin/python benchmarks/calibrated_model_demo.py --key 2M|h3
    nice -n 10 .venv/bin/python benchmarks/calibrated_model_demo.py --test-folds 1 2   # one study, both fold counts

Runs the demo-profile `hpo_study` for the partition first (its time is printed but is not the figure),
in a temporary outputs/storage folder (the user's `.hpo/` is not touched); then materializes `baselines`
for the horizon and `calibrated_model` for the partition exactly as `make demo` does and prints their wall
time, with the card's folds and seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main(key: str, profile: str, test_folds: list[int]) -> None:
    tmp = tempfile.mkdtemp(prefix="hpo-bench-")
    os.environ["HPO_ASSETS_OUTPUTS"] = os.path.join(tmp, "outputs")
    os.environ["HPO_ASSETS_STORAGE"] = os.path.join(tmp, "hpo")
    import dagster as dg
    import optuna

    from hpo_assets.defs.assets.market import features, market_data
    from hpo_assets.defs.assets.models import baselines, calibrated_model
    from hpo_assets.defs.assets.studies import hpo_study
    from hpo_assets.defs.resources import GpuLeases, HpoPaths

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    resources = {"paths": HpoPaths(), "gpu": GpuLeases()}
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    config = {"profile": profile}
    t0 = time.perf_counter()
    assert dg.materialize([hpo_study], partition_key=key, resources=resources,
                          run_config={"ops": {"hpo_study": {"config": config}}}).success  # fmt: skip
    print(f"hpo_study {key} ({profile}): {time.perf_counter() - t0:.1f} s (setup, not the figure)")
    horizon = key.split("|")[1]
    for folds in test_folds or [0]:
        run_config = (
            {**config, "test_folds": folds} if folds else config
        )  # 0: the profile's models.test_folds
        t0 = time.perf_counter()
        assert dg.materialize([baselines], partition_key=horizon, resources=resources,
                              run_config={"ops": {"baselines": {"config": run_config}}}).success  # fmt: skip
        print(f"baselines {horizon}: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        assert dg.materialize([calibrated_model], partition_key=key, resources=resources,
                              run_config={"ops": {"calibrated_model": {"config": run_config}}}).success  # fmt: skip
        seconds = time.perf_counter() - t0
        card = json.loads(
            open(os.path.join(tmp, "outputs", "models", key.replace("|", "_"), "card.json")).read()
        )
        test = card["test"]
        print(f"calibrated_model {key}: {seconds:.1f} s; folds {test.get('folds', 1)}, seeds {len(card['seeds'])}, "
              f"test n {test['n']}, auc {test['auc']:.4f} [{test['auc_lo']:.4f}, {test['auc_hi']:.4f}] ({tmp})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key", default="2M|h1")
    parser.add_argument("--profile", default="demo")
    parser.add_argument(
        "--test-folds", type=int, nargs="*", default=[], help="fold counts to time (default: the profile's)"
    )
    args = parser.parse_args()
    main(args.key, args.profile, args.test_folds)
