"""Does one learning rate mean the same at every width? And do warm-started studies save trials?

Run by hand (minutes to an hour; others share the machine, so the load average is printed):

    .venv/bin/python benchmarks/transfer.py lr-curves                 # (1) defaults below, ~30 min
    .venv/bin/python benchmarks/transfer.py lr-curves --seeds 0 --epochs 1 --widths 64,128
    .venv/bin/python benchmarks/transfer.py replay --archs 3          # (2) tabular replay of warm starts
    .venv/bin/python benchmarks/transfer.py coord-check               # (3) coordinate check (GPU: see README)

(1) lr-curves: best validation loss (S&P 500 h1 split, 3,667 training / 424 validation windows)
vs learning rate for widths 64 -> 512 (depth 2, head size 32, d_ff = 2 x width, batch 64, dropout
0.1, weight decay 0.01, 10 warm-up steps, cosine decay over `--epochs`), `standard` vs `mup`, one
run per (width, lr, seed), 1 CPU thread each. Per width: mean over seeds with a 95% t-interval
(the noise is the seed's: init, batch order, dropout), the optimum lr, and the lrs whose mean lies
within one standard error of the optimum's ("indistinguishable"). Results are cached in
benchmarks/.cache/ so a killed run resumes.

The replay figures below were measured before the structured search space landed (flat `arch` label,
warm-up 10 steps, RevIN; commit d1497aa); the script now runs on the structured space (warm-up
fraction 0.1, `normalization: revin`) and retrains its pool (new cache keys), so rerun it to refresh.
Measured 2026-11-22 on the shared 2-core VM (load 9-20 from other jobs; figures in the README):
  lr-curves: one full seed (seed 1 stopped after 7 cells; those pairs give a per-run SD ~0.007 BCE).
  Optimum lr per width 64/128/256/512: standard 3e-4, 3e-4, 1e-4, 1e-4; mup 3e-4, 3e-4, 3e-4, 1e-3
  (inconclusive: within noise). lr 3e-3 penalty over the width's best: standard +0.005 -> +0.034,
  mup +0.001 -> +0.007. Base-rate BCE 0.5011.
  replay --archs 3 --replays 20 (50K -> 200K, 2 epochs, mup): bar 0.6955 (best 0.7076 - SD 0.0121);
  warm start within 10 trials 20/20 (median 5), from scratch 20/20 (median 2): inconclusive.
  coord-check (seed 0): fitted |dh| growth 64->512 standard x35.8, mup x0.87, completep x0.93.

(2) replay: see `replay_main` below. (3) coord-check: `training/coord_check.py` at chosen widths,
device and precision; the README's GPU protocol runs it at the 2B widths in bf16.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
HEAD_DIM = 32


def _data() -> Any:
    """h1 data as a study with the default settings trains on (all the data, the `split:` section)."""
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.search.build import prepared_for
    from hpo_assets.search.study_settings import DEFAULTS

    return prepared_for(load_market(default_market_path()), 1, DEFAULTS)


def _prior_loss(data: Any) -> float:
    """Validation BCE of predicting the training base rate for every window (the no-skill baseline)."""
    p = float(data.y[data.split.train].mean())
    yv = data.y[data.split.val]
    return float(-(yv * math.log(p) + (1 - yv) * math.log(1 - p)).mean())


def _t95(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else math.nan


def _load_cache(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["key"]] = rec
    return out


def lr_curves(args: argparse.Namespace) -> None:
    import torch

    from hpo_assets.model.params import Arch, count_parameters
    from hpo_assets.training.trainer import TrainConfig, train_prepared

    torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    lrs = [float(v) for v in args.lrs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    kinds = args.kinds.split(",")
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_path = CACHE / "transfer_lr_curves.jsonl"
    cache = _load_cache(cache_path)
    data = _data()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared)", flush=True)
    for seed in [] if args.report_only else seeds:
        for kind in kinds:
            for lr in lrs:
                for width in widths:
                    arch = Arch(width, args.depth, max(1, width // HEAD_DIM), 2 * width)
                    key = f"{kind}|{arch.label}|lr={lr:g}|seed={seed}|epochs={args.epochs}"
                    if key in cache:
                        continue
                    cfg = TrainConfig(
                        lr=lr, weight_decay=0.01, warmup_steps=10, dropout=0.1, batch_size=64,
                        max_epochs=args.epochs, patience=args.epochs, objective="val_loss", seed=seed,
                        num_threads=1, parametrization=kind,
                    )  # fmt: skip
                    t0 = time.perf_counter()
                    res = train_prepared(data, arch, cfg)
                    rec = {
                        "key": key, "kind": kind, "width": width, "lr": lr, "seed": seed,
                        "params": count_parameters(arch, data.n_features),
                        "best_val_loss": res.best_val_loss, "status": res.status,
                        "val_auc": res.metrics.get("val_auc"), "seconds": time.perf_counter() - t0,
                    }  # fmt: skip
                    cache[key] = rec
                    with cache_path.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    print(
                        f"{kind:9s} w={width:4d} lr={lr:<7g} seed={seed} best val loss "
                        f"{rec['best_val_loss'] if rec['best_val_loss'] is not None else 'None'} "
                        f"({rec['status']}, {rec['seconds']:.0f}s, load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    report_lr_curves(cache, widths, lrs, seeds, kinds, args.epochs, _prior_loss(data))


def report_lr_curves(
    cache: dict[str, dict[str, Any]],
    widths: list[int],
    lrs: list[float],
    seeds: list[int],
    kinds: list[str],
    epochs: int,
    prior: float,
) -> None:
    print(f"\nbaseline: predicting the training base rate gives validation BCE {prior:.4f}")
    print(f"best validation loss (mean over seeds {seeds} +- 95% t-interval half-width; {epochs} epochs)")
    for kind in kinds:
        print(f"\n[{kind}]")
        print("width  " + "".join(f"lr={lr:<17g}" for lr in lrs) + "optimum  within 1 SE")
        optima = {}
        for width in widths:
            cells, means, ses = [], {}, {}
            for lr in lrs:
                vals = [
                    r["best_val_loss"]
                    for r in cache.values()
                    if r["kind"] == kind and r["width"] == width and r["lr"] == lr and r["seed"] in seeds
                    and r["key"].endswith(f"epochs={epochs}")
                ]  # fmt: skip
                finite = [v for v in vals if v is not None and math.isfinite(v)]
                if len(finite) < len(vals) or not vals:
                    cells.append(f"{'n/a' if not vals else f'{len(vals) - len(finite)} diverged':<20s}")
                    continue
                m = statistics.fmean(finite)
                se = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else math.nan
                means[lr], ses[lr] = m, se
                cells.append(f"{m:.4f}+-{_t95(len(finite)) * se:.4f}".ljust(20))
            if means:
                best = min(means, key=means.get)
                optima[width] = best
                close = [lr for lr in means if means[lr] - means[best] <= ses[best]]
                print(f"{width:<7d}" + "".join(cells) + f"{best:<9g}{','.join(f'{v:g}' for v in close)}")
            else:
                print(f"{width:<7d}" + "".join(cells))
        if len(optima) >= 2:
            steps = [
                round(math.log(optima[w] / optima[widths[0]]) / math.log(lrs[1] / lrs[0])) for w in optima
            ]
            print(
                f"optimum lr drift from width {widths[0]} (grid steps): {dict(zip(optima, steps, strict=True))}"
            )


# --- (2) tabular replay ---------------------------------------------------------------------------
REPLAY_CHOICES: dict[str, list[Any]] = {
    "lr": [1e-4, 3e-4, 1e-3, 3e-3],
    "dropout": [0.0, 0.3],
    "weight_decay": [0.0, 1e-2],
    "warmup_frac": [0.1],
    "batch_size": [64],
    "normalization": ["revin"],
}


def _spread(entries: list[Any], k: int) -> list[Any]:
    """k architectures evenly spaced through the budget's sorted space (narrow-deep ... wide-shallow)."""
    idx = sorted({round(i * (len(entries) - 1) / max(1, k - 1)) for i in range(k)})
    return [entries[i] for i in idx]


def _replay_space(budget: str, k: int, n_features: int) -> Any:
    from hpo_assets.model.budgets import budget_space
    from hpo_assets.search.space import SearchSpace, arch_choices

    return SearchSpace.build(
        arch_choices(_spread(budget_space(budget, n_features=n_features), k)), REPLAY_CHOICES
    )


def _pool_key(kind: str, label: str, hp: dict[str, Any], epochs: int, seed: int) -> str:
    return f"{kind}|{label}|" + "|".join(f"{k}={hp[k]}" for k in sorted(hp)) + f"|epochs={epochs}|seed={seed}"


def _replay_config(args: argparse.Namespace, arch: Any, hp: dict[str, Any], seed: int) -> tuple[Any, Any]:
    """(Arch, TrainConfig) of one pool configuration, as a study's trainer would build it."""
    from hpo_assets.search.space import configs_from_params

    return configs_from_params(
        {**arch.arch_params(), **hp}, max_epochs=args.epochs, patience=args.epochs, objective="val_auc",
        seed=seed, num_threads=1, parametrization=args.kind,
    )  # fmt: skip


def _train_pool(args: argparse.Namespace, spaces: dict[str, Any], data: Any) -> dict[str, dict[str, Any]]:
    """Train every configuration of every replay space once (cached), 1 CPU thread each."""
    import itertools

    import torch

    from hpo_assets.training.trainer import train_prepared

    torch.set_num_threads(1)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "transfer_replay_pool.jsonl"
    cache = _load_cache(path)
    todo = []
    for budget, space in spaces.items():
        for arch, values in itertools.product(space.archs, itertools.product(*REPLAY_CHOICES.values())):
            hp = dict(zip(REPLAY_CHOICES, values, strict=True))
            todo.append((budget, arch, hp, 0))
    t_start = time.perf_counter()
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    for i, (budget, arch, hp, seed) in enumerate(todo):
        key = _pool_key(args.kind, arch.label, hp, args.epochs, seed)
        if key in cache or i % n_shards != shard:
            continue
        res = train_prepared(data, *_replay_config(args, arch, hp, seed))
        rec = {"key": key, "budget": budget, "val_auc": res.metrics.get("val_auc"), "status": res.status}
        cache[key] = rec
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if i % 10 == 0:
            print(f"pool {i + 1}/{len(todo)} {budget} {arch.label} {hp} auc {rec['val_auc']} "
                  f"({time.perf_counter() - t_start:.0f}s, load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    return cache


def _noise_sd(
    args: argparse.Namespace, space: Any, cache: dict[str, dict[str, Any]], data: Any
) -> tuple[float, int]:
    """Seed-to-seed sd of val AUC: the target's 3 best configurations retrained with seeds 1 and 2 (cached)."""
    import torch

    from hpo_assets.training.trainer import train_prepared

    torch.set_num_threads(1)
    path = CACHE / "transfer_replay_pool.jsonl"
    scored = []
    for arch in space.archs:
        for values in __import__("itertools").product(*REPLAY_CHOICES.values()):
            hp = dict(zip(REPLAY_CHOICES, values, strict=True))
            rec = cache.get(_pool_key(args.kind, arch.label, hp, args.epochs, 0))
            if rec and rec["val_auc"] is not None:
                scored.append((rec["val_auc"], arch, hp))
    scored.sort(key=lambda r: -r[0])
    devs, n = [], 0
    for _, arch, hp in scored[:3]:
        vals = []
        for seed in (0, 1, 2):
            key = _pool_key(args.kind, arch.label, hp, args.epochs, seed)
            if key not in cache:
                res = train_prepared(data, *_replay_config(args, arch, hp, seed))
                cache[key] = {
                    "key": key,
                    "budget": "noise",
                    "val_auc": res.metrics.get("val_auc"),
                    "status": res.status,
                }
                with path.open("a") as fh:
                    fh.write(json.dumps(cache[key]) + "\n")
            vals.append(cache[key]["val_auc"])
        m = statistics.fmean(vals)
        devs += [(v - m) ** 2 for v in vals]
        n += len(vals) - 1
    return math.sqrt(sum(devs) / n), n


def _replay_study(args, space, cache, name, storage, seed, n_trials, warm=None, n_forced=6) -> list[float]:
    """One study on stored results: the val AUC of each counted trial, in order."""
    from hpo_assets.search.runner import StudyOptions, run_study

    class _Result:
        def __init__(self, auc: float | None) -> None:
            self.metrics = {"val_auc": auc, "val_loss": None}
            self.curve = [{"epoch": 1, "val_auc": auc}]
            self.status = "ok" if auc is not None else "diverged"
            self.diverge_epoch, self.diverged_reason = (
                (None, None) if auc is not None else (1, "stored run diverged")
            )
            self.val_logits, self.val_labels = [0.0], [0]

    def trainer(arch: Any, hp: Any, on_epoch: Any) -> _Result:
        rec = cache[_pool_key(args.kind, arch.label, {k: hp[k] for k in REPLAY_CHOICES}, args.epochs, 0)]
        return _Result(rec["val_auc"])

    run_study(
        space, trainer, study_name=name, storage=storage, warm_start=warm, log=lambda _m: None,
        study_attrs={"parametrization": args.kind},
        options=StudyOptions(n_trials=n_trials, n_forced=n_forced, pruner="none", seed=seed, epochs_config=args.epochs),
    )  # fmt: skip
    import optuna

    from hpo_assets.search.storage import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(storage, name))
    out = []
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.user_attrs.get("skipped_duplicate") or t.user_attrs.get("killed_run"):
            continue
        out.append(t.value if t.value is not None else -math.inf)
    return out


def _trials_to_reach(values: list[float], threshold: float) -> int | None:
    best = -math.inf
    for i, v in enumerate(values, 1):
        best = max(best, v)
        if best >= threshold:
            return i
    return None


def replay_main(args: argparse.Namespace) -> None:
    """(2) Trials a warm-started study needs to come within one noise SD of the from-scratch 50-trial best.

    Spaces: `--archs` architectures spread through each budget's space x lr {1e-4..3e-3} x dropout
    {0, 0.3} x weight decay {0, 1e-2} (warm-up 10 steps, batch 64). Every configuration of the
    source and target spaces is trained ONCE (`--epochs`, seed 0, `--kind`, val AUC on the h1 split);
    studies are then replayed on the stored values with the real run_study (TPE, steering, forced
    extremes, warm start) for `--replays` seeds. Per seed: the source study runs 50 trials from scratch,
    its best warm-starts the target; the target's from-scratch study runs 50 trials. The threshold is
    the mean (over seeds) from-scratch 50-trial best minus the seed-to-seed SD of val AUC (the 3 best
    target configurations retrained with 3 seeds): "within one SE" of a single trained model.
    """
    import tempfile

    data = _data()
    sources = args.sources.split(",")
    spaces = {b: _replay_space(b, args.archs, data.n_features) for b in [*sources, args.target]}
    for b, sp in spaces.items():
        print(f"{b}: {len(sp.archs)} architectures {[a.label for a in sp.archs]}, {sp.size} configurations")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared)", flush=True)
    cache = _train_pool(args, spaces, data)
    if args.shard != "0/1":
        print(f"pool shard {args.shard} trained; run again without --shard for the replay")
        return
    sd, dof = _noise_sd(args, spaces[args.target], cache, data)
    from hpo_assets.search.transfer import load_sources, plan_warm_start

    cold, warm_runs, warm_first = [], [], []
    for r in range(args.replays):
        with tempfile.TemporaryDirectory() as tmp:
            names = []
            for b in sources:
                name = f"hpo-{b}-h1"
                _replay_study(args, spaces[b], cache, name, tmp, seed=100 + r, n_trials=50)
                names.append(name)
            cold.append(
                _replay_study(args, spaces[args.target], cache, "cold", tmp, seed=200 + r, n_trials=50)
            )
            src = load_sources(tmp, names, args.kind, "maximize")
            plan = plan_warm_start(src, spaces[args.target], max_configs=len(src) + 4)
            warm_first.append(len(plan.configs))
            warm_runs.append(
                _replay_study(
                    args,
                    spaces[args.target],
                    cache,
                    "warm",
                    tmp,
                    seed=200 + r,
                    n_trials=args.warm_trials,
                    warm=plan,
                )
            )
    best50 = [max(v) for v in cold]
    target_best = statistics.fmean(best50)
    threshold = target_best - sd
    all_values = [
        r["val_auc"] for r in cache.values() if r["budget"] == args.target and r["val_auc"] is not None
    ]
    print(
        f"\n{args.target} target, sources {sources}, {args.kind}, {args.epochs} epochs/config, {args.replays} replays"
    )
    print(
        f"from-scratch 50-trial best: mean {target_best:.4f} (sd over replays {statistics.pstdev(best50):.4f})"
    )
    print(f"seed-to-seed SD of val AUC (3 configs x 3 seeds, {dof} dof): {sd:.4f}; threshold {threshold:.4f}")
    print(
        f"{args.target} space: {len(all_values)} stored runs, val AUC {min(all_values):.4f}..{max(all_values):.4f}"
    )

    def summary(label: str, runs: list[list[float]], cap: int) -> None:
        reach = [_trials_to_reach(v[:cap], threshold) for v in runs]
        hit = [n for n in reach if n is not None]
        share = len(hit) / len(reach)
        lo, hi = _wilson(len(hit), len(reach))
        med = statistics.median(hit) if hit else None
        print(f"{label:32s} reached within {cap} trials in {len(hit)}/{len(reach)} replays "
              f"({share:.0%}, 95% CI {lo:.0%}-{hi:.0%}); median trials when reached {med}")  # fmt: skip

    summary("warm start (ours)", warm_runs, 10)
    summary("from scratch (TPE, 6 extremes)", cold, 10)
    summary("from scratch (TPE, 6 extremes)", cold, 50)
    print(f"transferred configurations enqueued per replay: {sorted(set(warm_first))}")
    for label, runs in (("warm", warm_runs), ("cold", cold)):
        b10 = [max(v[:10]) for v in runs]
        if len(b10) < 2:
            continue
        print(f"best after 10 trials, {label}: mean {statistics.fmean(b10):.4f} +- "
              f"{_t95(len(b10)) * statistics.stdev(b10) / math.sqrt(len(b10)):.4f} (95% t, over replays)")  # fmt: skip


def _wilson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def coord_main(args: argparse.Namespace) -> None:
    """(3) The coordinate check of the test suite at any widths, device and precision (GPU protocol)."""
    import torch

    from hpo_assets.training.coord_check import coordinate_check, growth

    if args.device == "cpu":
        torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    print(f"coordinate check: widths {widths}, depth {args.n_layers}, head size {args.head_dim}, {args.steps} "
          f"AdamW steps at lr {args.lr:g}, device {args.device}, bf16 {args.bf16}")  # fmt: skip
    for kind in args.kinds.split(","):
        stats = coordinate_check(
            kind, widths=widths, steps=args.steps, lr=args.lr, n_layers=args.n_layers, head_dim=args.head_dim,
            device=args.device, bf16=args.bf16 or None,
        )  # fmt: skip
        print(f"[{kind}]  " + "  ".join(f"w={s.width}: |h| {s.hidden:.3g} |dh| {s.hidden_delta:.3g} "
                                        f"|logit| {s.logit:.3g}" for s in stats))  # fmt: skip
        print(f"   growth narrowest->widest (fitted): |h| x{growth(stats, 'hidden'):.2f}  "
              f"|dh| x{growth(stats, 'hidden_delta'):.2f}  |logit| x{growth(stats, 'logit'):.2f}  "
              f"(flat = within 0.5..2)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lr = sub.add_parser("lr-curves", help="(1) best validation loss vs lr across widths")
    lr.add_argument("--widths", default="64,128,256,512")
    lr.add_argument("--lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2")
    lr.add_argument("--seeds", default="0,1,2")
    lr.add_argument("--kinds", default="standard,mup")
    lr.add_argument("--epochs", type=int, default=2)
    lr.add_argument("--depth", type=int, default=2)
    lr.add_argument(
        "--report-only", action="store_true", help="print the table from the cache, train nothing"
    )
    rp = sub.add_parser("replay", help="(2) trials a warm-started study needs (tabular replay)")
    rp.add_argument("--sources", default="50K")
    rp.add_argument("--target", default="200K")
    rp.add_argument(
        "--archs", type=int, default=4, help="architectures per budget (spread through its space)"
    )
    rp.add_argument("--epochs", type=int, default=2)
    rp.add_argument("--replays", type=int, default=20)
    rp.add_argument("--warm-trials", type=int, default=10)
    rp.add_argument("--kind", default="mup")
    rp.add_argument(
        "--shard", default="0/1", help="i/n: train only every n-th pool configuration (parallel workers)"
    )
    cc = sub.add_parser("coord-check", help="(3) activation/logit size after a few steps across widths")
    cc.add_argument("--widths", default="64,128,256,512")
    cc.add_argument("--kinds", default="standard,mup,completep")
    cc.add_argument("--steps", type=int, default=4)
    cc.add_argument("--lr", type=float, default=1e-2)
    cc.add_argument("--n-layers", type=int, default=2)
    cc.add_argument("--head-dim", type=int, default=32)
    cc.add_argument("--device", default="cpu")
    cc.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA, or CPUs with AMX)")
    args = parser.parse_args(argv)
    if args.command == "lr-curves":
        lr_curves(args)
    elif args.command == "replay":
        replay_main(args)
    else:
        coord_main(args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
