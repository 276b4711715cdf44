"""Heartbeat files: liveness for the processes that serve no HTTP.

The Celery worker, beat and the user-event consumer each touch the file named
by HEARTBEAT_FILE from their main loop (the worker from its event loop's
timer, beat on every scheduler tick, the consumer on every poll). A process
that is alive but stuck stops touching it, so the probe

    python -m orders_project.heartbeat /tmp/heartbeat --max-age 60

fails and Kubernetes restarts it. A missing HEARTBEAT_FILE turns it off
(`make dev`, tests). The probe imports no Django: it runs every few seconds
and must cost milliseconds, not a settings import.
"""

import argparse
import os
import sys
import time
from pathlib import Path

# Touching more often than this only costs syscalls: the probe's max age is
# tens of seconds.
TOUCH_INTERVAL_SECONDS = 5.0

_last_touch = 0.0


def heartbeat_touch(*, force: bool = False) -> None:
    """Mark this process alive now, at most every TOUCH_INTERVAL_SECONDS. No-op without HEARTBEAT_FILE."""
    global _last_touch
    path = os.environ.get("HEARTBEAT_FILE")
    now = time.monotonic()
    if not path or (not force and now - _last_touch < TOUCH_INTERVAL_SECONDS):
        return
    Path(path).touch()
    _last_touch = now


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the file was last touched, or None if it does not exist."""
    try:
        return max(time.time() - path.stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 if the heartbeat file is fresh, 1 if stale or missing.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--max-age", type=float, default=60.0, help="Seconds (default 60).")
    args = parser.parse_args(argv)
    age = heartbeat_age(args.path)
    if age is None:
        print(f"no heartbeat at {args.path}", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"heartbeat {age:.0f}s old (max {args.max_age:.0f}s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
