"""`make ui` / `make ui-stop`: the UI process behind a pid file, stoppable from a script.

A shell runs a background job with SIGINT ignored, and an ignored signal stays ignored across exec, so
`dg dev` started from a script (`make ui &`) never hears the SIGINT that Dagster turns SIGTERM into:
it ignored `kill`. `start` restores SIGINT's default, records its pid and execs the command (the pid
stays the same); `stop` sends SIGTERM to that pid and waits for the UI and its processes to end.

    python -m hpo_assets.ui_process start PIDFILE -- dg dev ...
    python -m hpo_assets.ui_process stop PIDFILE [--wait 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path


def running_pid(pid_file: Path) -> int | None:
    """The pid the file names if that process still runs the UI (a reused pid is not ours)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no such process (or no /proc: fall back to a signal probe)
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid
    return pid if any(Path(arg.decode(errors="replace")).name == "dg" for arg in cmdline) else None


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc; empty elsewhere)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = {int(k) for k in Path(f"/proc/{p}/task/{p}/children").read_text().split()}
        except OSError:
            kids = set()
        todo += sorted(kids - found)
        found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return state != "Z"  # a zombie has ended; its parent has not collected it yet


def start(pid_file: Path, command: list[str]) -> int:
    if not command:
        print("hpo-assets ui: error: no command to run after --", file=sys.stderr)
        return 2
    pid = running_pid(pid_file)
    if pid is not None:
        print(
            f"hpo-assets ui: error: a UI already runs as pid {pid} ({pid_file}); `make ui-stop` stops it",
            file=sys.stderr,
        )
        return 2
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # then Python in the new image installs its Ctrl-C handler
    print(f"UI pid {os.getpid()} in {pid_file} (stop: make ui-stop)", flush=True)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        pid_file.unlink(missing_ok=True)
        print(f"hpo-assets ui: error: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0  # not reached


def stop(pid_file: Path, wait_s: float) -> int:
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        print(f"no UI running ({pid_file} names no live dg process)")
        return 0
    spawned = descendants(pid)  # webserver, daemon, code servers: "stopped" means they ended too
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while left := [p for p in (pid, *sorted(spawned)) if _alive(p)]:
        if time.monotonic() >= deadline:
            print(
                f"hpo-assets ui-stop: error: pid(s) {left} still run {wait_s:.0f} s after SIGTERM to {pid} "
                "(a code server may still be serving a run: wait, or kill those pids)",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    print(f"UI pid {pid} stopped, with the {len(spawned)} processes it started")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpo_assets.ui_process")
    sub = parser.add_subparsers(dest="action", required=True)
    st = sub.add_parser("start")
    st.add_argument("pid_file", type=Path)
    st.add_argument("command", nargs=argparse.REMAINDER)
    sp = sub.add_parser("stop")
    sp.add_argument("pid_file", type=Path)
    sp.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.action == "start":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return start(args.pid_file, command)
    return stop(args.pid_file, args.wait)


if __name__ == "__main__":
    sys.exit(main())
