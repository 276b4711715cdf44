"""Beat's scheduler: django-celery-beat's DatabaseScheduler plus a heartbeat.

Beat calls tick() at least every 5 s (DatabaseScheduler's max interval), so a
heartbeat older than the probe's max age means beat is stuck, not idle.
"""

from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from orders_project.heartbeat import heartbeat_touch


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_touch()
        return float(super().tick(*args, **kwargs))
