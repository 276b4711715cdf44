"""The relay delivers for real: an order made through the API reaches Kafka once, with the contract's
envelope, key and headers, and its outbox row is marked published."""

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order
from orders_project.rfc3339 import rfc3339
from outbox import relay as relay_module
from outbox.models import OutboxEvent, OutboxStatus
from outbox.relay import relay_batch, relay_run
from tests.support.api import service_client
from tests.support.outbox import all_published, consume, enqueue, topic_ensure

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ORDER = {
    "user_id": "user-relay-1",
    "currency": "USD",
    "shipping_address": "1 Main St",
    "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
}


def test_an_order_created_through_the_api_reaches_order_created_once_and_is_marked_published(kafka_bootstrap):
    # given the real order.created topic and a client with a token
    topic_ensure("order.created")
    client = service_client("relay-client")

    # when an order is created through the API and the relay runs
    response = client.post("/api/v1/orders/", ORDER, format="json", HTTP_TRACEPARENT=TRACEPARENT)
    assert response.status_code == 201
    started = timezone.now()
    result = relay_run()

    # then its row is published, with published_at set by this run
    order = Order.objects.get()
    row = OutboxEvent.objects.get()
    assert (result.published, result.failed) == (1, 0)
    assert (row.status, row.attempts, row.last_error, row.topic) == ("published", 0, "", "order.created")
    assert row.published_at is not None
    assert started <= row.published_at <= timezone.now()

    # and order.created holds it exactly once, with the contract's envelope, key and headers
    messages = [m for m in consume("order.created", [str(row.event_id)]) if m.event_id == str(row.event_id)]
    assert len(messages) == 1
    message = messages[0]
    assert message.key == "user-relay-1"
    # (the traceparent is the request's span, returned to the client: the client's trace goes on)
    assert message.headers == {
        "event_id": str(row.event_id),
        "event_type": "order.created",
        "traceparent": response["traceparent"],
    }
    assert response["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert message.value == {
        "event_id": str(row.event_id),
        "event_type": "order.created",
        "timestamp": rfc3339(row.created_at),
        "version": "1.0",
        "data": {
            "order_id": str(order.id),
            "user_id": "user-relay-1",
            "status": "pending",
            "order_version": 1,
            "total_amount": "99.98",
            "currency": "USD",
            "shipping_address": "1 Main St",
            "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
            "created_at": rfc3339(order.created_at),
        },
    }
    assert dt.datetime.fromisoformat(message.value["timestamp"]) == row.created_at


def test_a_batch_takes_the_runs_of_the_oldest_keys_up_to_batch_size_and_a_run_takes_batches_until_none_is_due(
    event_topic,
):
    # given seven events over three keys: k0 has rows 0, 3, 6; k1 1, 4; k2 2, 5
    rows = [enqueue(f"k{n % 3}", {"n": n}) for n in range(7)]

    # when one batch of three runs
    assert relay_batch(producer=None, batch_size=3) == (3, 0)

    # then the key with the oldest head sent its run (up to ROWS_PER_KEY rows), and only it:
    # the other keys stay free for other relays
    published = set(OutboxEvent.objects.filter(status=OutboxStatus.PUBLISHED).values_list("id", flat=True))
    assert published == {rows[0].id, rows[3].id, rows[6].id}
    assert not OutboxEvent.objects.filter(claimed_by__isnull=False).exists()

    # and a run takes the remaining four in two more batches, then stops: nothing is due
    result = relay_run(batch_size=3)
    assert (result.published, result.failed, result.batches) == (4, 0, 2)
    assert relay_batch(producer=None, batch_size=3) is None
    assert all_published()
    messages = consume(event_topic, [str(r.event_id) for r in rows])
    assert sorted(m.value["data"]["n"] for m in messages) == list(range(7))


def test_a_run_over_a_backlog_records_each_batch_beside_the_next_claim_and_closes_its_second_connection(
    event_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 40 events over 8 keys (a backlog of ten batches of four), and a spy on the recorder's
    # work (the real one, called through) noting the thread each batch was recorded on
    rows = [enqueue(f"k{n % 8}", {"n": n}) for n in range(40)]
    recorded_on: list[str] = []
    finish = relay_module._finish_recorded

    def spy(batch: Any, producer: Any) -> tuple[int, int]:
        recorded_on.append(threading.current_thread().name)
        return finish(batch, producer)

    monkeypatch.setattr(relay_module, "_finish_recorded", spy)
    backends_before = _backends()

    # when one run takes them in batches of four
    result = relay_run(batch_size=4)

    # then every batch was published with where Kafka put it: the first recorded inline, the
    # later ones on the recorder's thread while the next was claimed
    assert (result.published, result.failed, result.batches) == (40, 0, 10)
    assert all_published()
    assert not OutboxEvent.objects.filter(kafka_offset__isnull=True).exists()
    assert len(recorded_on) == 9 and {name.split("_")[0] for name in recorded_on} == {"outbox-record"}
    # and each key's events arrived in the order they were written
    messages = consume(event_topic, [str(r.event_id) for r in rows])
    by_key: dict[str, list[int]] = {}
    for message in messages:
        by_key.setdefault(message.key, []).append(message.value["data"]["n"])
    assert by_key == {f"k{k}": list(range(k, 40, 8)) for k in range(8)}
    # and the recorder's connection was closed with the run
    assert _backends() == backends_before


def _backends() -> int:
    """Client backends connected to the test database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        return int(cursor.fetchone()[0])
