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
nginx's accept_disabled backs a full worker off). A worker holding fewer than `threads`
accepts at once, as gthread does, and a lone worker never waits.
"""

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]  # gunicorn ships no type hints

ACCEPT_DELAY_PER_THREADS_HELD = 0.001
MAX_ACCEPT_DELAY = 0.005


def accept_delay(held: int, threads: int) -> float:
    """Seconds a worker holding `held` connections waits before accepting another."""
    return min(held // threads * ACCEPT_DELAY_PER_THREADS_HELD, MAX_ACCEPT_DELAY)


class BalancedThreadWorker(ThreadWorker):
    def accept(self, listener: Any) -> None:
        if self.cfg.workers > 1:
            delay = accept_delay(self.nr_conns, self.cfg.threads)
            if delay:
                # The wait is in the worker's event loop, not in a request's thread: its
                # requests in flight go on, only accepting and handing kept-alive
                # connections to threads pause, and only while a connection is waiting.
                time.sleep(delay)
        super().accept(listener)
