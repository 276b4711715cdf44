"""The outbox's door: `event_enqueue` is the only way anything writes an event."""

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent

ENVELOPE_VERSION = "1.0"


def traceparent_new() -> str:
    """A fresh W3C traceparent (version 00, sampled) for work no request started."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def event_enqueue(*, event_type: str, key: str, data: dict[str, Any], traceparent: str | None = None) -> OutboxEvent:
    """Write one event into the outbox, inside the caller's transaction.

    Must run inside `transaction.atomic()`: the event exists exactly when the
    change that caused it commits. The topic comes from settings by event type,
    so deployments can rename topics without touching callers.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_enqueue must be called inside the transaction of the change it reports.")
    now = timezone.now()
    event_id = uuid.uuid4()
    payload = {
        "event_id": str(event_id),
        "event_type": event_type,
        "timestamp": rfc3339(now),
        "version": ENVELOPE_VERSION,
        "data": data,
    }
    headers = {"event_id": str(event_id), "event_type": event_type, "traceparent": traceparent or traceparent_new()}
    return OutboxEvent.objects.create(
        event_id=event_id,
        event_type=event_type,
        topic=settings.KAFKA_TOPICS[event_type],
        key=key,
        payload=payload,
        headers=headers,
        next_attempt_at=now,
        created_at=now,
    )
