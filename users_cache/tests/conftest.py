"""Fixtures for the user-cache tests: a clean Redis test database, a fresh set of
user topics per test on the session's broker, and a consumer running in a thread.

Every test gets its own topic names (settings.KAFKA_TOPICS points at them), so
tests never see each other's messages on the shared broker, and its own
consumer group ids. The helpers they share are in tests/support/users.py.
"""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.support.users import WAIT_SECONDS, ConsumerThread


@pytest.fixture(autouse=True)
def redis_db() -> Iterator[redis.Redis]:
    """A raw client on the test user-replica database, flushed before and after each test."""
    assert settings.REDIS_USERS_DB != 0, "the tests FLUSHDB: never point them at Redis database 0"
    client = redis.Redis(
        host=settings.REDIS_HOST,
        port=settings.REDIS_PORT,
        db=settings.REDIS_USERS_DB,
        password=settings.REDIS_PASSWORD or None,
    )
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def user_topics(kafka_bootstrap: str, settings: Any) -> dict[str, str]:
    """Fresh user topics (one partition each, so per-topic order is the send order)."""
    suffix = uuid.uuid4().hex[:10]
    topics = {kind: f"test.{kind}.{suffix}" for kind in ("user.created", "user.updated", "user.deleted")}
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, **topics}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(name, 1, 1) for name in topics.values()])
    finally:
        admin.close()
    return topics


@pytest.fixture
def send(kafka_bootstrap: str, user_topics: dict[str, str]) -> Iterator[Callable[..., None]]:
    """send((event_type, value), ...) to the test's topics, flushed before it returns."""
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, delivery_timeout_ms=10_000, max_block_ms=10_000
    )

    def send_all(*messages: tuple[str, bytes], key: bytes | None = None) -> None:
        for event_type, value in messages:
            producer.send(user_topics[event_type], key=key, value=value).get(timeout=10)
        producer.flush(10)

    yield send_all
    producer.close(5)


@pytest.fixture
def start_consumer(kafka_bootstrap: str, user_topics: dict[str, str]) -> Iterator[Callable[..., ConsumerThread]]:
    started: list[ConsumerThread] = []

    def start(group_id: str | None = None) -> ConsumerThread:
        running = ConsumerThread(group_id or f"test-{uuid.uuid4().hex}")
        started.append(running)
        return running

    yield start
    for running in started:
        running.consumer.stop.set()
    for running in started:
        running.thread.join(WAIT_SECONDS)
