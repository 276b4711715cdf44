"""The broker goes away and comes back under a running UserEventConsumer.

The consumer talks to a Tansu of the test's own only through a TCP proxy
(`proxied_kafka`, root conftest.py); cutting the proxy drops its connections and
refuses new ones, as a broker outage does. The cut lasts longer than the
session timeout, so the group membership expires and the consumer has to
rejoin when the broker is back.

Producing goes through the proxy too (the broker advertises the proxy's port,
so a client bootstrapped on the broker's own port is sent back to the proxy):
the second batch is produced after the restore.
"""

import time
import uuid
from typing import Any

import pytest
import redis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.support.users import SESSION_TIMEOUT_MS, ConsumerThread, at, created, user_event, user_hash
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = SESSION_TIMEOUT_MS / 1000 + 2


def produce(bootstrap: list[str], topics: dict[str, str], messages: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, delivery_timeout_ms=10_000, max_block_ms=10_000
    )
    try:
        for event_type, value in messages:
            producer.send(topics[event_type], value=value).get(timeout=10)
        producer.flush(10)
    finally:
        producer.close(5)


def test_the_consumer_survives_the_broker_going_away_and_applies_every_event_once(
    proxied_kafka: Any, settings: Any, redis_db: redis.Redis
) -> None:
    suffix = uuid.uuid4().hex[:10]
    topics = {kind: f"test.{kind}.{suffix}" for kind in ("user.created", "user.updated", "user.deleted")}
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, **topics}
    admin = KafkaAdminClient(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(name, 1, 1) for name in topics.values()])
    finally:
        admin.close()

    # given a consumer that is running and has applied a first batch
    before = [("user.created", created(f"u{n}", at(0))) for n in range(10)]
    produce(settings.KAFKA_BOOTSTRAP_SERVERS, topics, before)
    running = ConsumerThread(f"test-outage-{uuid.uuid4().hex}")
    try:

        def applied(user_ids: list[str], field: str, value: str) -> bool:
            if running.error is not None:
                raise running.error
            return all(user_hash(redis_db, user_id).get(field) == value for user_id in user_ids)

        wait_for(lambda: all(applied([f"u{n}"], "name", f"Name u{n}") for n in range(10)), "the first batch in Redis")

        # when the broker goes away for longer than the session timeout
        proxied_kafka.proxy.cut()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            # then the consumer thread stays alive through it
            assert running.thread.is_alive(), f"the consumer died during the outage: {running.error!r}"
            time.sleep(0.1)
        assert running.error is None

        # when it is back and more events come
        proxied_kafka.proxy.restore()
        after = [
            # u0 is only deleted: topics are not ordered with each other, so an update of it could come
            # after the delete and be (rightly) stale
            *[
                ("user.updated", user_event("user.updated", f"u{n}", at(100), name="After outage"))
                for n in range(1, 10)
            ],
            *[("user.created", created(f"v{n}", at(100))) for n in range(10)],
            ("user.deleted", user_event("user.deleted", "u0", at(200), reason="account_closed")),
        ]
        produce(settings.KAFKA_BOOTSTRAP_SERVERS, topics, after)

        # then they are applied
        wait_for(
            lambda: (
                applied([f"u{n}" for n in range(1, 10)], "name", "After outage")
                and applied([f"v{n}" for n in range(10)], "status", "active")
                and applied(["u0"], "status", "deleted")
            ),
            "the events produced after the outage in Redis",
        )
    finally:
        # and the consumer stops cleanly when told to
        running.stop()

    # and every event was applied exactly once (a redelivery, if any, is only a duplicate)
    counts = running.counts
    assert counts.get("applied") == len(before) + len(after), counts
    assert set(counts) <= {"applied", "duplicate"}, counts
