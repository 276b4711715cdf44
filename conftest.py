"""Project-wide pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from orders_project.tests.tcp_proxy import TcpProxy

# --- servers ---
# PostgreSQL and Redis come from the environment (`make test` starts embedded ones
# when it names none). Kafka is started here, once per session, only when a test asks.


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ "host:port" of a Kafka broker for this session; settings.KAFKA_BOOTSTRAP_SERVERS points at it.

    Uses TEST_KAFKA_BOOTSTRAP_SERVERS, else KAFKA_BOOTSTRAP_SERVERS when it is explicitly
    set in the environment (settings has a default for it, so settings are not asked),
    else starts a Tansu broker on a free loopback port.
    """
    from django.conf import settings

    from devstack import kafka
    from devstack.environment import named
    from devstack.procs import free_port

    given = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or (
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] if named("kafka") else None
    )
    server = None
    if given:
        address = given.strip()
    else:
        server = kafka.start(free_port(), log_path=tmp_path_factory.mktemp("kafka") / "tansu.log")
        address = server.address
    previous = settings.KAFKA_BOOTSTRAP_SERVERS
    settings.KAFKA_BOOTSTRAP_SERVERS = [part.strip() for part in address.split(",") if part.strip()]
    try:
        yield address
    finally:
        settings.KAFKA_BOOTSTRAP_SERVERS = previous
        if server is not None:
            server.stop()


@dataclass
class ProxiedKafka:
    """A Tansu broker of the test's own that clients reach only through `proxy`."""

    broker_address: str
    proxy: TcpProxy

    @property
    def address(self) -> str:
        return self.proxy.address


@pytest.fixture
def proxied_kafka(tmp_path: Path, settings: Any) -> Iterator[ProxiedKafka]:
    """A fresh Tansu that advertises the proxy's port, so every connection (bootstrap and
    after metadata) goes through the proxy; settings.KAFKA_BOOTSTRAP_SERVERS points at the proxy.

    `broker_address` reaches the broker directly (bootstrap only: metadata sends clients
    back to the proxy's port). Used by the relay's and the user-event consumer's outage tests."""
    from devstack import kafka as devstack_kafka
    from devstack.procs import LOOPBACK, free_port
    from orders_project.tests.tcp_proxy import TcpProxy
    from outbox.producer import producer_discard

    broker_port, proxy_port = free_port(), free_port()
    broker = devstack_kafka.start(broker_port, log_path=tmp_path / "tansu.log", advertised_port=proxy_port)
    proxy = None
    try:
        proxy = TcpProxy((LOOPBACK, broker_port), port=proxy_port)
        settings.KAFKA_BOOTSTRAP_SERVERS = [proxy.address]
        yield ProxiedKafka(broker_address=f"{LOOPBACK}:{broker_port}", proxy=proxy)
    finally:
        producer_discard()  # before the broker goes: a producer of it would block on close
        if proxy is not None:
            proxy.cut()
        broker.stop()
