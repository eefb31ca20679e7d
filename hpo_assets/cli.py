"""`hpo-assets` console script: one subcommand per user task; each calls the library or the Dagster layer."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from hpo_assets.demo import run_demo

    if args.pool_wait < 0:
        raise UserError(f"--pool-wait must be >= 0 seconds, got {args.pool_wait}")
    from hpo_assets.search.progress import terminal_progress

    with terminal_progress():  # a bar per study on a terminal, plain progress lines otherwise
        return run_demo(profile=args.profile, pool_wait_s=args.pool_wait)


def parse_settings(config_json: str, assignments: list[str]) -> dict[str, Any]:
    """`--config-json '{...}'` and `--set name=value` (YAML-typed values) as one dict of hpo_study fields."""
    import json

    import yaml

    values: dict[str, Any] = {}
    if config_json:
        try:
            given = json.loads(config_json)
        except ValueError as exc:
            raise UserError(f"--config-json is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise UserError(
                "--config-json must be a JSON object of hpo_study fields, e.g. '{\"n_trials\": 5}'"
            )
        values.update(given)
    for item in assignments:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set {item!r} must read name=value, e.g. n_trials=5")
        try:
            values[name.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[name.strip()] = raw
    return values


def _cmd_study(args: argparse.Namespace) -> int:
    from hpo_assets.local_runs import run_study_partition
    from hpo_assets.search.partition import parse_partition
    from hpo_assets.search.study_settings import check_values

    key = parse_partition(args.key).key  # key and config are checked before anything is loaded or run
    values = check_values(parse_settings(args.config_json, args.set))
    if args.profile:
        values.setdefault("profile", args.profile)
    if isinstance(values.get("storage"), str):  # the run config is stored: a password goes to the env
        from hpo_assets.locations import STORAGE_PASSWORD_ENV, password_to_env

        values["storage"], password = password_to_env(values["storage"], STORAGE_PASSWORD_ENV)
        if password is not None:
            os.environ[STORAGE_PASSWORD_ENV] = password
    from hpo_assets.search.preflight import check_study_run
    from hpo_assets.settings import storage_spec

    check_study_run(key, values, storage_spec())  # dates, device, architectures, storage: one line each
    from hpo_assets.search.progress import terminal_progress

    with terminal_progress():
        return run_study_partition(key, values, args.pool_wait)


def _cmd_recover(args: argparse.Namespace) -> int:
    from hpo_assets.settings import dagster_home

    if not dagster_home():
        raise UserError("set DAGSTER_HOME: the folder of the Dagster instance whose runs to recover")
    import dagster as dg

    from hpo_assets.local_runs import recover

    for line in recover(dg.DagsterInstance.get(), args.pool or None, args.run):
        print(line)
    return 0


def _cmd_init_instance(args: argparse.Namespace) -> int:
    from hpo_assets.defs.instance import PG_PASSWORD_ENV, PG_URL_ENV, ensure_instance, postgres_storage
    from hpo_assets.settings import dagster_home, env

    home = args.home or dagster_home()
    if not home:
        raise UserError("set DAGSTER_HOME or pass --home: the folder of the Dagster instance")

    url = args.postgres_url or env(PG_URL_ENV)
    from_env = bool(url) and not args.postgres_url
    from hpo_assets.locations import literal_password, mask_password

    if url and not from_env and literal_password(url) and not env(PG_PASSWORD_ENV):
        raise UserError(
            f"--postgres-url {mask_password(url)!r} holds a password: set {PG_PASSWORD_ENV} to it (dagster.yaml "
            "refers to that variable, never the password; every Dagster process needs it)"
        )
    try:
        path = ensure_instance(home, postgres_url=url, gpu_pool_limit=args.gpu_limit, url_from_env=from_env)
    except (OSError, ValueError):
        raise
    except Exception as exc:  # Dagster / PostgreSQL errors opening the instance: one line, masked
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the Dagster instance in {home} cannot be opened: {mask_password(reason)}") from None
    print(f"Dagster instance config: {path}")
    if url and from_env:
        print(
            f"  storage: PostgreSQL from ${PG_URL_ENV}; set it for every Dagster process (webserver, daemon)"
        )
    elif url and "password" in str(postgres_storage(url)):
        print(
            f"  storage: PostgreSQL; set ${PG_PASSWORD_ENV} for every Dagster process (the password is not written)"
        )
    return 0


def _cmd_space(args: argparse.Namespace) -> int:
    import json

    from hpo_assets.model.budgets import budget_label, budget_space, parse_budget, space_table
    from hpo_assets.settings import model_shape

    shape = {
        k: getattr(args, k) if getattr(args, k) is not None else getattr(model_shape(), k)
        for k in ("n_features", "context", "patch_len", "stride")
    }
    entries = budget_space(args.budget, tolerance=args.tolerance, **shape)
    rows = space_table(entries, args.budget)
    if args.json:
        print(
            json.dumps(
                {
                    "budget": budget_label(args.budget),
                    "budget_params": parse_budget(args.budget),
                    **shape,
                    "architectures": rows,
                },
                indent=2,
            )
        )
        return 0
    cols = ["label", "d_model", "n_layers", "n_heads", "d_ff", "param_count", "deviation"]
    cells = [
        [
            f"{r[c]:,}" if c == "param_count" else f"{r[c]:+.1%}" if c == "deviation" else str(r[c])
            for c in cols
        ]
        for r in rows
    ]
    print(
        f"budget {budget_label(args.budget)}: {len(rows)} architectures "
        f"(n_features={shape['n_features']}, context={shape['context']}, "
        f"patch_len={shape['patch_len']}, stride={shape['stride']})"
    )
    _print_table(cols, cells)
    return 0


def _print_table(cols: list[str], cells: list[list[str]], indent: str = "") -> None:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    for line in [cols, *cells]:
        padded = (v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
        print(indent + "  ".join(padded))


def _cmd_extract(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out!r} is an existing file; give a folder (it is created if missing)")
    from hpo_assets.analysis.report_files import write_outputs
    from hpo_assets.search.progress import stages
    from hpo_assets.trials.extract import extract, format_report

    with stages("extract", 2) as shown:  # a bar on a terminal, a line per step otherwise (stderr)
        shown.step(f"reading {len(args.sources)} source(s)")
        result = extract(args.sources, study_names=args.study or None)
        imp = result.imported
        if result.table.is_empty():
            detail = "; ".join(str(p) for p in imp.all_problems) or "no trials in the sources"
            raise UserError(f"nothing could be read ({detail})")
        shown.step(f"writing {result.table.height} trials to {args.out}")
        paths = write_outputs(
            result.table,
            args.out,
            sources=result.sources,
            problems=imp.all_problems,
            notes=imp.all_notes,
            n_skipped=imp.n_skipped,
        )
    print(format_report(result))
    print(f"wrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths.values()))
    return 0


def _read_for_analysis(sources: list[str], studies: list[str]) -> tuple[Any, list[str]]:
    """The trial table from `extract`-readable sources and/or `extract` output folders (hpo_summary.parquet)."""
    import polars as pl

    from hpo_assets.analysis.summary_files import SUMMARY_PARQUET
    from hpo_assets.trials.extract import build_table, extract
    from hpo_assets.trials.schema import conform

    tables, raw, problems = [], [], []
    for src in sources:
        path = Path(src)
        summary = path / SUMMARY_PARQUET if path.is_dir() else path
        if summary.is_file() and summary.suffix == ".parquet":
            try:
                tables.append(conform(pl.read_parquet(summary)))
            except (OSError, pl.exceptions.PolarsError) as exc:
                problems.append(f"{summary}: not a trial table ({type(exc).__name__}: {exc})")
        else:
            raw.append(src)
    if raw:
        result = extract(raw, study_names=studies or None)
        problems += [str(p) for p in result.imported.all_problems]
        tables.append(result.table)
    table = build_table(tables)
    if table.is_empty():
        raise UserError(f"nothing could be read ({'; '.join(problems) or 'no trials in the sources'})")
    return table, problems


def _cmd_analyze(args: argparse.Namespace) -> int:
    from hpo_assets.search.progress import stages

    with stages("analyze", 2) as shown:
        shown.step(f"reading {len(args.sources)} source(s)")
        table, problems = _read_for_analysis(args.sources, args.study)
        shown.step(f"analysing {table.height} trials (coverage, importance, scaling, consistency, report)")
        return _analyze(args, table, problems)


def _analyze(args: argparse.Namespace, table: Any, problems: list[str]) -> int:
    from hpo_assets.analysis.campaign import analyze
    from hpo_assets.analysis.importance import ImportanceSettings

    for p in problems:
        print(f"  problem: {p}", file=sys.stderr)
    settings = (
        ImportanceSettings(fanova_bootstrap=20, fanova_shuffles=40, ped_bootstrap=50, ped_shuffles=100)
        if args.fast
        else ImportanceSettings()
    )
    root = Path(args.outputs) if args.outputs else None
    from hpo_assets.outputs import files_together, relocate_text

    out = Path(args.out)
    with files_together(out) as stage:  # the report folder is replaced as one set (outputs.py)
        staged = analyze(table, stage, outputs_root=root, settings=settings, workers=args.workers)
        relocate_text(stage, out, ["hpo_report.html", "hpo_report.md", "hpo_report.json"])
    files = {key: out / Path(path).relative_to(stage) for key, path in staged.items()}
    print(
        f"analysed {table.height} trials of {table['study'].n_unique()} studies; wrote {len(files)} files to {args.out}"
    )
    print(f"report: {files['hpo_report html']}")
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from hpo_assets.data.dataset import prepare_dataset
    from hpo_assets.data.features import FEATURE_COLUMNS, build_features
    from hpo_assets.data.market import default_market_path, load_market
    from hpo_assets.data.targets import add_labels, positive_rates
    from hpo_assets.settings import settings

    path = args.path or default_market_path()
    market = load_market(path)
    data_cfg = settings()["data"]
    horizons = args.horizon or list(data_cfg["horizons"])
    frame = add_labels(
        build_features(market), horizons, float(data_cfg["threshold"]), str(data_cfg["label_mode"])
    )
    print(f"{path}: {market.height} rows {market['date'].min()}..{market['date'].max()}, valid")
    print(
        f"features: {len(FEATURE_COLUMNS)} inputs x {frame.height} rows from {frame['date'].min()} "
        f"({market.height - frame.height} warm-up rows dropped)"
    )
    for h, rate in positive_rates(frame, horizons).items():
        s = prepare_dataset(frame, h, split_kind=args.split or None).split.summary()
        print(
            f"h{h}: positive rate {rate if rate is None else round(rate, 3)}; {s['kind']} split "
            f"train {s['n_train']} / val {s['n_val']} ({s['pos_val']} pos, {s['neg_val']} neg) / "
            f"test {s['n_test']}, purge gap {s['purge_gap']} rows"
        )
    return 0


def _cmd_studies(args: argparse.Namespace) -> int:
    import optuna

    from hpo_assets.locations import mask_password
    from hpo_assets.search.runner import study_counts
    from hpo_assets.search.storage import dashboard_command, find_studies, open_storage
    from hpo_assets.settings import storage_spec

    spec = storage_spec(args.storage or "")
    found, problems = find_studies(spec)
    for problem in problems:  # a damaged file is named; the other studies are still listed
        print(f"hpo-assets studies: error: {problem}", file=sys.stderr)
    if not found:
        print(f"no {'readable ' if problems else ''}studies in {mask_password(spec)}")
        return 1 if problems else 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name, source in found:
        study = optuna.load_study(study_name=name, storage=open_storage(source, name, create=False))
        c = study_counts(study)
        try:
            best: optuna.trial.FrozenTrial | None = study.best_trial
        except ValueError:  # no COMPLETE trial yet
            best = None
        print(
            f"{name}: {c['trials']} trials (complete {c['complete']}, pruned {c['pruned']}, failed {c['failed']}, "
            f"diverged {c['diverged']}, running {c['running']}), steered repeats {c['skipped_duplicates']}, "
            f"best {'-' if best is None else f'{best.value:.4f} (#{best.number})'}"
        )
        print(f"    {dashboard_command(source, name)}")
    return 1 if problems else 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    """optuna-dashboard over every study of the storage (all budgets x horizons), on one port."""
    from hpo_assets.locations import mask_password
    from hpo_assets.search.combined_storage import dashboard_storage
    from hpo_assets.settings import storage_spec

    try:
        import optuna_dashboard
    except ImportError:
        raise UserError(
            "optuna-dashboard is not installed: pip install 'hpo-assets[dashboard]' (make ui installs it)"
        ) from None
    spec = storage_spec(args.storage or "")
    storage, names, problems = dashboard_storage(spec)
    for problem in problems:
        print(f"hpo-assets dashboard: error: {problem}", file=sys.stderr)
    print(
        f"optuna-dashboard: {len(names)} studies of {mask_password(spec)} ({', '.join(names)}) "
        f"on http://{args.host}:{args.port}/",
        flush=True,
    )
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    """Predicted compute-hours of a backfill, before launching it."""
    from hpo_assets.locations import mask_password
    from hpo_assets.planning.plan import plan_partitions
    from hpo_assets.settings import storage_spec
    from hpo_assets.training.leases import visible_devices

    device = args.device or ("cuda" if visible_devices() else "cpu")
    made = plan_partitions(
        args.partitions,
        args.profile,
        storage_spec(args.storage or ""),
        device,
        probe=not args.no_probe,
        say=lambda line: print(line, file=sys.stderr),
    )
    plan, cfg = made.plan, made.settings
    print(
        f"plan: {len(made.targets)} partition(s), profile {args.profile or '(defaults)'} "
        f"({cfg.n_trials} trials x <= {cfg.max_epochs} epochs), device {device}, "
        f"storage {mask_password(made.storage)}"
    )
    rows = plan.rows()
    _print_table(list(rows[0]), [[str(v) for v in r.values()] for r in rows], indent="  ")
    cal = plan.calibration
    print(
        f"total: {plan.hours:.4g} compute-hours ({plan.hours * 3600:,.0f} s of {device} time, partitions run one per GPU)"
    )
    print(
        f"calibration: {cal.basis}: {cal.flops_per_s / 1e9:.3g} GFLOP/s effective, overhead {cal.overhead_s:.3g} s/epoch"
    )
    print(f"epochs: {plan.epochs.basis}")
    for note in plan.notes:
        print(f"note: {note}")
    return 0


BACKFILL_JOBS = {"demo": "study_demo_job", "full": "study_job"}  # the study jobs with their profile baked in


def _cmd_backfill(args: argparse.Namespace) -> int:
    """Any set of study partitions as one Dagster backfill: the plan's cost first, launched only with --yes."""
    import subprocess

    from hpo_assets import settings
    from hpo_assets.planning.plan import plan_targets

    home = settings.dagster_home() or str(settings.PROJECT_ROOT / ".dagster_home")  # the one `make ui` shows
    job = BACKFILL_JOBS.get(args.profile)
    if job is None:
        raise UserError(f"--profile {args.profile!r} has no study job; choose from {sorted(BACKFILL_JOBS)}")
    keys = [t.key for t in plan_targets(args.partitions)]
    _cmd_plan(args)
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "job",
        "backfill",
        "-w",
        str(settings.PROJECT_ROOT / "workspace.yaml"),
        "-j",
        job,
        "--partitions",
        ",".join(keys),
        "--noprompt",
    ]
    if not args.yes:
        print(f"not launched: add --yes to backfill {len(keys)} partition(s) of {job} into {home}")
        return 0
    print(f"launching a backfill of {job}: {', '.join(keys)} (the daemon of `make ui` runs it)", flush=True)
    done = subprocess.run(command, env={**os.environ, "DAGSTER_HOME": home}, check=False)
    return 0 if done.returncode == 0 else 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (argparse prints the whole usage first), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpo-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="materialize the main job on the bundled data (CPU, local storage)")
    demo.add_argument("--profile", default="demo", help="configuration profile: demo (default) or full")
    demo.add_argument(
        "--pool-wait",
        type=float,
        default=120.0,
        help="seconds a study waits for a gpu slot held by another live run before the demo stops (120)",
    )
    demo.set_defaults(func=_cmd_demo)

    stu = sub.add_parser(
        "study",
        help="run (or resume) one study partition, e.g. '2M|h1', in this process; key and config checked first",
    )
    stu.add_argument("key", help="partition key budget|horizon, e.g. '2M|h1'")
    stu.add_argument(
        "--profile", default="", help="configuration profile: demo or full (default: defaults.yaml)"
    )
    stu.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="an hpo_study config field"
    )
    stu.add_argument("--config-json", default="", help="hpo_study config fields as a JSON object")
    stu.add_argument(
        "--pool-wait", type=float, default=120.0, help="seconds to wait for a busy gpu pool (120)"
    )
    stu.set_defaults(func=_cmd_study)

    rec = sub.add_parser(
        "recover",
        help="free the pool slots of runs whose process is gone (killed runs); --run frees one run by hand",
    )
    rec.add_argument("--pool", action="append", default=[], help="only this pool (repeatable; default: all)")
    rec.add_argument("--run", default="", help="mark this run failed and free its slots, alive or not")
    rec.set_defaults(func=_cmd_recover)

    init = sub.add_parser(
        "init-instance", help="write DAGSTER_HOME/dagster.yaml (gpu pool sized to the GPUs found)"
    )
    init.add_argument("--home", default="", help="instance folder (default: $DAGSTER_HOME)")
    init.add_argument(
        "--postgres-url", default="", help="run/event storage on PostgreSQL (default: $HPO_ASSETS_PG_URL)"
    )
    init.add_argument(
        "--gpu-limit",
        type=int,
        default=None,
        help="steps in the gpu pool at once (default: kept if set, else $HPO_ASSETS_GPU_LIMIT or the GPUs found)",
    )
    init.set_defaults(func=_cmd_init_instance)

    space = sub.add_parser(
        "space", help="list a parameter budget's architectures with exact parameter counts"
    )
    space.add_argument("budget", help="parameter budget: 2M, 20M, 200M, 2B, 500K or a plain number")
    space.add_argument("--json", action="store_true", help="print JSON instead of a table")
    space.add_argument(
        "--tolerance", type=float, default=None, help="relative tolerance (default from budgets.yaml)"
    )
    space.add_argument(
        "--n-features", type=int, default=None, help="model inputs (default: model.n_features)"
    )
    space.add_argument("--context", type=int, default=None, help="window length (default: model.context)")
    space.add_argument("--patch-len", type=int, default=None, help="patch length (default: model.patch_len)")
    space.add_argument("--stride", type=int, default=None, help="patch stride (default: model.stride)")
    space.set_defaults(func=_cmd_space)

    ext = sub.add_parser(
        "extract", help="read studies (Optuna storage, export folders, per-trial JSON) into summary files"
    )
    ext.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="Optuna storage URL, .journal/.db file, study folder, or a folder of them",
    )
    ext.add_argument(
        "--out", required=True, help="folder for hpo_summary.*, hpo_full.json, diverged_analysis.*, README.md"
    )
    ext.add_argument(
        "--study", action="append", default=[], help="only this study of an Optuna storage (repeatable)"
    )
    ext.set_defaults(func=_cmd_extract)

    ana = sub.add_parser(
        "analyze",
        help="every analysis report (coverage, importance, scaling, consistency, HTML) of some studies",
    )
    ana.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="anything `extract` reads, or an `extract` output folder (hpo_summary.parquet)",
    )
    ana.add_argument("--out", required=True, help="folder for the reports (Markdown, JSON, CSV, PNG, HTML)")
    ana.add_argument(
        "--study", action="append", default=[], help="only this study of an Optuna storage (repeatable)"
    )
    ana.add_argument(
        "--outputs",
        default="",
        help="outputs root holding baselines/ and models/ (model cards) to compare with",
    )
    ana.add_argument(
        "--fast", action="store_true", help="fewer bootstrap/shuffle resamples for importance (a first look)"
    )
    ana.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes in all: N > 1 draws the figures in N - 1 helper processes while the statistics run (default 1)",
    )
    ana.set_defaults(func=_cmd_analyze)

    chk = sub.add_parser(
        "check-data", help="validate a daily OHLCV file and show its features, labels and splits"
    )
    chk.add_argument("path", nargs="?", default="", help="CSV or Parquet file (default: the bundled S&P 500)")
    chk.add_argument("--horizon", type=int, action="append", default=[], help="horizon in days (repeatable)")
    chk.add_argument(
        "--split", choices=["contiguous", "chunks"], default="", help="split kind (default: split.kind)"
    )
    chk.set_defaults(func=_cmd_check_data)

    pl_ = sub.add_parser(
        "plan", help="predicted compute-hours of a backfill of study partitions, before launching it"
    )
    pl_.add_argument("partitions", help="partition keys: '2M|h1,20M|h3', '2M|*', '*|h1' or 'all'")
    pl_.add_argument("--profile", default="", help="configuration profile: demo, full ('' = defaults)")
    pl_.add_argument(
        "--storage", default="", help="study storage to calibrate by and resume from (default: .hpo/)"
    )
    pl_.add_argument("--device", default="", help="cpu or cuda (default: cuda when a GPU is visible)")
    pl_.add_argument(
        "--no-probe",
        action="store_true",
        help="never train a probe epoch (fail when storage has no trials to calibrate by)",
    )
    pl_.set_defaults(func=_cmd_plan)

    bf = sub.add_parser(
        "backfill", help="backfill any set of study partitions (the plan's cost first; --yes launches it)"
    )
    bf.add_argument("partitions", help="partition keys: '2M|h1,20M|h3', '2M|*', '*|h1' or 'all'")
    bf.add_argument(
        "--profile", default="demo", choices=sorted(BACKFILL_JOBS), help="study_demo_job or study_job"
    )
    bf.add_argument("--storage", default="", help="study storage the plan calibrates by (default: .hpo/)")
    bf.add_argument("--device", default="", help="cpu or cuda, for the plan (default: cuda when visible)")
    bf.add_argument("--no-probe", action="store_true", help="plan without a probe epoch")
    bf.add_argument("--yes", action="store_true", help="launch the backfill after the plan")
    bf.set_defaults(func=_cmd_backfill)

    st = sub.add_parser(
        "studies", help="list the live studies in a storage with counts and optuna-dashboard commands"
    )
    st.add_argument("--storage", default="", help="journal folder or Optuna storage URL (default: .hpo/)")
    st.set_defaults(func=_cmd_studies)

    dash = sub.add_parser(
        "dashboard", help="optuna-dashboard over every study of a storage (compare budgets and horizons)"
    )
    dash.add_argument("--storage", default="", help="journal folder or Optuna storage URL (default: .hpo/)")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    dash.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dash.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `hpo-assets space 2B | head`: the reader left (before OSError, its base)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"hpo-assets {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: name it, no traceback
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"hpo-assets {args.command}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
