"""The Celery app. Configuration comes from Django settings (CELERY_* names),
the beat schedule included (CELERY_BEAT_SCHEDULE): django-celery-beat's
database scheduler installs it into its tables when beat starts (update or
create, so starting beat twice changes nothing), where staff see it in the admin."""

import os
from functools import partial
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")

app = Celery("orders_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Touch HEARTBEAT_FILE from the worker's event-loop timer: a worker whose
    loop is stuck (not only a dead one) stops touching it and fails its probe."""

    requires = ("celery.worker.components:Timer",)

    def start(self, worker: Any) -> None:
        # Imported here, not at the top: `python -m orders_project.heartbeat` (the probe)
        # imports this package first and must not find its own module already loaded.
        from orders_project.heartbeat import TOUCH_INTERVAL_SECONDS, heartbeat_touch

        heartbeat_touch(force=True)
        self.timer_ref = worker.timer.call_repeatedly(TOUCH_INTERVAL_SECONDS, partial(heartbeat_touch, force=True))

    def stop(self, worker: Any) -> None:
        self.timer_ref.cancel()


app.steps["worker"].add(HeartbeatStep)
