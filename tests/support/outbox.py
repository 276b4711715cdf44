"""Outbox events and their topics as the relay tests use them: enqueue, relay until done,
read a topic back from the beginning."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from orders_project.kafka import client_config
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_run
from outbox.services import event_enqueue
from tests.support.waiting import wait_for

TOPIC_PARTITIONS = 3


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


def enqueue(key: str, data: dict[str, Any], event_type: str = "order.created") -> OutboxEvent:
    """One event in its own committed transaction."""
    with transaction.atomic():
        return event_enqueue(event_type=event_type, key=key, data=data)


def outbox_row(
    key: str,
    *,
    status: str = OutboxStatus.PENDING,
    last_error: str = "",
    topic: str = "order.created",
    created_at: datetime | None = None,
    failed_at: datetime | None = None,
    published_at: datetime | None = None,
    attempts: int = 0,
) -> OutboxEvent:
    """An outbox row as the relay would have left it, written directly (no Kafka involved).
    A dead row gets 5 attempts and, unless given, failed_at now; a published row, unless
    given, published_at now."""
    now = timezone.now()
    dead = status == OutboxStatus.DEAD
    return OutboxEvent.objects.create(
        event_type="order.created",
        topic=topic,
        key=key,
        payload={"data": {"key": key}},
        status=status,
        attempts=attempts or (5 if dead else 0),
        last_error=last_error,
        created_at=created_at or now,
        next_attempt_at=now,
        failed_at=failed_at or (now if dead else None),
        published_at=published_at or (now if status == OutboxStatus.PUBLISHED else None),
    )


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


def topic_recreate(name: str, partitions: int = TOPIC_PARTITIONS) -> None:
    """Delete `name` and create it again, empty (what an operator's mistake or a lost cluster does)."""
    admin = KafkaAdminClient(**client_config(), client_id="outbox-tests")
    try:
        admin.delete_topics([name])

        def created() -> bool:
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:  # the deletion takes effect asynchronously on a real Kafka
                return False
            return True

        wait_for(created, f"topic {name} to be deleted and created again")
    finally:
        admin.close()


def produce(topic: str, records: Iterable[tuple[int | None, bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    """Send (partition or None, key, value, headers) records with a plain producer and wait for every ack."""
    producer = KafkaProducer(**client_config(), acks="all")
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers, partition=partition)
            for partition, key, value, headers in records
        ]
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close(timeout=5)


def topic_ensure(name: str, partitions: int = TOPIC_PARTITIONS) -> None:
    """Create `name` unless it exists (Tansu would auto-create it with 4 partitions on first send)."""
    admin = KafkaAdminClient(**client_config(), client_id="outbox-tests")
    try:
        if name not in admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):  # created by someone else meanwhile
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
