"""`hpo-assets` console script: one subcommand per user task; each calls the library or the Dagster layer."""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from hpo_assets.demo import run_demo

    return run_demo(profile=args.profile)


def _cmd_init_instance(args: argparse.Namespace) -> int:
    import os

    from hpo_assets.defs.instance import ensure_instance

    home = args.home or os.environ.get("DAGSTER_HOME")
    if not home:
        raise UserError("set DAGSTER_HOME or pass --home: the folder of the Dagster instance")
    path = ensure_instance(home, postgres_url=args.postgres_url or os.environ.get("HPO_ASSETS_PG_URL"))
    print(f"Dagster instance config: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpo-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="materialize the main job on the bundled data (CPU, local storage)")
    demo.add_argument("--profile", default="demo", help="configuration profile: demo (default) or full")
    demo.set_defaults(func=_cmd_demo)

    init = sub.add_parser("init-instance", help="write DAGSTER_HOME/dagster.yaml (gpu pool sized to the GPUs found)")
    init.add_argument("--home", default="", help="instance folder (default: $DAGSTER_HOME)")
    init.add_argument("--postgres-url", default="", help="run/event storage on PostgreSQL (default: $HPO_ASSETS_PG_URL)")
    init.set_defaults(func=_cmd_init_instance)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"hpo-assets {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
