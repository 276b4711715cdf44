"""Fixtures for the relay tests: real Tansu, real PostgreSQL, the relay run for real.

Every Kafka test gets topic names of its own (settings.KAFKA_TOPICS overridden),
so tests sharing the session broker never read each other's messages. The helpers
they share are in tests/support/outbox.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orders_project.kafka import topics_create
from outbox.producer import producer_discard
from tests.support.outbox import TOPIC_PARTITIONS

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The outbox knows nothing of orders: its tests send opaque payloads ({"n": 1}) on
    purpose, so the root conftest's contract check leaves them out. The order events
    themselves are checked in every orders and users_cache test that writes them."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.opaque_events)


@pytest.fixture(autouse=True)
def _no_shared_producer() -> Iterator[None]:
    """Each test starts and ends without the process's relay producer (it may point at another broker)."""
    producer_discard()
    yield
    producer_discard()


@pytest.fixture
def unique_topics(settings: Any) -> dict[str, str]:
    """Point every event type at a topic name of this test's own (not created yet)."""
    suffix = uuid.uuid4().hex[:8]
    settings.KAFKA_TOPICS = {event_type: f"test.{event_type}.{suffix}" for event_type in settings.KAFKA_TOPICS}
    return dict(settings.KAFKA_TOPICS)


@pytest.fixture
def event_topic(kafka_bootstrap: str, unique_topics: dict[str, str]) -> str:
    """This test's `order.created` topic, created with TOPIC_PARTITIONS partitions (with its six siblings)."""
    topics_create(partitions=TOPIC_PARTITIONS, replication_factor=1)
    return unique_topics["order.created"]
