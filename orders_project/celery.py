"""The Celery app. Configuration comes from Django settings (CELERY_* names),
the beat schedule included (CELERY_BEAT_SCHEDULE): django-celery-beat's
database scheduler installs it into its tables when beat starts (update or
create, so starting beat twice changes nothing), where staff see it in the admin."""

import os
from functools import partial
from typing import Any

from celery import Celery, bootsteps
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown

# Connects the receivers that serve /metrics of the worker and beat and count tasks in flight.
from orders_project import celery_metrics  # noqa: F401
from orders_project.heartbeat import TOUCH_INTERVAL_SECONDS, heartbeat_touch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")

app = Celery("orders_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Touch HEARTBEAT_FILE from the worker's event-loop timer: a worker whose
    loop is stuck (not only a dead one) stops touching it and fails its probe."""

    requires = ("celery.worker.components:Timer",)

    def start(self, worker: Any) -> None:
        heartbeat_touch(force=True)
        self.timer_ref = worker.timer.call_repeatedly(TOUCH_INTERVAL_SECONDS, partial(heartbeat_touch, force=True))

    def stop(self, worker: Any) -> None:
        self.timer_ref.cancel()


app.steps["worker"].add(HeartbeatStep)


@setup_logging.connect
def _logging_from_django(**kwargs: Any) -> None:
    """Worker and beat log as every process does (orders_project/logs.py: JSON or text, with
    trace ids): settings.LOGGING is applied here, and a receiver of this signal keeps Celery
    from installing its own handlers and format on top."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@worker_process_init.connect
def _tracing_in_pool_process(**kwargs: Any) -> None:
    # Each prefork pool process traces on its own (exporter thread and connection are
    # per process); a no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    from orders_project.tracing import tracing_setup

    tracing_setup("worker")


@worker_process_shutdown.connect
def _tracing_flush(**kwargs: Any) -> None:
    from orders_project.tracing import tracing_flush

    tracing_flush()
