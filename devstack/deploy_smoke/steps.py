"""deploy-smoke's steps: each timed and printed, a failure that names the logs to show."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path


class SmokeFailed(Exception):
    """A step failed; the message says which and why, `logs` which process logs to show."""

    def __init__(self, message: str, logs: list[Path] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


_START = time.monotonic()
_TIMINGS: list[tuple[str, float]] = []


def elapsed() -> float:
    """Seconds since this run began (the time every line printed starts with)."""
    return time.monotonic() - _START


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    began = time.monotonic()
    print(f"deploy-smoke {began - _START:5.1f}s | {name} ...", flush=True)
    try:
        yield
    except BaseException:
        _TIMINGS.append((f"{name}: FAILED", time.monotonic() - began))
        raise
    seconds = time.monotonic() - began
    _TIMINGS.append((name, seconds))
    print(f"deploy-smoke {time.monotonic() - _START:5.1f}s | {name}: done in {seconds:.1f}s", flush=True)


def note(message: str) -> None:
    print(f"deploy-smoke {time.monotonic() - _START:5.1f}s |   {message}", flush=True)


def print_timings(outcome: str) -> None:
    print("\n=== deploy-smoke timings ===")
    for name, seconds in _TIMINGS:
        print(f"  {seconds:6.1f}s  {name}")
    print(f"  {elapsed():6.1f}s  total: {outcome}", flush=True)
