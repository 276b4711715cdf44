"""Metrics of the Celery processes: /metrics of the worker and of beat, and tasks in flight.

Connected by orders_project/celery.py. Why the worker uses the multiprocess directory:
with the prefork pool (the chart's) the tasks run in pool processes, each with its
own memory, while only the main process can serve a port that outlives them. The
pool processes write their metrics to PROMETHEUS_MULTIPROC_DIR and the main process
adds the files up at each scrape. The main process empties the directory in
worker_init, before the pool forks (files it opened while Django set up are dropped:
it runs no task, so they hold nothing). A solo or threads pool is one process and
serves its own registry.
"""

import os
from typing import Any

from celery.signals import beat_init, task_postrun, task_prerun, worker_init, worker_process_shutdown
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import Gauge

from orders_project.metrics import metrics_serve, multiprocess_dir, multiprocess_dir_reset, multiprocess_registry

background_tasks_running = Gauge(
    "background_tasks_running",
    "Celery tasks executing now, by task name",
    ["task_name"],
    # Summed over the live pool processes; a pool process that exits takes its share along.
    multiprocess_mode="livesum",
)


def _uses_pool_processes(worker: Any) -> bool:
    pool = worker.pool_cls or worker.app.conf.worker_pool
    return "prefork" in str(pool) or "processes" in str(pool)


@worker_init.connect
def _worker_metrics_serve(sender: Any, **kwargs: Any) -> None:
    # The gauges that need a query are exported here only (not by web, beat or the
    # consumer): the worker runs the relay and the lifecycle whose backlog they show,
    # and web pods scale with traffic, so they would multiply the queries.
    from orders.metrics import lifecycle_collector
    from orders_project.xmin_horizon import xmin_horizon_collector
    from outbox.metrics import outbox_collector, outbox_storage_collector

    try:
        registry = None
        if _uses_pool_processes(sender):
            path = multiprocess_dir()
            if path is None:
                raise ImproperlyConfigured(
                    "Environment variable PROMETHEUS_MULTIPROC_DIR is required by the prefork worker: its pool "
                    "processes run the tasks, and their metrics reach /metrics only through that directory "
                    "(an empty writable one, e.g. /tmp/prometheus)."
                )
            multiprocess_dir_reset(path)
            registry = multiprocess_registry()
        collectors = [outbox_collector(), outbox_storage_collector(), xmin_horizon_collector(), lifecycle_collector()]
        metrics_serve("worker", registry=registry, collectors=collectors)
    except ImproperlyConfigured as exc:
        # SystemExit, not an exception: Celery logs and ignores a failing signal receiver.
        raise SystemExit(f"celery worker: {exc}") from None


@beat_init.connect
def _beat_metrics_serve(sender: Any, **kwargs: Any) -> None:
    try:
        metrics_serve("beat")
    except ImproperlyConfigured as exc:
        raise SystemExit(f"celery beat: {exc}") from None


@task_prerun.connect
def _task_started(task: Any = None, **kwargs: Any) -> None:
    if task is not None:
        background_tasks_running.labels(task_name=task.name).inc()


@task_postrun.connect
def _task_finished(task: Any = None, **kwargs: Any) -> None:
    if task is not None:
        background_tasks_running.labels(task_name=task.name).dec()


@worker_process_shutdown.connect
def _pool_process_metrics_release(**kwargs: Any) -> None:
    # A replaced pool process's live gauges must stop counting (its counters stay).
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
