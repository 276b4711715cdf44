"""Heartbeat files: liveness for the processes that serve no HTTP.

The Celery worker, beat and the user-event consumer each touch the file named
by HEARTBEAT_FILE from their main loop (the worker from its event loop's
timer, beat on every scheduler tick, the consumer on every poll). A process
that is alive but stuck stops touching it, so the probe
(orders_project/heartbeat_probe.py, run by path and importing nothing of the
service) fails and Kubernetes restarts it. A missing HEARTBEAT_FILE turns it
off (`make dev`, tests).
"""

import os
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
