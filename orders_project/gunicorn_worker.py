"""The web process's worker: gunicorn's gthread worker that leaves a new connection to a
sibling holding fewer.

gunicorn's workers all wait on one listening socket, and a new connection goes to
whichever worker's accept() runs first. A worker already running wins those races, so a
burst of keep-alive connections (a load balancer's upstream pool, wrk) can land on one
worker while the other idles; the pod then serves on one core of two, at half its rate,
for as long as those connections live. Measured with gunicorn's own gthread worker, 2 x 4:
16 connections opened at once split 16/0 or 15/1 in 11 bursts of 30; with this one, never
beyond 11/5 in 60 (docs/performance.md).

So a worker that already holds `threads` connections or more waits before it accepts: one
millisecond for each `threads` connections it holds, at most MAX_ACCEPT_DELAY. Every
worker is woken by the same connection, so the one holding fewest takes it (the way
nginx's accept_disabled backs a full worker off). The waiting worker looks at the socket
every WAIT_SLICE and goes back to its loop as soon as nothing waits there any more, so
a connection a sibling took costs it a fraction of a millisecond, not the whole wait. A
worker holding fewer than `threads` accepts at once, as gthread does, and a lone worker
never waits.
"""

import select
import time
from typing import Protocol

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]  # gunicorn ships no type hints

ACCEPT_DELAY_PER_THREADS_HELD = 0.001
MAX_ACCEPT_DELAY = 0.005
WAIT_SLICE = 0.0002


def accept_delay(held: int, threads: int) -> float:
    """Seconds a worker holding `held` connections waits before accepting another."""
    return min(held // threads * ACCEPT_DELAY_PER_THREADS_HELD, MAX_ACCEPT_DELAY)


class Listener(Protocol):
    """A listening socket: a plain one, or gunicorn's wrapper around one."""

    def fileno(self) -> int: ...


def still_waiting_after(listener: Listener, delay: float) -> bool:
    """Wait up to `delay` seconds for a sibling to accept the connection waiting on `listener`:
    False as soon as none waits there any more, True if one still does after `delay`."""
    waiting = select.poll()
    waiting.register(listener, select.POLLIN)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        time.sleep(WAIT_SLICE)
        if not waiting.poll(0):
            return False
    return True


class BalancedThreadWorker(ThreadWorker):
    def accept(self, listener: Listener) -> None:
        if self.cfg.workers > 1:
            delay = accept_delay(self.nr_conns, self.cfg.threads)
            # The wait is in the worker's event loop, not in a request's thread: its requests
            # in flight go on, only accepting and handing kept-alive connections to threads
            # pause, and only while a connection is waiting.
            if delay and not still_waiting_after(listener, delay):
                return  # a sibling took it; the loop wakes this worker for the next one
        super().accept(listener)
