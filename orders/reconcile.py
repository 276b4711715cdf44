"""After a database restore: find order events on Kafka whose order the database no longer has.

A restore to a point T forgets every order created after T, but their events are
already on Kafka (consumers acted on them). `manage.py outbox_reconcile` reads the
order topics from T on (by record timestamp: `offsets_for_times`), asks the database
which of the orders named there exist, and for each missing one ("orphan") can
write one `order.voided` event through the outbox, so consumers can undo what they
did. The voided event's id is a UUID v5 of the order id: a second run finds it in
the outbox (or on the voided topic) and writes nothing, and if it were sent twice
consumers drop it by `event_id` anyway. docs/events.md, "After a database restore".

Reading stops at each partition's end as its first fetch reports it (the high
watermark): `end_offsets()` is unreliable on Tansu (DESIGN.md).
"""

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition

from orders.selectors import orders_existing
from orders_project.kafka import client_config
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent
from outbox.services import EventSpec, events_enqueue

# Fixed namespace of voided event ids: never change it, or a second run would void again.
VOID_EVENT_NAMESPACE = uuid.UUID("0d7c4b62-3f1e-5a9d-b8c4-7e2f1a6d9c30")
VOID_REASON = "database_restore"
VOIDED = "order.voided"
# Events the reconcile reads: the order's own (created ... cancelled) and earlier voids.
ORDER_EVENT_TYPES = ("order.created", "order.confirmed", "order.shipped", "order.cancelled")
# Orders per write transaction (one outbox INSERT each).
CHUNK_SIZE = 500


@dataclass(frozen=True)
class KafkaEvent:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event_id: str
    event_type: str
    order_id: str
    user_id: str


@dataclass
class Orphan:
    order_id: str
    user_id: str
    events: list[KafkaEvent] = field(default_factory=list)
    voided: bool = False  # an order.voided for it is on Kafka or in the outbox already

    def describe(self) -> str:
        kinds = ",".join(event.event_type.removeprefix("order.") for event in self.events)
        state = "already voided" if self.voided else "not voided"
        return f"orphan order={self.order_id} user={self.user_id} events={len(self.events)} ({kinds}); {state}"


@dataclass
class ReconcileResult:
    read: int = 0  # order events read from Kafka in the window
    orders: int = 0  # distinct orders they name
    orphans: list[Orphan] = field(default_factory=list)
    voided_now: int = 0  # order.voided events written to the outbox by this run

    def line(self) -> str:
        already = sum(1 for orphan in self.orphans if orphan.voided) - self.voided_now
        return (
            f"{self.read} order events read for {self.orders} orders; {len(self.orphans)} orphans "
            f"({already} already voided, {self.voided_now} voided now)"
        )


def void_event_id(*, order_id: str) -> uuid.UUID:
    return uuid.uuid5(VOID_EVENT_NAMESPACE, f"{order_id}:{VOIDED}")


def _parse(message: Any) -> KafkaEvent | None:
    try:
        value = json.loads(message.value)
        data = value["data"]
        return KafkaEvent(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=message.timestamp,
            event_id=str(value["event_id"]),
            event_type=str(value["event_type"]),
            order_id=str(data["order_id"]),
            user_id=str(data["user_id"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # not one of ours: nothing to reconcile


def kafka_order_events_read(
    *, since: datetime, until: datetime | None = None, timeout: float = 60.0
) -> list[KafkaEvent]:
    """Every order event (and order.voided) on Kafka with a record timestamp at or after `since`
    (and before `until`), as the topics hold them when the read starts."""
    topics = [settings.KAFKA_TOPICS[kind] for kind in (*ORDER_EVENT_TYPES, VOIDED)]
    consumer = KafkaConsumer(**client_config(), enable_auto_commit=False, group_id=None, consumer_timeout_ms=500)
    try:
        consumer.topics()  # loads the cluster's metadata, which partitions_for_topic only reads
        partitions = [
            TopicPartition(topic, number)
            for topic in topics
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        since_ms = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        # Nothing at or after `since` on that partition: None from Kafka; offset 0 with
        # timestamp -1 from Tansu 0.6 (measured), which would read the partition whole.
        todo = {tp: found.offset for tp, found in starts.items() if found is not None and found.timestamp >= 0}
        if not todo:
            return []
        consumer.assign(list(todo))
        for tp, offset in todo.items():
            consumer.seek(tp, offset)
        until_ms = int(until.timestamp() * 1000) if until is not None else None
        ends: dict[TopicPartition, int] = {}
        events: list[KafkaEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    # Also before `since`: the seek is where the broker says `since` begins, and
                    # a broker that answers with an earlier offset must not widen the window.
                    if record.timestamp < since_ms or (until_ms is not None and record.timestamp >= until_ms):
                        continue
                    event = _parse(record)
                    if event is not None:
                        events.append(event)
            for tp in todo:
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
            if len(ends) == len(todo) and all(consumer.position(tp) >= end for tp, end in ends.items()):
                return events
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(events)} events; the order topics did not reach their end in {timeout}s")
    finally:
        consumer.close()


def orphans_find(events: Iterable[KafkaEvent]) -> ReconcileResult:
    """Group the events by order and keep the orders the database does not have."""
    result = ReconcileResult()
    by_order: dict[str, Orphan] = {}
    voided: set[str] = set()
    for event in events:
        if event.event_type == VOIDED:
            voided.add(event.order_id)
            continue
        result.read += 1
        orphan = by_order.setdefault(event.order_id, Orphan(event.order_id, event.user_id))
        orphan.events.append(event)
    result.orders = len(by_order)
    existing = orders_existing(order_ids=[uuid.UUID(order_id) for order_id in by_order])
    in_outbox = set(
        str(event_id)
        for event_id in OutboxEvent.objects.filter(
            event_id__in=[void_event_id(order_id=order_id) for order_id in by_order]
        ).values_list("event_id", flat=True)
    )
    for order_id, orphan in by_order.items():
        if uuid.UUID(order_id) in existing:
            continue
        orphan.voided = order_id in voided or str(void_event_id(order_id=order_id)) in in_outbox
        result.orphans.append(orphan)
    return result


def _void_spec(orphan: Orphan, now: datetime) -> EventSpec:
    return EventSpec(
        VOIDED,
        orphan.user_id,
        {
            "order_id": orphan.order_id,
            "user_id": orphan.user_id,
            "reason": VOID_REASON,
            "voided_at": rfc3339(now),
            "original_event_ids": [event.event_id for event in orphan.events],
        },
        event_id=void_event_id(order_id=orphan.order_id),
    )


def orphans_void(*, result: ReconcileResult) -> int:
    """Write one order.voided per orphan not voided yet, through the outbox. Returns how many."""
    todo = [orphan for orphan in result.orphans if not orphan.voided]
    written = 0
    for start in range(0, len(todo), CHUNK_SIZE):
        chunk = todo[start : start + CHUNK_SIZE]
        with transaction.atomic():
            # A run at the same time may have written some since orphans_find looked: skip those ids.
            ids = [void_event_id(order_id=orphan.order_id) for orphan in chunk]
            present = set(OutboxEvent.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
            now = timezone.now()
            specs = [_void_spec(o, now) for o, event_id in zip(chunk, ids, strict=True) if event_id not in present]
            if specs:
                events_enqueue(events=specs)
        for orphan in chunk:
            orphan.voided = True
        written += len(specs)
    result.voided_now += written
    return written
