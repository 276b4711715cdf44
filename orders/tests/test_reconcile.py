"""manage.py outbox_reconcile against a real broker: orphans found, voided once, only in the window.

A restore is stood in for by deleting the order (the database no longer has it, its
events are on Kafka): `make restore-drill` does the real restore end to end."""

import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders.models import Order
from orders.reconcile import void_event_id
from outbox.models import OutboxEvent
from tests.support.lifecycle import order_new
from tests.support.outbox import all_published, consume, relay_until

pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(*args: str) -> str:
    out = io.StringIO()
    call_command("outbox_reconcile", *args, stdout=out)
    return out.getvalue()


def forget(order: Order) -> None:
    """What a restore to before its creation does to an order: the database no longer has it."""
    Order.objects.filter(id=order.id).delete()


def test_orphans_are_reported_and_voided_once_with_their_original_event_ids(topics: dict[str, str]) -> None:
    # given two orders whose events reached Kafka, one of them then gone from the database
    since = timezone.now() - timedelta(seconds=1)
    kept, gone = order_new("ada"), order_new("bob")
    relay_until(all_published)
    gone_event_ids = [
        str(e)
        for e in OutboxEvent.objects.filter(payload__data__order_id=str(gone.id)).values_list("event_id", flat=True)
    ]
    forget(gone)

    # when reconciled without --publish: reported, nothing written
    before = OutboxEvent.objects.count()
    output = reconcile("--since", since.isoformat())
    assert f"orphan order={gone.id} user=bob events=1 (created); not voided" in output
    assert "2 order events read for 2 orders; 1 orphans (0 already voided, 0 voided now)" in output
    assert str(kept.id) not in output
    assert OutboxEvent.objects.count() == before

    # when reconciled with --publish: one order.voided, deterministic id, through the relay
    output = reconcile("--since", since.isoformat(), "--publish")
    assert "1 orphans (0 already voided, 1 voided now)" in output
    (voided,) = OutboxEvent.objects.filter(event_type="order.voided")
    assert voided.event_id == void_event_id(order_id=str(gone.id))
    assert voided.key == "bob"
    assert voided.payload["data"]["original_event_ids"] == gone_event_ids
    assert voided.payload["data"]["reason"] == "database_restore"
    relay_until(all_published)
    (message,) = consume(topics["order.voided"], [str(voided.event_id)])
    assert message.value["data"]["order_id"] == str(gone.id)

    # then a second run voids nothing again, even once the outbox row is cleaned up (it is on Kafka)
    assert "1 orphans (1 already voided, 0 voided now)" in reconcile("--since", since.isoformat(), "--publish")
    OutboxEvent.objects.filter(event_type="order.voided").delete()
    assert "1 orphans (1 already voided, 0 voided now)" in reconcile("--since", since.isoformat(), "--publish")
    assert not OutboxEvent.objects.filter(event_type="order.voided").exists()


def test_only_events_in_the_window_are_read(topics: dict[str, str]) -> None:
    # given an order published before `since` and one after, both gone from the database
    early = order_new("ada")
    relay_until(all_published)
    time.sleep(0.05)  # record timestamps are milliseconds: the two must not share one
    since = timezone.now()
    time.sleep(0.05)
    late = order_new("bob")
    relay_until(all_published)
    forget(early)
    forget(late)

    # when reconciled from `since`, then up to `since`
    output = reconcile("--since", since.isoformat())
    until = reconcile("--since", (since - timedelta(hours=1)).isoformat(), "--until", since.isoformat())

    # then each run sees only its side
    assert str(late.id) in output and str(early.id) not in output
    assert str(early.id) in until and str(late.id) not in until
