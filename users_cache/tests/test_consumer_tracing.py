"""The consumer continues the trace of a user event: its log line for the message carries the
trace id of the message's traceparent header, and so do the order.cancelled events a
user.deleted causes (their outbox rows store a traceparent of that trace)."""

from typing import Any

import pytest
from kafka import KafkaProducer

from orders_project.logs import ContextFilter
from outbox.models import OutboxEvent
from tests.support.users import at, created, order_for, user_event

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TRACE_ID = "6bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_the_consumer_continues_a_user_events_traceparent(
    kafka_bootstrap: str, user_topics: dict[str, str], start_consumer: Any, caplog: Any
) -> None:
    # given a user with a pending order, and log records that get their ids as in production
    caplog.set_level("DEBUG", logger="users_cache.consumer")
    caplog.handler.addFilter(ContextFilter())
    order = order_for("u-traced")
    deleted_value = user_event("user.deleted", "u-traced", at(10), reason="gdpr")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=5000, max_block_ms=10_000)
    try:
        # when the user service sends user.created without trace context, then user.deleted with one
        producer.send(user_topics["user.created"], value=created("u-traced", at(0))).get(timeout=10)
        producer.send(
            user_topics["user.deleted"], value=deleted_value, headers=[("traceparent", TRACEPARENT.encode())]
        ).get(timeout=10)
    finally:
        producer.close(5)
    consumer = start_consumer()
    consumer.wait_total(2)
    consumer.stop()

    # then the consumer's line for user.deleted carries that trace id and the event id
    lines = {r.event_id: r for r in caplog.records if r.name == "users_cache.consumer" and getattr(r, "event_id", None)}
    deleted_id = next(event_id for event_id in lines if event_id in deleted_value.decode())
    assert lines[deleted_id].trace_id == TRACE_ID
    assert lines[deleted_id].span_id != "00f067aa0ba902b7"  # the consumer's own span, a child
    # and the untraced user.created got a trace of its own
    (created_line,) = [r for event_id, r in lines.items() if event_id != deleted_id]
    assert created_line.trace_id not in (None, TRACE_ID)

    # and the order it cancelled reports the cancellation in the same trace
    cancelled = OutboxEvent.objects.get(event_type="order.cancelled")
    assert cancelled.payload["data"]["order_id"] == str(order.id)
    assert cancelled.headers["traceparent"].split("-")[1] == TRACE_ID
