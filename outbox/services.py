"""The outbox's door: `event_enqueue` is the only way anything writes an event."""

import logging
import re
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders_project.rfc3339 import rfc3339
from outbox.kick import relay_kick
from outbox.models import OutboxEvent, OutboxStatus

ENVELOPE_VERSION = "1.0"
_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

logger = logging.getLogger(__name__)


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
    if traceparent is None or not _TRACEPARENT.match(traceparent):
        traceparent = traceparent_new()
    headers = {"event_id": str(event_id), "event_type": event_type, "traceparent": traceparent}
    transaction.on_commit(relay_kick, robust=True)
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
