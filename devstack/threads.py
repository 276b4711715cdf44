"""Run functions in parallel threads, each with its own database connection.

One home for what the concurrency tests and the benchmarks both need: start
together at a barrier, close every thread's connection at the end (a thread
keeps its PostgreSQL connection open otherwise), re-raise the first error.
"""

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections

DEFAULT_TIMEOUT_SECONDS = 120.0


def run_in_threads(
    functions: Iterable[Callable[[], Any]], *, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> tuple[list[Any], float]:
    """Run each function in its own thread, all released at once.

    Returns their results in order and the seconds from release to the last
    one finishing. Re-raises the first error of any thread; raises
    TimeoutError if one is still running after `timeout`.
    """
    functions = list(functions)
    barrier = threading.Barrier(len(functions) + 1, timeout=timeout)
    results: list[Any] = [None] * len(functions)
    errors: list[BaseException] = []

    def run(index: int, function: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = function()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, f), name=f"parallel-{i}") for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    deadline = started + timeout
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    elapsed = time.monotonic() - started
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise TimeoutError(f"threads still running after {timeout}s: {stuck}")
    if errors:
        raise errors[0]
    return results, elapsed
