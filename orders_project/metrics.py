"""Serving /metrics on a port of its own, for every process kind (docs/observability.md).

/metrics is not served on the public port (8000): each process kind answers it on
METRICS_PORT (default 9100), which the chart opens to the monitoring namespace only.

- web (gunicorn): the master serves it (gunicorn_conf.when_ready); the workers write
  their metrics to PROMETHEUS_MULTIPROC_DIR and the master adds the files up.
- worker (Celery prefork): the main process serves it (worker_init, before the pool
  forks); the pool processes run the tasks and write to PROMETHEUS_MULTIPROC_DIR.
  The worker also exports the gauges that need a query (outbox, lifecycle), cached.
- beat, consumer: one process each, which serves its own registry.

The rule: several processes share a directory that their parent empties at start,
before any child writes to it; one process serves its own registry.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.exceptions import ImproperlyConfigured

from orders_project.env import env_int

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

logger = logging.getLogger(__name__)

METRICS_PORT_DEFAULT = 9100
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A gauge that needs a query is computed at most this often per process, however
# often and by however many scrapers /metrics is read: a scrape cannot load the database.
QUERY_GAUGE_MAX_AGE_SECONDS = 5.0


def multiprocess_dir_ensure() -> None:
    """Create PROMETHEUS_MULTIPROC_DIR if it is set and missing (a fresh emptyDir has no
    /tmp/prometheus): prometheus_client opens a file there as soon as a metric without
    labels is created, in any process of the project, and fails if the folder is missing."""
    path = multiprocess_dir()
    if path is not None:
        os.makedirs(path, exist_ok=True)


class MetricsPortTaken(ImproperlyConfigured):
    """METRICS_PORT is in use: the process stops instead of running unobserved."""


def metrics_port() -> int:
    return env_int("METRICS_PORT", METRICS_PORT_DEFAULT, minimum=1, maximum=65535)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def multiprocess_dir_reset(path: str) -> None:
    """Create the directory, or empty it of a previous run's files (its counters would add up
    with ours, and its live gauges would never go away). Call it before any child writes."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


# Held while a scrape reads the folder and while an exited process's files are folded
# into the archive (both in gunicorn's master), so a scrape never sees a count twice or not at all.
_FOLDER_LOCK = threading.Lock()
# Files of processes that exited and may have counted something: kept in one file per type.
_ARCHIVED_TYPES = ("counter", "histogram", "summary")


def multiprocess_registry() -> CollectorRegistry:
    """A registry that adds up the files of every process writing to PROMETHEUS_MULTIPROC_DIR."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    class LockedCollector(MultiProcessCollector):
        def collect(self) -> Iterable[Metric]:
            with _FOLDER_LOCK:
                return list(super().collect())

    registry = CollectorRegistry()
    LockedCollector(registry)
    return registry


def multiprocess_process_exited(pid: int) -> None:
    """Bookkeeping for an exited process (gunicorn's child_exit): its live gauges stop counting,
    and its counters and histograms move into `<type>_archive.db`. Without that, every worker
    that max_requests replaces would leave files behind (thousands a day under load), and
    every scrape would read them all."""
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    path = multiprocess_dir()
    if path is None:
        return
    multiprocess.mark_process_dead(pid, path)
    with _FOLDER_LOCK:
        for kind in _ARCHIVED_TYPES:
            exited = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(exited):
                continue
            archive = os.path.join(path, f"{kind}_archive.db")
            merged = multiprocess.MultiProcessCollector.merge(
                [f for f in (archive, exited) if os.path.exists(f)], accumulate=False
            )
            partial = os.path.join(path, f"{kind}_archive.partial")  # not *.db: no scrape reads it
            if os.path.exists(partial):
                os.remove(partial)  # left by a master that died mid-write: MmapedDict would keep its values
            store = MmapedDict(partial)
            try:
                for metric in merged:
                    for sample in metric.samples:
                        labels = dict(sample.labels)
                        key = mmap_key(
                            metric.name, sample.name, list(labels), list(labels.values()), metric.documentation
                        )
                        store.write_value(key, sample.value, 0.0)
            finally:
                store.close()
            os.replace(partial, archive)
            os.remove(exited)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape (every 30 s, per pod) says nothing


def _closing_db_connections(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Each scrape runs in a thread of its own: a query gauge's database connection must not outlive it."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        finally:
            from django.db import connections

            connections.close_all()

    return wrapped


def metrics_serve(kind: str, *, registry: CollectorRegistry | None = None, collectors: Iterable[Collector] = ()) -> int:
    """Serve `registry` (default: this process's own) on METRICS_PORT in a daemon thread; returns the port.

    `collectors` are added to it. Raises MetricsPortTaken naming the variable when the port is in use.
    """
    from prometheus_client import REGISTRY, make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    port = metrics_port()
    registry = registry or REGISTRY
    for collector in collectors:
        registry.register(collector)
    try:
        server = make_server(
            "0.0.0.0", port, _closing_db_connections(make_wsgi_app(registry)), ThreadingWSGIServer, _QuietHandler
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MetricsPortTaken(
                f"METRICS_PORT={port} is already in use: the {kind} process cannot serve /metrics there. "
                "Set METRICS_PORT to a free port."
            ) from None
        raise ImproperlyConfigured(f"METRICS_PORT={port}: cannot listen ({exc}).") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("Serving /metrics of the %s on port %d", kind, port)
    return port


class CachedQueryCollector:
    """A collector whose metrics come from a query, computed at most every `max_age` seconds.

    Concurrent scrapes wait for one computation instead of each running it. A failed
    query (database down) yields nothing this time and is tried again next scrape.
    """

    def __init__(
        self,
        compute: Callable[[], list[Metric]],
        *,
        describe: Callable[[], list[Metric]],
        max_age: float = QUERY_GAUGE_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._describe = describe
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._metrics: list[Metric] = []
        self._computed_at: float | None = None

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() and query at start-up.
        yield from self._describe()

    def collect(self) -> Iterator[Metric]:
        from django.db import DatabaseError

        with self._lock:
            now = self._clock()
            if self._computed_at is None or now - self._computed_at >= self._max_age:
                try:
                    self._metrics = self._compute()
                except DatabaseError:
                    logger.warning("Query gauges unavailable: database error", exc_info=True)
                    self._metrics = []
                self._computed_at = now
            metrics = list(self._metrics)
        yield from metrics


# At import: this module is imported with the project package (orders_project/__init__.py
# -> celery.py -> celery_metrics.py), before Django sets up and creates any metric.
multiprocess_dir_ensure()
