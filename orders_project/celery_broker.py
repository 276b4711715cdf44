"""Celery's Redis broker transport, with one fix: a worker survives a Redis restart.

When the broker connection is lost, Celery 5.7 collects the connection (which
sets the transport's `client` to None) and then closes it. Closing a channel
that holds unacknowledged messages (with acks_late, every task in progress)
restores them, which builds a Redis client from `transport.client` and raised
AttributeError ('NoneType' object has no attribute 'hostname'). That is not a
connection error, so Celery called it "Unrecoverable error" and the worker
exited: every Redis restart stopped every worker (found by `make chaos`,
scenario 4; test: orders_project/tests/test_celery_broker.py).

Here a channel remembers the connection details it was made with and uses them
when the transport has already dropped its own. The restore then either works
(Redis is back) or fails with a connection error, which Celery handles by
reconnecting, as it does for any other lost connection.
"""

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._conninfo = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport.client is not None:
            return super()._connparams(asynchronous)  # type: ignore[misc]  # kombu is untyped here
        transport.client = self._conninfo
        try:
            return super()._connparams(asynchronous)  # type: ignore[misc]  # kombu is untyped here
        finally:
            transport.client = None


class Transport(redis.Transport):
    Channel = Channel
