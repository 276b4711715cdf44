"""outbox.services.event_enqueue: the envelope of the event contract, inside a transaction only."""

import datetime as dt
import re

import pytest
from django.db import connection, transaction

from orders_project.rfc3339 import rfc3339
from outbox.kick import relay_kick
from outbox.models import OutboxEvent
from outbox.services import EventSpec, event_enqueue, events_enqueue, events_insert_sql

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
W3C_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
DATA = {"order_id": "8d3c1f1e-0000-4000-8000-000000000000", "user_id": "user123", "status": "pending"}


@pytest.mark.django_db
def test_event_enqueue_writes_the_contract_envelope():
    # when an event is enqueued inside a transaction
    with transaction.atomic():
        event = event_enqueue(event_type="order.created", key="user123", data=DATA, traceparent=TRACEPARENT)

    # then the stored row carries exactly the envelope and headers of the contract
    row = OutboxEvent.objects.get()
    assert row.pk == event.pk
    assert row.payload == {
        "event_id": str(row.event_id),
        "event_type": "order.created",
        "timestamp": rfc3339(row.created_at),
        "version": "1.0",
        "data": DATA,
    }
    assert RFC3339_UTC.match(row.payload["timestamp"])
    assert dt.datetime.fromisoformat(row.payload["timestamp"]) == row.created_at
    assert row.headers == {"event_id": str(row.event_id), "event_type": "order.created", "traceparent": TRACEPARENT}
    assert (row.event_type, row.topic, row.key) == ("order.created", "order.created", "user123")
    assert (row.status, row.attempts, row.last_error, row.published_at) == ("pending", 0, "", None)
    assert row.next_attempt_at == row.created_at


@pytest.mark.django_db
@pytest.mark.parametrize(
    "given", [None, "", "not-a-traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"]
)
def test_event_enqueue_starts_a_new_trace_when_none_or_a_bad_one_is_given(given):
    with transaction.atomic():
        event_enqueue(event_type="order.created", key="user123", data=DATA, traceparent=given)

    traceparent = OutboxEvent.objects.get().headers["traceparent"]
    assert W3C_TRACEPARENT.match(traceparent)
    assert traceparent != given


@pytest.mark.django_db
def test_every_event_gets_its_own_event_id():
    with transaction.atomic():
        first = event_enqueue(event_type="order.created", key="user123", data=DATA)
        second = event_enqueue(event_type="order.created", key="user123", data=DATA)

    assert first.event_id != second.event_id
    assert first.headers["traceparent"] != second.headers["traceparent"]


@pytest.mark.django_db
def test_topic_comes_from_settings_kafka_topics(settings):
    # given a deployment that renames the topic
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "order.cancelled": "prod.orders.cancelled.v1"}

    with transaction.atomic():
        event_enqueue(event_type="order.cancelled", key="user123", data=DATA)

    row = OutboxEvent.objects.get()
    assert (row.event_type, row.topic) == ("order.cancelled", "prod.orders.cancelled.v1")
    assert row.payload["event_type"] == "order.cancelled"


@pytest.mark.django_db
def test_an_event_type_without_a_topic_is_refused():
    with pytest.raises(KeyError, match=r"order\.lost"), transaction.atomic():
        event_enqueue(event_type="order.lost", key="user123", data=DATA)

    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_event_enqueue_refuses_to_run_outside_a_transaction():
    # given autocommit mode: no transaction.atomic() around the call
    with pytest.raises(RuntimeError, match="inside the transaction"):
        event_enqueue(event_type="order.created", key="user123", data=DATA)

    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_takes_its_event_with_it():
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        event_enqueue(event_type="order.created", key="user123", data=DATA)
        raise Abort

    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_the_relay_is_kicked_only_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        event_enqueue(event_type="order.created", key="user123", data=DATA)

    assert callbacks == [relay_kick]


@pytest.mark.django_db
def test_events_enqueue_keeps_list_order_under_one_trace():
    specs = [EventSpec("order.created", "user123", {"n": 1}), EventSpec("order.cancelled", "user123", {"n": 2})]

    with transaction.atomic():
        events_enqueue(events=specs, traceparent=TRACEPARENT)

    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(r.event_type, r.payload["data"]) for r in rows] == [
        ("order.created", {"n": 1}),
        ("order.cancelled", {"n": 2}),
    ]
    assert {r.headers["traceparent"] for r in rows} == {TRACEPARENT}


def _columns(row: OutboxEvent) -> tuple:
    """A row's columns but those each write makes its own (ids, times, the event id in the envelope)."""
    payload = {**row.payload, "event_id": None, "timestamp": None}
    headers = {**row.headers, "event_id": None}
    return (row.event_type, row.topic, row.key, payload, headers, row.status, row.attempts, row.last_error,
            row.published_at, row.claimed_by, row.claimed_until)  # fmt: skip


@pytest.mark.django_db
def test_events_insert_sql_writes_the_rows_events_enqueue_writes(settings):
    # given events of two types (one topic renamed) with non-ASCII data, written through each door
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "order.cancelled": "prod.orders.cancelled.v1"}
    data = {**DATA, "items": [{"product_id": "p-ü", "quantity": 2, "price": "4.50"}], "note": '\u2028 "x"'}
    specs = [EventSpec("order.created", "user-ü", data), EventSpec("order.cancelled", "user-ü", {"n": 2})]
    with transaction.atomic():
        events_enqueue(events=specs, traceparent=TRACEPARENT)
    with transaction.atomic():
        sql, params = events_insert_sql(events=specs, traceparent=TRACEPARENT)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    # then both wrote the same rows, in list order, each with its own event id and one time
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [_columns(row) for row in rows[:2]] == [_columns(row) for row in rows[2:]]
    for row in rows[2:]:
        assert row.payload["event_id"] == row.headers["event_id"] == str(row.event_id)
        assert row.payload["timestamp"] == rfc3339(row.created_at)
        assert row.next_attempt_at == row.created_at
    assert len({row.event_id for row in rows}) == 4


@pytest.mark.django_db(transaction=True)
def test_events_insert_sql_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events_insert_sql(events=[EventSpec("order.created", "user123", DATA)])


@pytest.mark.django_db
def test_events_insert_sql_kicks_the_relay_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        sql, params = events_insert_sql(events=[EventSpec("order.created", "user123", DATA)])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    assert callbacks == [relay_kick]
    assert OutboxEvent.objects.count() == 1
