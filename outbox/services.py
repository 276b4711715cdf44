"""The outbox's door: `event_enqueue` / `events_enqueue` are the only way anything writes an event."""

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders_project.rfc3339 import rfc3339
from orders_project.tracing import traceparent_current
from outbox.kick import relay_kick
from outbox.models import OutboxEvent, OutboxStatus

ENVELOPE_VERSION = "1.0"
_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

logger = logging.getLogger(__name__)


def traceparent_new() -> str:
    """A fresh W3C traceparent (version 00, sampled) for work no request or span started."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    key: str
    data: dict[str, Any]


def event_enqueue(*, event_type: str, key: str, data: dict[str, Any], traceparent: str | None = None) -> OutboxEvent:
    """Write one event into the outbox, inside the caller's transaction."""
    return events_enqueue(events=[EventSpec(event_type, key, data)], traceparent=traceparent)[0]


def events_enqueue(*, events: list[EventSpec], traceparent: str | None = None) -> list[OutboxEvent]:
    """Write events into the outbox with one INSERT, inside the caller's transaction.

    Their `traceparent` header is the given one when valid, else the current span's, else new.

    Must run inside `transaction.atomic()`: the events exist exactly when the
    change that caused them commits. Rows get ids in list order, which is the
    order they reach Kafka within a key. The topic comes from settings by event
    type, so deployments can rename topics without touching callers.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_enqueue must be called inside the transaction of the change it reports.")
    if traceparent is None or not _TRACEPARENT.match(traceparent):
        # The span this change happens in (the request's server span, a lifecycle batch's,
        # a user event's): the relay and the event's consumers continue that trace.
        traceparent = traceparent_current() or traceparent_new()
    now = timezone.now()
    rows = []
    for spec in events:
        event_id = uuid.uuid4()
        payload = {
            "event_id": str(event_id),
            "event_type": spec.event_type,
            "timestamp": rfc3339(now),
            "version": ENVELOPE_VERSION,
            "data": spec.data,
        }
        headers = {"event_id": str(event_id), "event_type": spec.event_type, "traceparent": traceparent}
        rows.append(
            OutboxEvent(
                event_id=event_id,
                event_type=spec.event_type,
                topic=settings.KAFKA_TOPICS[spec.event_type],
                key=spec.key,
                payload=payload,
                headers=headers,
                next_attempt_at=now,
                created_at=now,
            )
        )
    created = OutboxEvent.objects.bulk_create(rows)
    transaction.on_commit(relay_kick, robust=True)
    return created


def event_requeue(*, event_ids: list[int]) -> int:
    """Give dead rows a fresh start: pending, attempts reset, due now. Returns rows changed."""
    return OutboxEvent.objects.filter(id__in=event_ids, status=OutboxStatus.DEAD).update(
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )


def event_discard(*, event_ids: list[int]) -> int:
    """Delete dead rows that staff decided never to send; the rows behind them in their key go on."""
    deleted, _ = OutboxEvent.objects.filter(id__in=event_ids, status=OutboxStatus.DEAD).delete()
    if deleted:
        logger.warning("Discarded %d dead outbox events: %s", deleted, event_ids)
    return deleted
