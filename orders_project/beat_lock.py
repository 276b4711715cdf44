"""At most one Celery beat: a PostgreSQL advisory lock that the scheduling beat holds.

The Deployment's `Recreate` strategy stops the old beat before an upgrade starts the
new one, but it cannot promise a single beat: a node cut off from the control plane
keeps its beat running while Kubernetes starts a replacement elsewhere, and so does
a beat started by hand. The lock can. A beat schedules only while it holds a
session-level advisory lock on a connection of its own; a second beat waits for it
(touching its heartbeat: it is healthy, on standby) and takes over within a second
of the first one's session ending, whether its process stopped or PostgreSQL
dropped the connection of a node it can no longer reach.

The order of the timeouts keeps two from overlapping: the holder checks its lock
connection on every tick (at least every 5 s) and stops scheduling when the check
fails, which TCP_USER_TIMEOUT makes happen within 10 s of the network going;
PostgreSQL drops the holder's session (and lock) only after its keepalives go
unanswered for 25 s. A beat that lost its lock does not exit: it waits for the lock
like any standby beat (a PostgreSQL restart or failover ends every session, and
exiting would turn each one into a crash loop of the beat pod), and schedules again
only once it holds the lock again, on a new session.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connections

logger = logging.getLogger(__name__)

# The key of pg_try_advisory_lock(bigint): any constant no other code in this database
# uses ("ordersBe" in ASCII). Advisory locks are per database, so two deployments on
# two databases never wait on each other.
BEAT_LOCK_KEY = 0x6F72646572734265
# How often a waiting beat asks for the lock again (and touches its heartbeat).
WAIT_INTERVAL_SECONDS = 1.0
# Server side: drop a session whose client stops answering keepalives after 10 + 3 x 5 s.
_SERVER_KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
# Client side: a query whose data goes unacknowledged for 10 s fails (libpq, in ms).
_CLIENT_TCP_USER_TIMEOUT_MS = 10_000


def _connection_params() -> dict[str, Any]:
    """The database settings of the `default` alias, as psycopg.connect() arguments, with keepalives."""
    params = connections["default"].get_connection_params()
    # Django's cursor class and adapters are for its own connections; this one runs two statements.
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["options"] = f"{params.get('options', '')} {_SERVER_KEEPALIVES}".strip()
    params["keepalives"] = 1
    params["tcp_user_timeout"] = _CLIENT_TCP_USER_TIMEOUT_MS
    return params


class BeatLock:
    """The advisory lock of the one scheduling beat, on a connection of its own (Django's may be
    closed and reopened between ticks, which would release a session lock)."""

    def __init__(self) -> None:
        self._connection: psycopg.Connection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None

    def hold(self, *, while_waiting: Callable[[], None]) -> None:
        """Return once this process holds the lock, calling `while_waiting` about every second
        until then. A held lock whose connection has failed counts as lost: another beat
        may be scheduling now, so this one waits to take the lock again."""
        if self._connection is not None:
            try:
                self._connection.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                self.release()
                logger.warning(
                    "beat lock lost (its PostgreSQL connection failed: %s); not scheduling until it is taken again",
                    exc,
                )
        announced = False
        while True:
            connection = self._try_acquire()
            if connection is not None:
                self._connection = connection
                logger.info("beat lock acquired: this beat schedules the periodic tasks")
                return
            if not announced:
                logger.info("another beat holds the beat lock (PostgreSQL advisory lock); waiting to take over")
                announced = True
            while_waiting()
            time.sleep(WAIT_INTERVAL_SECONDS)

    def _try_acquire(self) -> psycopg.Connection[Any] | None:
        connection = None
        try:
            connection = psycopg.connect(**_connection_params(), autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()
            if row is not None and row[0]:
                return connection
        except psycopg.OperationalError as exc:
            logger.warning("cannot take the beat lock: PostgreSQL unreachable (%s); retrying", exc)
        if connection is not None:
            connection.close()
        return None

    def release(self) -> None:
        """Let another beat take over: closing the session releases its advisory locks."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()
