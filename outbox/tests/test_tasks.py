"""The outbox's Celery side: the on-commit kick (one queued run per burst), the relay and retention
tasks, the beat schedule, and the producer closed when a worker stops.

The kick is checked where it lands, in the Celery broker's queue in Redis (the test settings give
the broker a Redis database of its own; no worker consumes it during tests), not by patching
apply_async: that also proves the task name and that the message is really published."""

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from celery.signals import worker_process_shutdown
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from orders.services import ItemInput, order_cancel, order_create
from orders_project.celery import app
from outbox.kick import KICK_KEY, relay_kick
from outbox.models import OutboxEvent
from outbox.partitions import partition_name, partitions_list
from outbox.producer import producer_get
from outbox.services import event_enqueue
from outbox.tasks import relay_outbox, retention_outbox
from tests.support.api import service_client
from tests.support.outbox import all_published, consume, enqueue

ORDER = {"user_id": "user-kick", "currency": "USD", "items": [{"product_id": "p1", "quantity": 1, "price": "5.00"}]}


@pytest.fixture
def queued_tasks() -> Iterator[Callable[[], list[str]]]:
    """Names of the tasks waiting in the Celery broker's default queue; empty, with no kick marker, at start."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    queue = app.conf.task_default_queue

    def names() -> list[str]:
        return [json.loads(message)["headers"]["task"] for message in client.lrange(queue, 0, -1)]

    client.delete(queue)
    cache.delete(KICK_KEY)
    yield names
    client.delete(queue)
    cache.delete(KICK_KEY)
    client.close()


@pytest.mark.django_db
def test_a_transaction_with_several_events_queues_one_relay_run(queued_tasks, django_capture_on_commit_callbacks):
    # when one transaction creates an order, cancels it and writes one more event: three events
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        items = [ItemInput(product_id="p1", quantity=1, price=Decimal("5.00"))]
        order = order_create(user_id="user-kick", currency="USD", items=items, changed_by="test")
        order_cancel(order_id=order.id, reason="changed my mind", changed_by="test")
        event_enqueue(event_type="order.shipped", key="user-kick", data={})

    # then each event asked for a kick on commit, and exactly one relay run was queued
    assert OutboxEvent.objects.count() == 3
    # (the other on-commit callbacks count the order and its transition: orders.metrics)
    assert [callback for callback in callbacks if callback is relay_kick] == [relay_kick] * 3
    assert queued_tasks() == ["outbox.relay"]


@pytest.mark.django_db
def test_a_burst_of_api_orders_queues_one_run_and_the_next_after_that_run_starts(
    queued_tasks, django_capture_on_commit_callbacks, kafka_bootstrap, unique_topics
):
    client = service_client("kick-client")

    # when two orders are created through the API, one commit after the other
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/api/v1/orders/", ORDER, format="json").status_code == 201

    # then one relay run is queued for both
    assert queued_tasks() == ["outbox.relay"]

    # when that run starts (the task body, as a worker calls it), it clears the marker
    relay_outbox()
    assert cache.get(KICK_KEY) is None

    # so the next commit queues the next run
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/orders/", ORDER, format="json").status_code == 201
    assert queued_tasks() == ["outbox.relay", "outbox.relay"]


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_the_relay_task_publishes_due_rows(event_topic, queued_tasks):
    rows = [enqueue(f"k{n % 2}", {"n": n}) for n in range(5)]
    cache.set(KICK_KEY, 1)

    assert relay_outbox() == {"published": 5, "failed": 0, "batches": 1}

    assert all_published()
    assert cache.get(KICK_KEY) is None
    messages = consume(event_topic, [str(r.event_id) for r in rows])
    assert sorted(m.event_id for m in messages) == sorted(str(r.event_id) for r in rows)


@pytest.mark.django_db(transaction=True)
def test_the_retention_task_makes_partitions_ahead(settings):
    settings.OUTBOX_PARTITIONS_AHEAD_DAYS = 5
    last = timezone.now().date() + timedelta(days=5)

    result = retention_outbox()

    assert result["kept"] >= 6  # today, five days ahead, the default
    assert partition_name(last) in {p.name for p in partitions_list()}


def test_beat_sweeps_the_outbox_every_poll_interval_and_runs_retention_hourly():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["outbox-relay-sweep"]["task"] == "outbox.relay"
    assert schedule["outbox-relay-sweep"]["schedule"] == float(django_settings.OUTBOX_POLL_INTERVAL_SECONDS)
    assert schedule["outbox-retention"] == {"task": "outbox.retention", "schedule": 3600.0}
    assert {"outbox.relay", "outbox.retention", "outbox.audit"} <= set(app.tasks)


def test_beat_audits_deliveries_every_audit_interval():
    assert django_settings.CELERY_BEAT_SCHEDULE["outbox-audit"] == {
        "task": "outbox.audit",
        "schedule": float(django_settings.OUTBOX_AUDIT_INTERVAL_SECONDS),
        "options": {"expires": float(django_settings.OUTBOX_AUDIT_INTERVAL_SECONDS)},
    }


@pytest.mark.kafka
def test_a_stopping_worker_closes_the_process_producer(kafka_bootstrap):
    producer = producer_get()
    assert producer_get() is producer  # reused across runs

    worker_process_shutdown.send(sender=None, pid=0, exitcode=0)

    assert producer._closed
    assert producer_get() is not producer
