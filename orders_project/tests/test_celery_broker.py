"""The worker's broker connection survives a Redis restart (found by `make chaos`, scenario 4).

Celery 5.7 handles a lost broker connection by collecting the connection (which
drops its client) and then closing it; with kombu 5.7's Redis transport, closing
a channel that still holds unacknowledged messages (acks_late: every running
task) asks the dropped client for its address and raises AttributeError. Celery
treats that as "Unrecoverable error" and the worker exits: every Redis restart
stopped the relay until the pods were restarted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from devstack.procs import LOOPBACK
from devstack.tcp_proxy import TcpProxy
from orders_project.celery import app


@pytest.fixture
def broker_proxy() -> Iterator[TcpProxy]:
    """A TCP proxy in front of the test Redis, to take the broker away mid-connection."""
    url = urlparse(settings.CELERY_BROKER_URL)
    proxy = TcpProxy((url.hostname or LOOPBACK, url.port or 6379))
    yield proxy
    proxy.cut()


def _connection_with_unacked_message(proxy: TcpProxy) -> Connection:
    url = urlparse(settings.CELERY_BROKER_URL)
    through_proxy = url._replace(netloc=f"{url.username or ''}@{proxy.address}".lstrip("@"))
    connection = app.connection_for_write(through_proxy.geturl())
    channel = connection.default_channel
    queue = Queue(f"chaos-regression-{uuid.uuid4().hex}", Exchange("chaos-regression"), "k")
    producer = connection.Producer(channel)
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key="k", declare=[queue])
    message = queue(channel).get(no_ack=False)  # reserved, not acknowledged: a running acks_late task
    assert message is not None
    return connection


def test_the_worker_uses_the_transport_that_survives_a_lost_connection() -> None:
    connection = app.connection_for_write()
    assert type(connection.transport).__module__ == "orders_project.celery_broker"


def test_closing_a_lost_connection_with_unacked_messages_does_not_raise(broker_proxy: TcpProxy) -> None:
    # Given a connection whose channel holds an unacknowledged message
    connection = _connection_with_unacked_message(broker_proxy)
    # When Redis goes away and Celery handles the lost connection: collect (errors ignored), then close
    broker_proxy.cut()
    # The state the worker was in (its log): the transport dropped its client (collect ->
    # _do_close_transport) while the channel was not closed yet (its close timed out).
    connection._do_close_transport()
    # Then closing raises nothing (before: AttributeError, and the worker exited)
    connection.close()
