"""Beat's scheduler: django-celery-beat's DatabaseScheduler, a heartbeat, and the beat lock.

Beat calls tick() at least every 5 s (DatabaseScheduler's max interval), so a
heartbeat older than the probe's max age means beat is stuck, not idle. The
first tick waits for the beat lock (orders_project/beat_lock.py), every later
one checks it is still held: only the beat holding it sends periodic tasks.
The wait is in tick(), not in __init__: beat's SIGTERM handler closes the
scheduler, so a waiting beat must already have one to stop cleanly.

Celery's own SIGTERM/SIGINT handler saves the schedule inside the handler, that is
in the middle of whatever the main thread was doing. When that was a database call,
the save asks for the same psycopg connection, whose lock the interrupted call
holds, and beat hangs until the kubelet (or a test) kills it. Here the handler only
raises SystemExit; the call unwinds and releases its connection, and beat's own
`finally` saves the schedule and closes the scheduler, outside any handler.
"""

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.db import DatabaseError
from django_celery_beat.schedulers import DatabaseScheduler

from orders_project.beat_lock import BeatLock
from orders_project.heartbeat import heartbeat_touch

logger = logging.getLogger(__name__)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit()


class HeartbeatDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.beat_lock = BeatLock()
        super().__init__(*args, **kwargs)
        # beat makes its scheduler after installing Celery's handler, so this one wins
        # (a beat embedded in a worker runs off the main thread and keeps Celery's).
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        heartbeat_touch()
        self.beat_lock.hold(while_waiting=heartbeat_touch)
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        try:
            super().close()
        except DatabaseError as exc:
            # The stop may have cut a database call short, leaving its connection unusable;
            # the schedule's last run times are then not saved (beat runs each entry again
            # at most once more), and the lock is released all the same.
            logger.warning("beat: schedule not saved on stop (%s)", exc)
        finally:
            self.beat_lock.release()
