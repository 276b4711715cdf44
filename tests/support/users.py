"""The user-cache tests' helpers: fixed event times, contract-shaped user events, the
replica's Redis keys, a consumer running in a thread, topics read from the beginning."""

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.db import connection, connections
from kafka import KafkaConsumer, TopicPartition

from devstack.procs import free_port
from orders.models import Order
from orders.services import ItemInput, OrderInput, orders_create
from orders_project.rfc3339 import rfc3339
from tests.support.waiting import wait_for
from users_cache.consumer import UserEventConsumer

# Half of this is the first-join wait on Tansu; see PITFALLS.md.
SESSION_TIMEOUT_MS = 3000
WAIT_SECONDS = 30.0
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """A fixed event time, `seconds` after T0, so tests say which event is newer."""
    return T0 + dt.timedelta(seconds=seconds)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def user_event(event_type: str, user_id: str, when: dt.datetime, event_id: str | None = None, **data: Any) -> bytes:
    """A contract-shaped user event as the user service sends it."""
    body = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": rfc3339(when),
        "version": "1.0",
        "data": {"user_id": user_id, **data},
    }
    return json.dumps(body).encode()


def created(user_id: str, when: dt.datetime, **data: Any) -> bytes:
    fields = {"email": f"{user_id}@example.com", "name": f"Name {user_id}", "status": "active"}
    return user_event("user.created", user_id, when, **{**fields, "created_at": rfc3339(when), **data})


def order_for(user_id: str, created_by_id: int | None = None) -> Order:
    """A pending order that already exists for `user_id`, whatever the replica says of that user.

    orders_create does not check the customer (order_create, and so OrderFactory, does)."""
    spec = OrderInput(user_id=user_id, currency="EUR", items=[ItemInput("prod-1", 1, Decimal("9.99"))])
    (order,) = orders_create(orders=[spec], created_by_id=created_by_id, changed_by="system:test")
    return order


def lock_waiters() -> int:
    """Backends of the test database waiting for a lock (row or advisory), e.g. the consumer blocked by a test."""
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is a snapshot taken at first use: drop it.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def text_hash(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def users_unreachable(caches: dict[str, Any]) -> dict[str, Any]:
    """CACHES with the user replica ("users" and "users_lookup") pointed at a real closed port
    (connection refused), as in an outage."""
    location = f"redis://127.0.0.1:{free_port()}/{settings.REDIS_USERS_DB}"
    return {
        alias: {**conf, "LOCATION": location} if alias.startswith("users") else conf for alias, conf in caches.items()
    }


def user_hash(client: redis.Redis, user_id: str) -> dict[str, str]:
    return text_hash(client.hgetall(f"users:user:{user_id}"))  # type: ignore[arg-type]


def users_snapshot(client: redis.Redis) -> dict[bytes, tuple[dict[bytes, bytes], bytes]]:
    """Every users:* key with its fields and its DUMP bytes (TTL is not part of either)."""
    snapshot = {}
    for key in sorted(client.scan_iter(match="users:*", count=1000)):
        kind = client.type(key)
        fields = client.hgetall(key) if kind == b"hash" else {b"": client.get(key)}
        snapshot[key] = (fields, client.dump(key))
    return snapshot  # type: ignore[return-value]


class ConsumerThread:
    """UserEventConsumer.run() in a thread, stopped through its stop Event."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        # Short polls: the test's stop() waits for the poll in progress.
        self.consumer = UserEventConsumer(group_id=group_id, session_timeout_ms=SESSION_TIMEOUT_MS, poll_timeout_ms=200)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"consumer-{group_id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.consumer.run()
        except BaseException as exc:  # reported by wait()/stop() in the test thread
            self.error = exc
        finally:
            connections.close_all()  # each thread keeps its own PostgreSQL connection otherwise

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.consumer.stats.counts)

    def wait_total(self, total: int, timeout: float = WAIT_SECONDS) -> None:
        def done() -> bool:
            if self.error is not None:
                raise self.error
            return self.consumer.stats.total >= total

        wait_for(done, f"{total} messages handled by {self.group_id} (so far {self.counts})", timeout)

    def stop(self) -> None:
        self.consumer.stop.set()
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "the consumer did not stop"
        if self.error is not None:
            raise self.error


def committed(kafka_bootstrap: str, group_id: str, topic: str) -> int | None:
    """The group's committed offset on partition 0 of `topic` (an offset fetch; no group join)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


def read_topic(kafka_bootstrap: str, topic: str, until: Callable[[list[Any]], bool]) -> list[Any]:
    """Every record of `topic` from the beginning, read until `until(records)` holds."""
    return read_topics(kafka_bootstrap, [topic], until)


def read_topics(kafka_bootstrap: str, topics: list[str], until: Callable[[list[Any]], bool]) -> list[Any]:
    """Every record of `topics` from the beginning (no group), read until `until(records)` holds."""
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
    records: list[Any] = []
    try:

        def assigned() -> bool:
            partitions = [(topic, consumer.partitions_for_topic(topic)) for topic in topics]
            if not all(numbers for _, numbers in partitions):
                return False
            consumer.assign([TopicPartition(topic, n) for topic, numbers in partitions for n in numbers])
            consumer.seek_to_beginning()
            return True

        wait_for(assigned, f"topics {topics} to exist")

        def found() -> bool:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            return until(records)

        wait_for(found, f"the expected records on {topics}")
        return records
    finally:
        consumer.close()
