"""Training throughput of the trainer on the bundled S&P 500 features (context 80, patch 16, stride 8).

Run by hand (several minutes; others share the machine, so the load average is printed):

    .venv/bin/python benchmarks/train_throughput.py                      # all configurations
    .venv/bin/python benchmarks/train_throughput.py --only a,c --epochs 5
    .venv/bin/python benchmarks/train_throughput.py --compile             # + torch.compile step timing
    .venv/bin/python benchmarks/train_throughput.py --quality 3          # fast vs torch dropout, real split
    .venv/bin/python benchmarks/train_throughput.py --only 20M@128 --bf16  # bf16 autocast on CPU (AMX)

For each configuration, in its own process (so peak memory is its own): parameter count, training
samples/s, seconds per epoch (median of --epochs after --warmup epochs), seconds per 50-epoch trial,
peak RSS, share of epoch time outside forward/backward/optimizer step (and validation forward),
and model FLOP utilisation = training FLOPs/s (FlopCounterMode on one fwd+bwd step) / the dense fp32
matmul FLOP/s measured in the same worker just before training.

Reference (original trainer, 3,746 windows): (a) d64-L4-H8-F256 @128: 2,171 samples/s, 1.79 s/epoch,
~16% util; (c) d192-L8-H8-F768 @64: 422 samples/s, 9.1 s/epoch, ~49% util.

Measured 2026-11-22 on this 2-core AVX-512/AMX VM (3,667 training windows, load ~2 = this run alone;
`--epochs 5`; the measured fp32 matmul peak is 350-380 GFLOP/s, not ~170):
  a@128  227k params  4,467 samples/s (x2.06)  0.85 s/epoch   0.7 min/50 ep  outside 1.4%  util 14.9%
  a@512                4,707 samples/s          0.80 s/epoch                  outside 1.1%  util 15.4%
  c@64   3.64M params    671 samples/s (x1.59)  5.61 s/epoch   4.7 min/50 ep  outside 0.3%  util 37.5%
  c@256                  779 samples/s          4.85 s/epoch                  outside 0.2%  util 40.2%
  2M@128 2.04M params    969 samples/s          3.88 s/epoch   3.2 min/50 ep  outside 0.3%  util 29.1%
  20M@128 19.9M params   182 samples/s         20.75 s/epoch  17.3 min/50 ep  outside 0.1%  util 51.6%
  20M@128 --bf16         287 samples/s         13.02 s/epoch  10.9 min/50 ep  (85% of the fp32 peak)
  peak RSS 0.6-1.7 GB.  --compile on a@128: first step 38 s, then 3,929 vs 3,791 samples/s eager (+4%):
  not worth it for trials of ~1 min.  Under contention from other torch processes the default OpenMP
  spin-wait makes 2-thread training 10x slower (38-340 samples/s on a@128); run with 1 thread per
  process there (TrainConfig.num_threads=1), or OMP_WAIT_POLICY=PASSIVE (--omp-wait passive).
  Quality (`--quality 8 --quality-epochs 15`, (a) on the S&P 500 h1 split, best-epoch val AUC over 8 seeds):
  fast dropout 0.7206, torch's F.dropout 0.7214 (run-to-run sd ~0.016): unchanged.
  bf16 vs fp32 (`--quality 3 --quality-epochs 8 --quality-bf16 --quality-config 2M@128`, idle machine):
  2M d128-L10 best-epoch val AUC over 3 seeds: fp32 0.7136 (0.7080, 0.7202, 0.7127), bf16 0.7136
  (0.7081, 0.7200, 0.7126), 32.8 vs 30.3 s per 8-epoch run: same quality; bf16 pays off at 20M.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

CONFIGS: dict[str, tuple[str, int]] = {
    # name: (architecture label, batch size)
    "a@128": ("d64-L4-H8-F256", 128),
    "a@512": ("d64-L4-H8-F256", 512),
    "c@64": ("d192-L8-H8-F768", 64),
    "c@256": ("d192-L8-H8-F768", 256),
    "2M@128": ("d128-L10-H8-F512", 128),  # closest to 2M among H8, d_ff=4d in the 2M space
    "20M@128": ("d320-L16-H8-F1280", 128),  # closest to 20M among H8, d_ff=4d in the 20M space
}
REFERENCE = {"a@128": 2171.0, "c@64": 422.0}


def matmul_flops(seconds: float = 3.0, n: int = 2048) -> float:
    """Dense fp32 matmul FLOP/s of this machine with torch's current thread count (best of runs)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(3):
            torch.mm(a, b)
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - t))
    return best


def training_flops_per_sample(model: Any, batch: int, context: int, n_features: int) -> float:
    """Forward + backward FLOPs of one training step per sample (matmuls/attention; optimizer excluded)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, context, n_features)
    y = torch.randint(0, 2, (batch,)).float()
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def load_data() -> Any:
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.market import default_market_path, load_market

    return prepare_dataset(load_market(default_market_path()), horizon=1)


def worker(
    name: str, label: str, batch: int, epochs: int, warmup: int, threads: int | None, bf16: bool = False
) -> dict[str, Any]:
    import importlib

    importlib.import_module("hpo_assets")  # first: its OMP_WAIT_POLICY default must precede torch's OpenMP
    import torch

    from hpo_assets.model.params import Arch
    from hpo_assets.model.patchtst import PatchTSTClassifier
    from hpo_assets.training.trainer import TrainConfig, train

    if threads:
        torch.set_num_threads(threads)
    data = load_data()
    arch = Arch.from_label(label)
    peak = matmul_flops()  # same process, threads and moment as the training it is compared with
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flops = training_flops_per_sample(
        PatchTSTClassifier(data.n_features, arch), min(batch, 64), data.context, data.n_features
    )
    cfg = TrainConfig(
        batch_size=batch,
        max_epochs=warmup + epochs,
        patience=10**6,
        seed=0,
        cpu_bf16=bf16,
        num_threads=threads,
    )  # --threads fixes the count; without it the trainer takes the free cores
    result = train(data.x, data.y, data.split.train, data.split.val, arch, cfg, context=data.context)
    measured = result.timings[warmup:]
    n_train = len(data.split.train)
    epoch_s = statistics.median(t["seconds"] for t in measured)
    train_s = statistics.median(t["seconds"] - t["eval_seconds"] for t in measured)
    outside = statistics.median(
        (t["seconds"] - t["compute_seconds"] - t["eval_seconds"]) / t["seconds"] for t in measured
    )
    samples_per_s = n_train / train_s
    # CPU seconds of the process per epoch / threads: what the epoch would take with the cores to itself
    # (a contention-robust estimate when other jobs share the machine; idle threads sleep under PASSIVE)
    cpu_epoch_s = statistics.median(t["cpu_seconds"] for t in measured) / torch.get_num_threads()
    return {
        "config": name + ("+bf16" if bf16 else ""),
        "arch": label,
        "batch": batch,
        "params": result.param_count,
        "threads": result.num_threads,
        "n_train": n_train,
        "n_val": len(data.split.val),
        "samples_per_s": samples_per_s,
        "sec_per_epoch": epoch_s,
        "cpu_sec_per_epoch_per_thread": cpu_epoch_s,
        "samples_per_s_uncontended_est": n_train / cpu_epoch_s * (train_s / epoch_s),
        "sec_per_50_epochs": 50 * epoch_s,
        "epoch_seconds": [round(t["seconds"], 3) for t in result.timings],
        "outside_share": outside,
        "train_gflop_per_sample": flops / 1e9,
        "achieved_gflops": flops * samples_per_s / 1e9,
        "matmul_gflops": peak / 1e9,
        "utilisation": flops * samples_per_s / peak,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        "val_auc_last": result.curve[-1]["val_auc"],
        "status": result.status,
        "loadavg_1m": os.getloadavg()[0],
    }


def quality_worker(
    label: str, batch: int, seed: int, fast_dropout: bool, epochs: int, bf16: bool = False
) -> dict[str, Any]:
    """One real training run on the S&P 500 h1 split, with the fast or torch's dropout, in fp32 or bf16."""
    import hpo_assets.model.patchtst as patchtst
    from hpo_assets.model.params import Arch
    from hpo_assets.training.trainer import TrainConfig, train

    patchtst.FAST_DROPOUT = fast_dropout
    data = load_data()
    cfg = TrainConfig(
        batch_size=batch,
        max_epochs=epochs,
        patience=epochs,
        seed=seed,
        lr=3e-4,
        warmup_steps=50,
        cpu_bf16=bf16,
    )
    result = train(
        data.x, data.y, data.split.train, data.split.val, Arch.from_label(label), cfg, context=data.context
    )
    return {
        "fast_dropout": fast_dropout,
        "bf16": bf16,
        "seed": seed,
        "best_epoch": result.best_epoch,
        **{k: result.metrics[k] for k in ("val_auc", "val_loss", "val_pr_auc", "accuracy")},
        "sec": result.duration_sec,
    }


def compile_probe(label: str, batch: int, steps: int = 10) -> dict[str, Any]:
    """Eager vs torch.compile on one training step (fwd+bwd+AdamW) of random windows."""
    import torch

    from hpo_assets.model.params import Arch
    from hpo_assets.model.patchtst import PatchTSTClassifier

    torch.manual_seed(0)
    x, y = torch.randn(batch, 80, 25), torch.randint(0, 2, (batch,)).float()
    out: dict[str, Any] = {"arch": label, "batch": batch}
    for mode in ("eager", "compiled"):
        model = PatchTSTClassifier(25, Arch.from_label(label))
        fwd = torch.compile(model) if mode == "compiled" else model
        opt = torch.optim.AdamW(model.parameters(), fused=True)

        def step() -> None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(fwd(x), y)  # noqa: B023
            opt.zero_grad(set_to_none=True)  # noqa: B023
            loss.backward()
            opt.step()  # noqa: B023

        t = time.perf_counter()
        step()
        out[f"{mode}_first_step_s"] = time.perf_counter() - t
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        out[f"{mode}_samples_per_s"] = batch / statistics.median(times)
    return out


BUSY_LOOP = (
    "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"
)


def _measure(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def contention_pair(spec: dict[str, Any], n_busy: int, env: dict[str, str], bound_s: float = 900.0) -> None:
    """Samples/s idle, then beside `n_busy` busy-loop processes (each ends by itself after `bound_s` and is
    killed by its PID as soon as the measurement is done)."""
    idle = _measure(spec, env)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(bound_s)]) for _ in range(n_busy)]
    try:
        time.sleep(1.0)  # the busy loops are running before training starts
        loaded = _measure(spec, env)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(
        f"{spec['name']}: idle {idle['samples_per_s']:,.0f} samples/s ({idle['threads']} threads, load "
        f"{idle['loadavg_1m']:.1f}); beside {n_busy} busy process(es) {loaded['samples_per_s']:,.0f} samples/s "
        f"({loaded['threads']} threads, load {loaded['loadavg_1m']:.1f}): "
        f"{loaded['samples_per_s'] / idle['samples_per_s']:.0%} of idle; OMP_WAIT_POLICY={loaded['omp_wait_policy']}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"comma list of {list(CONFIGS)}")
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs (median)")
    parser.add_argument("--warmup", type=int, default=1, help="epochs discarded first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each worker")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on (a)")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="TrainConfig(cpu_bf16=True): bf16 autocast on CPU (AMX); utilisation stays vs fp32 peak",
    )
    parser.add_argument(
        "--omp-wait",
        choices=["passive", "active", "unset"],
        default="unset",
        help="OMP_WAIT_POLICY of the workers (unset: as the environment has it; passive: idle threads "
        "sleep, better when other jobs share the cores)",
    )
    parser.add_argument(
        "--contention",
        type=int,
        default=0,
        metavar="N",
        help="measure each configuration idle, then beside N busy-loop processes (back to back), and print "
        "the share of idle throughput kept",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=0,
        metavar="SEEDS",
        help="instead: train (a) on the real split with fast vs torch dropout for SEEDS seeds",
    )
    parser.add_argument("--quality-epochs", type=int, default=20)
    parser.add_argument(
        "--quality-bf16", action="store_true", help="quality: fp32 vs bf16 instead of dropouts"
    )
    parser.add_argument(
        "--quality-config", default="a@128", help="quality: which configuration (e.g. 2M@128)"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quality-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.quality_worker:
        print(json.dumps(quality_worker(**json.loads(args.quality_worker))))
        return 0
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(worker(**spec)))
        return 0

    import torch

    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait != "unset":
        env["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    print(
        f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, "
        f"OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY')}, loadavg {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if args.quality:
        label, batch = CONFIGS[args.quality_config]
        # Each variant: (name, fast_dropout, bf16). --quality-bf16 compares precisions instead of dropouts.
        variants = (
            [("fp32", True, False), ("bf16", True, True)]
            if args.quality_bf16
            else [("fast", True, False), ("torch", False, False)]
        )
        runs = []
        for seed in range(args.quality):
            for name, fast, bf16 in variants:
                spec = {
                    "label": label,
                    "batch": batch,
                    "seed": seed,
                    "fast_dropout": fast,
                    "bf16": bf16,
                    "epochs": args.quality_epochs,
                }
                proc = subprocess.run(
                    [sys.executable, __file__, "--quality-worker", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                )
                runs.append({"variant": name, **json.loads(proc.stdout.strip().splitlines()[-1])})
                print(json.dumps(runs[-1]), flush=True)
        for name, _, _ in variants:
            aucs = [r["val_auc"] for r in runs if r["variant"] == name]
            secs = [r["sec"] for r in runs if r["variant"] == name]
            print(
                f"{label} {name}: val_auc mean {statistics.mean(aucs):.4f} "
                f"(runs {', '.join(f'{a:.4f}' for a in aucs)}), {statistics.mean(secs):.1f} s per run"
            )
        return 0
    rows = []
    for name in args.only.split(","):
        label, batch = CONFIGS[name]
        spec = {
            "name": name,
            "label": label,
            "batch": batch,
            "epochs": args.epochs,
            "warmup": args.warmup,
            "threads": args.threads,
            "bf16": args.bf16,
        }
        if args.contention:
            contention_pair(spec, args.contention, env)
            continue
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if proc.returncode:
            print(f"{name}: worker failed:\n{proc.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if name in REFERENCE:
            row["speedup_vs_reference"] = row["samples_per_s"] / REFERENCE[name]
        rows.append(row)
        print(
            f"{row['config']:8s} {label:18s} params {row['params']:>11,}  {row['samples_per_s']:8.0f} samples/s  "
            f"{row['sec_per_epoch']:7.2f} s/epoch  {row['sec_per_50_epochs'] / 60:6.1f} min/50ep  "
            f"peak RSS {row['peak_rss_mb']:6.0f} MB  outside {row['outside_share']:5.1%}  "
            f"util {row['utilisation']:5.1%} of {row['matmul_gflops']:.0f} GFLOP/s"
            + (f"  x{row['speedup_vs_reference']:.2f} vs ref" if "speedup_vs_reference" in row else "")
            + f"  (load {row['loadavg_1m']:.1f}; from CPU time: ~{row['samples_per_s_uncontended_est']:.0f} samples/s)",
            flush=True,
        )
    if args.compile:
        probe = compile_probe(*CONFIGS["a@128"])
        print(
            "torch.compile probe:",
            json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in probe.items()}),
            flush=True,
        )
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
