"""Progress lines for the dev stack commands."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - _START


def step(message: str) -> None:
    """One progress line, with the seconds since the command started."""
    print(f"devstack {elapsed():5.1f}s | {message}", flush=True)


def error(message: str) -> None:
    print(f"devstack: error: {message}", file=sys.stderr, flush=True)
