"""What one user event does: one message in, one outcome out (testable without Kafka).

message_handle does it all for one message. The consumer splits it to send a
poll's applies to Redis together: message_parse decides what a message asks for
from the message alone, event_command builds its Redis call without I/O (the
consumer runs a run of them as one pipeline, store.events_apply; a delete's
writes only its tombstone), and delete_finish does the rest of a delete once
its user's open orders are found (orders_open_of_deleted_users, for a poll's
deletes together), as deleted_handle does for one delete on its own.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from orders import services as order_services
from users_cache.events import KINDS, BadMessage, UserEvent, event_parse
from users_cache.store import ApplyCommand, command_apply, event_apply_command, event_mark_processed

logger = logging.getLogger(__name__)

CANCEL_REASON = "user_deleted"
CHANGED_BY = "consumer:user-events"


@dataclass(frozen=True)
class Outcome:
    result: str  # "applied", "stale", "duplicate", "replayed" or "bad"
    reason: str = ""
    cancelled_orders: int = 0
    # For log lines; empty when the message could not be parsed. Not part of the outcome's value.
    event_id: str = field(default="", compare=False)


def topic_kind(topic: str) -> str | None:
    """The user event kind a topic carries, by the configured topic names."""
    for event_type, name in settings.KAFKA_TOPICS.items():
        if name == topic and event_type in KINDS:
            return KINDS[event_type]
    return None


def message_parse(*, topic: str, value: bytes | None) -> UserEvent | Outcome:
    """The event a message carries, or its final outcome ("bad") when it breaks the contract."""
    try:
        return event_parse(value, topic_kind=topic_kind(topic))
    except BadMessage as exc:
        return Outcome("bad", reason=exc.reason)


def message_handle(*, topic: str, value: bytes | None, replay: bool = False) -> Outcome:
    """Apply one message. Raises RedisError / DatabaseError for outages (the caller retries).

    `replay` (a rebuild) applies events already processed again, without their
    side effects: the Redis merge is idempotent, a second cancel is not wanted.
    """
    event = message_parse(topic=topic, value=value)
    if isinstance(event, Outcome):
        return event
    return event_handle(event, replay=replay)


def event_handle(event: UserEvent, *, replay: bool) -> Outcome:
    """Apply one parsed event on its own (a delete also cancels the user's orders)."""
    if event.kind == "deleted":
        return deleted_handle(event, replay=replay)
    return Outcome(_apply(event, mark=True, replay=replay), event_id=event.event_id)


def event_command(event: UserEvent, *, replay: bool) -> ApplyCommand:
    """The Redis call that applies an event (what message_handle runs for it first); its result
    string is the outcome. A created/updated event is marked processed in the same atomic step;
    a delete only gets its tombstone: delete_finish cancels its orders, then marks it."""
    return _command(event, mark=event.kind != "deleted", replay=replay)


def _command(event: UserEvent, *, mark: bool, replay: bool) -> ApplyCommand:
    return event_apply_command(
        event_id=event.event_id,
        user_id=event.user_id,
        kind=event.kind,
        timestamp_ms=event.timestamp_ms,
        fields=event.fields,
        mark=mark,
        replay=replay,
    )


def _apply(event: UserEvent, *, mark: bool, replay: bool) -> str:
    return command_apply(_command(event, mark=mark, replay=replay))


def delete_is_done(tombstone_result: str) -> bool:
    """Whether a delete whose tombstone gave this result was processed before: its orders were
    cancelled then, and it is marked (a rebuild's replay does not cancel again)."""
    return tombstone_result in ("duplicate", "replayed")


def deleted_handle(event: UserEvent, *, replay: bool) -> Outcome:
    """Tombstone, then cancel, then mark processed.

    The tombstone comes first so that an order whose user check ran before it
    is caught by the cancel (orders_open_of_deleted_users waits for creates
    still in flight for this user), and one checked after it is refused. The
    event is marked processed last: a crash before that redelivers it, the
    tombstone is written again (a delete always applies) and the cancel runs again.
    """
    result = _apply(event, mark=False, replay=replay)
    if delete_is_done(result):
        return Outcome(result, event_id=event.event_id)
    open_orders = order_services.orders_open_of_deleted_users(user_ids=[event.user_id])
    return delete_finish(event, result, open_orders.get(event.user_id, []))


def delete_finish(event: UserEvent, tombstone_result: str, open_order_ids: Sequence[uuid.UUID]) -> Outcome:
    """The rest of a delete whose tombstone is stored and not done before (delete_is_done):
    cancel the user's open orders, found after the tombstone by orders_open_of_deleted_users,
    then mark the event processed. Safe to redo: a cancelled order is left alone."""
    cancelled = order_services.orders_cancel(order_ids=open_order_ids, reason=CANCEL_REASON, changed_by=CHANGED_BY)
    event_mark_processed(event_id=event.event_id, outcome=tombstone_result)
    return Outcome(tombstone_result, cancelled_orders=cancelled, event_id=event.event_id)
