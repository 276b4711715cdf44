"""Project-wide pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devstack.tcp_proxy import TcpProxy

# --- markers ---

_KAFKA_FIXTURES = ("kafka_bootstrap", "proxied_kafka")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a broker fixture is a `kafka` test whether or not it says so."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.get_closest_marker("kafka") is None and any(name in fixtures for name in _KAFKA_FIXTURES):
            item.add_marker(pytest.mark.kafka)


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
    from devstack.tcp_proxy import TcpProxy
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


@pytest.fixture
def fresh_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness results of earlier tests forgotten: a test that changes a dependency sees its own."""
    from orders_project import health

    monkeypatch.setattr(health, "_SHARED", health.shared_checks())


# --- the event contract: the one place produced events are validated ---

_DB_FIXTURES = ("db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback")


@pytest.fixture(autouse=True)
def _outbox_events_match_the_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every database test, every outbox row it left (its own: the database is
    rolled back or flushed after each test) must match its schema: payload, headers,
    key. No test can forget it. Tests of the outbox's mechanics write payloads that
    are not order events on purpose; they say so with @pytest.mark.opaque_events.
    """
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in _DB_FIXTURES
    )
    if not uses_db or request.node.get_closest_marker("opaque_events") is not None:
        yield
        return
    # Set the database up first, so this teardown runs before its rollback or flush.
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import DatabaseError, connection

    from outbox.models import OutboxEvent
    from tests.support.contract import outbox_row_problems

    if connection.needs_rollback:
        return  # the test left its transaction broken: nothing can be read (it fails on its own)
    try:
        rows = list(OutboxEvent.objects.order_by("id").values_list("event_type", "key", "payload", "headers"))
    except DatabaseError:
        return  # e.g. the test cut the database off: nothing to read
    problems = [
        problem
        for event_type, key, payload, headers in rows
        for problem in outbox_row_problems(event_type=event_type, key=key, payload=payload, headers=headers)
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        pytest.fail(f"{len(problems)} outbox event problem(s) against the contract:\n  {shown}", pytrace=False)
