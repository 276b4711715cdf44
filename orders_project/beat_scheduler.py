"""Beat's scheduler: django-celery-beat's DatabaseScheduler, a heartbeat, and the beat lock.

Beat calls tick() at least every 5 s (DatabaseScheduler's max interval), so a
heartbeat older than the probe's max age means beat is stuck, not idle. The
first tick waits for the beat lock (orders_project/beat_lock.py), every later
one checks it is still held: only the beat holding it sends periodic tasks.
The wait is in tick(), not in __init__: beat's SIGTERM handler closes the
scheduler, so a waiting beat must already have one to stop cleanly.
"""

from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler

from orders_project.beat_lock import BeatLock
from orders_project.heartbeat import heartbeat_touch


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.beat_lock = BeatLock()
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_touch()
        self.beat_lock.hold(while_waiting=heartbeat_touch)
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.beat_lock.release()
