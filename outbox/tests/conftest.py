"""Fixtures and helpers for the relay tests: real Tansu, real PostgreSQL, the relay run for real.

Every Kafka test gets topic names of its own (settings.KAFKA_TOPICS overridden),
so tests sharing the session broker never read each other's messages.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from rest_framework.test import APIClient

from orders.tests.factories import grant, token_for
from orders_project.kafka import client_config, topics_create
from outbox.models import OutboxEvent, OutboxStatus
from outbox.producer import producer_discard
from outbox.relay import relay_run
from outbox.services import event_enqueue

TOPIC_PARTITIONS = 3
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The outbox knows nothing of orders: its tests send opaque payloads ({"n": 1}) on
    purpose, so the root conftest's contract check leaves them out. The order events
    themselves are checked in every orders and users_cache test that writes them."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.opaque_events)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str
    value: dict[str, Any]
    headers: dict[str, str]

    @property
    def event_id(self) -> str:
        return str(self.value["event_id"])


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


def enqueue(key: str, data: dict[str, Any], event_type: str = "order.created") -> OutboxEvent:
    """One event in its own committed transaction."""
    with transaction.atomic():
        return event_enqueue(event_type=event_type, key=key, data=data)


def relay_until(done: Callable[[], bool], *, timeout: float = 30.0, **relay_kwargs: Any) -> None:
    """Run the relay until `done()` (retries included) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the relay did not get there before the deadline"
        relay_run(**relay_kwargs)


def all_published() -> bool:
    return not OutboxEvent.objects.exclude(status=OutboxStatus.PUBLISHED).exists()


def consume(
    topic: str,
    expected_event_ids: Iterable[str],
    *,
    bootstrap: str | list[str] | None = None,
    timeout: float = 30.0,
    quiet_seconds: float = 0.5,
) -> list[Message]:
    """Every message of `topic` from the beginning, read until all expected event ids were seen
    (then `quiet_seconds` more, to catch duplicates) or the deadline. No group: all partitions assigned."""
    expected = set(expected_event_ids)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap or django_settings.KAFKA_BOOTSTRAP_SERVERS,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100)  # refreshes metadata
            partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        messages: list[Message] = []
        seen: set[str] = set()
        quiet_until = None
        while time.monotonic() < deadline:
            if not expected - seen:
                quiet_until = quiet_until or time.monotonic() + quiet_seconds
                if time.monotonic() >= quiet_until:
                    break
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                for record in records:
                    message = Message(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key.decode(),
                        value=json.loads(record.value),
                        headers={name: value.decode() for name, value in record.headers},
                    )
                    messages.append(message)
                    seen.add(message.event_id)
        return messages
    finally:
        consumer.close()


def by_key(messages: Iterable[Message]) -> dict[str, list[str]]:
    """Event ids per key in Kafka order (one key lives on one partition, so offset order)."""
    result: dict[str, list[str]] = {}
    for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
        result.setdefault(message.key, []).append(message.event_id)
    return result


def topic_ensure(name: str, partitions: int = TOPIC_PARTITIONS) -> None:
    """Create `name` unless it exists (Tansu would auto-create it with 4 partitions on first send)."""
    admin = KafkaAdminClient(**client_config(), client_id="outbox-tests")
    try:
        if name not in admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):  # created by someone else meanwhile
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def token_client(username: str) -> APIClient:
    """An APIClient for a new service client (orders for any customer), with a token as real clients use."""
    user = grant(get_user_model().objects.create_user(username=username, password="x"), "act_for_any_customer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client
