"""`make dev-reset`: after a yes, stop whatever runs from .dev/ and delete it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from devstack import kafka, postgres, valkey
from devstack.dev import running_devstack
from devstack.output import step
from devstack.procs import process, stop_processes, sweep_leftovers


def confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:  # no terminal, nothing piped in: that is a no
        print()
        return False
    if not sys.stdin.isatty():
        print(answer)  # piped answers are not echoed
    return answer.strip().lower() in ("y", "yes")


def run(repo: Path, assume_yes: bool = False) -> int:
    home = (repo / ".dev").resolve()
    if not home.exists():
        step("nothing to reset: .dev/ does not exist")
        return 0
    question = f"Delete {home} (the dev PostgreSQL and Valkey data: orders, users, tokens)?"
    if not assume_yes and not confirm(question):
        step("left .dev/ as it was")
        return 0
    other = running_devstack(home)
    if other is not None:
        step(f"stopping the running `make dev` (pid {other}) ...")
        proc = process(other)
        if proc is not None:
            stop_processes([proc], timeout=60)
    postgres.stop(home / "postgres")
    valkey.stop(home / "valkey")
    kafka.stop_leftover(home / "kafka.pid")
    sweep_leftovers(home)
    shutil.rmtree(home)
    step(f"deleted {home}")
    return 0
