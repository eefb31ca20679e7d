"""Time the demo-profile `hpo_study` partitions and count wasted trials (run by hand, prints figures).

    .venv/bin/python benchmarks/study_demo.py            # 2M|h1 2M|h3 2M|h5, profile demo
    .venv/bin/python benchmarks/study_demo.py 2M|h1      # one partition
    .venv/bin/python benchmarks/study_demo.py --cpu-threads 1 2M|h1

Runs in a temporary outputs/storage folder (the user's `.hpo/` is not touched). Wasted trials are
trials that trained without informing the search: diverged ones, and repeated configurations
(steered away before training, so they should be 0).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main(keys: list[str], cpu_threads: int = 0) -> None:
    tmp = tempfile.mkdtemp(prefix="hpo-bench-")
    os.environ["HPO_ASSETS_OUTPUTS"] = os.path.join(tmp, "outputs")
    os.environ["HPO_ASSETS_STORAGE"] = os.path.join(tmp, "hpo")
    import dagster as dg
    import optuna

    from hpo_assets.defs.assets.market import features, market_data
    from hpo_assets.defs.assets.studies import hpo_study
    from hpo_assets.defs.resources import GpuLeases, HpoPaths
    from hpo_assets.search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    assert dg.materialize([market_data, features], resources={"paths": HpoPaths()}).success
    print(f"market_data + features: {time.perf_counter() - t0:.1f} s")
    total = 0.0
    for key in keys:
        t0 = time.perf_counter()
        result = dg.materialize([hpo_study], partition_key=key, resources={"paths": HpoPaths(), "gpu": GpuLeases()},
                                run_config={"ops": {"hpo_study": {"config": {"profile": "demo", "cpu_threads": cpu_threads}}}})  # fmt: skip
        seconds = time.perf_counter() - t0
        total += seconds
        (mat,) = result.asset_materializations_for_node("hpo_study")
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        name = meta["study_name"]
        study = optuna.load_study(
            study_name=name, storage=open_storage(os.environ["HPO_ASSETS_STORAGE"], name)
        )
        params = [tuple(sorted(t.params.items())) for t in study.trials]
        repeats = len(params) - len(set(params))
        print(
            f"{key}: {seconds:.1f} s, trials {len(study.trials)} (complete {meta['trials_complete']}, "
            f"pruned {meta['trials_pruned']}, failed {meta['trials_failed']}, diverged {meta['trials_diverged']}), "
            f"steered repeats {meta['skipped_as_duplicate']}, repeated configurations trained {repeats}, "
            f"wasted (diverged + repeats trained) {meta['trials_diverged'] + repeats}, "
            f"best {meta['best_value']}"
        )
    print(f"all study partitions: {total:.1f} s ({tmp})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", default=["2M|h1", "2M|h3", "2M|h5"])
    parser.add_argument(
        "--cpu-threads", type=int, default=0, help="hpo_study cpu_threads (0 = torch default)"
    )
    args = parser.parse_args()
    main(args.keys, args.cpu_threads)
