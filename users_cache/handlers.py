"""What one user event does: one message in, one outcome out (testable without Kafka)."""

import logging
from dataclasses import dataclass

from django.conf import settings

from orders import services as order_services
from users_cache.events import KINDS, BadMessage, event_parse
from users_cache.store import event_apply, event_is_processed

logger = logging.getLogger(__name__)

CANCEL_REASON = "user_deleted"


@dataclass(frozen=True)
class Outcome:
    result: str  # "applied", "stale", "duplicate" or "bad"
    reason: str = ""
    cancelled_orders: int = 0


def topic_kind(topic: str) -> str | None:
    """The user event kind a topic carries, by the configured topic names."""
    for event_type, name in settings.KAFKA_TOPICS.items():
        if name == topic and event_type in KINDS:
            return KINDS[event_type]
    return None


def message_handle(*, topic: str, value: bytes | None) -> Outcome:
    """Apply one message. Raises RedisError / DatabaseError for outages (the caller retries)."""
    try:
        event = event_parse(value, topic_kind=topic_kind(topic))
    except BadMessage as exc:
        return Outcome("bad", reason=exc.reason)
    cancelled = 0
    if event.kind == "deleted" and not event_is_processed(event.event_id):
        # Cancel before recording the event: a crash in between redelivers the
        # event, and cancelling again finds nothing left to cancel.
        cancelled = order_services.orders_cancel_for_user(
            user_id=event.user_id, reason=CANCEL_REASON, changed_by="consumer:user-events"
        )
    result = event_apply(
        event_id=event.event_id,
        user_id=event.user_id,
        kind=event.kind,
        timestamp_ms=event.timestamp_ms,
        fields=event.fields,
    )
    return Outcome(result, cancelled_orders=cancelled)
